"""The plugin's tables inside library.db: sqlite-vec vectors, index state, meta."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

VECTORS = "clap_vectors"
STATE = "clap_state"
META = "clap_meta"
TAGS = "clap_tags"
# Point the loader at another vec0 build (or, in tests, at a missing file).
VEC_PATH_ENV = "BEETS_CLAP_SQLITE_VEC"
# Long enough to wait out a beets import committing a large album.
BUSY_TIMEOUT_SECONDS = 30.0
# sqlite-vec refuses larger k in one KNN query.
MAX_KNN = 4096


_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT)",
    f"CREATE TABLE IF NOT EXISTS {STATE} ("
    "item_id INTEGER PRIMARY KEY, mtime REAL NOT NULL, size INTEGER NOT NULL, "
    "bundle TEXT NOT NULL, "
    "status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), "
    "error TEXT, windows INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {TAGS} (item_id INTEGER PRIMARY KEY, tags BLOB)",
)
_DELETE_TAGS_WITHOUT_STATE = (
    f"DELETE FROM {TAGS} WHERE item_id NOT IN (SELECT item_id FROM {STATE})"
)
# Id lists travel as one JSON parameter (no limit on SQL variables).
_ID_LIST = "(SELECT value FROM json_each(?))"


class StoreError(Exception):
    """The store cannot be used as asked; the message is one line."""


@dataclass(frozen=True)
class ItemState:
    """What the index knows about one item's file."""

    mtime: float
    size: int
    bundle: str
    status: str  # "ok" or "failed"
    error: str | None
    windows: int


@dataclass(frozen=True)
class Embedded:
    """A successfully embedded item, ready to be written."""

    item_id: int
    vector: np.ndarray
    tags: np.ndarray | None
    mtime: float
    size: int
    windows: int


@dataclass(frozen=True)
class Failed:
    """An item that could not be embedded, with the reason."""

    item_id: int
    error: str
    mtime: float
    size: int


def sqlite_module() -> Any:
    """The standard sqlite3 when it can load extensions, else sqlean.

    pyenv's and macOS' Pythons build sqlite3 without extension loading;
    sqlean.py is a drop-in sqlite3 that keeps it.
    """
    import sqlite3

    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        import sqlean
    except ImportError as exc:
        raise StoreError(
            "cannot load SQLite extensions: this Python's sqlite3 was built without "
            "extension loading and sqlean.py is not installed (pip install sqlean.py)"
        ) from exc
    return sqlean


def _vec_path() -> str:
    custom = os.environ.get(VEC_PATH_ENV)
    if custom:
        return custom
    try:
        import sqlite_vec
    except ImportError as exc:
        raise StoreError(
            "sqlite-vec is not installed (pip install sqlite-vec)"
        ) from exc
    return sqlite_vec.loadable_path()


def connect(db_path: Path | str, timeout: float = BUSY_TIMEOUT_SECONDS) -> Any:
    """A connection of the plugin's own to library.db with sqlite-vec loaded.

    Autocommit mode: every write goes through `Store.transaction`, so no
    implicit transaction is left open to block beets.
    """
    module = sqlite_module()
    try:
        conn = module.connect(
            os.fsdecode(db_path),
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
        )
    except module.Error as exc:
        raise StoreError(
            f"cannot open library database {os.fsdecode(db_path)}: {exc}"
        ) from exc
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    path = _vec_path()
    try:
        conn.enable_load_extension(True)
        try:
            conn.load_extension(path)
        finally:
            conn.enable_load_extension(False)
        conn.execute("SELECT vec_version()").fetchone()
    except module.Error as exc:
        conn.close()
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(f"cannot load sqlite-vec from {path}: {detail}") from exc
    return conn


def _blob(vector: np.ndarray) -> bytes:
    import numpy as np

    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _json_ids(ids: Iterable[int]) -> str:
    """Id lists travel as one JSON parameter (no 32k-variable limit)."""
    return json.dumps([int(i) for i in ids])


class Store:
    """Vectors and per-item index state in the library database.

    Vectors and their state rows are only ever written in the same
    transaction, so an interrupted run leaves whole batches or nothing.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        # beets' importer calls plugin stages and listeners from several
        # pipeline threads; one connection must not interleave transactions.
        self._lock = threading.RLock()

    @classmethod
    def open(cls, db_path: Path | str, timeout: float = BUSY_TIMEOUT_SECONDS) -> Store:
        return cls(connect(db_path, timeout))

    def close(self) -> None:
        self.conn.close()

    @property
    def vec_version(self) -> str:
        return str(self.conn.execute("SELECT vec_version()").fetchone()[0])

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """BEGIN IMMEDIATE: take the write lock up front (waiting for a
        concurrent beets writer) rather than failing half-way through."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # Schema ---------------------------------------------------------------

    def _table_names(self) -> set[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows.fetchall()}

    def ready(self) -> bool:
        """Whether an index was ever created in this library."""
        return {VECTORS, STATE, META} <= self._table_names()

    def meta(self) -> dict[str, str]:
        if META not in self._table_names():
            return {}
        return dict(self.conn.execute(f"SELECT key, value FROM {META}").fetchall())

    def prepare(
        self, bundle: str, dim: int, label: str, tag_names: Sequence[str] = ()
    ) -> int:
        """Make the tables ready for vectors of `bundle` (dimension `dim`).

        Rows embedded by another bundle are dropped in the same transaction
        that records the new bundle, so searches never mix two models; a
        dimension change recreates the vector table. Returns how many items'
        rows were dropped.
        """
        with self.transaction() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT)"
            )
            for ddl in _SCHEMA:
                conn.execute(ddl)
            meta = dict(conn.execute(f"SELECT key, value FROM {META}").fetchall())
            dropped = 0
            if meta.get("dim") not in (None, str(dim)):
                conn.execute(f"DROP TABLE IF EXISTS {VECTORS}")
            if meta.get("bundle") != bundle:
                (dropped,) = conn.execute(
                    f"SELECT count(*) FROM {STATE} WHERE bundle != ?", (bundle,)
                ).fetchone()
                conn.execute(f"DELETE FROM {STATE} WHERE bundle != ?", (bundle,))
                conn.execute(_DELETE_TAGS_WITHOUT_STATE)
            conn.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {VECTORS} USING vec0("
                f"item_id INTEGER PRIMARY KEY, "
                f"embedding float[{int(dim)}] distance_metric=cosine)"
            )
            if meta.get("bundle") != bundle:
                self._delete_vectors_without_state(conn)
            conn.executemany(
                f"INSERT OR REPLACE INTO {META} (key, value) VALUES (?, ?)",
                [
                    ("bundle", bundle),
                    ("dim", str(dim)),
                    ("label", label),
                    ("tags", json.dumps(list(tag_names))),
                ],
            )
        return dropped

    def _delete_vectors_without_state(self, conn: Any) -> int:
        orphans = [
            row[0]
            for row in conn.execute(
                f"SELECT item_id FROM {VECTORS} WHERE item_id NOT IN "
                f"(SELECT item_id FROM {STATE} WHERE status = 'ok')"
            ).fetchall()
        ]
        conn.executemany(
            f"DELETE FROM {VECTORS} WHERE item_id = ?", [(i,) for i in orphans]
        )
        return len(orphans)

    # Index state ------------------------------------------------------------

    def states(self) -> dict[int, ItemState]:
        """Every item's recorded state (an empty dict before the first index)."""
        if STATE not in self._table_names():
            return {}
        rows = self.conn.execute(
            f"SELECT item_id, mtime, size, bundle, status, error, windows FROM {STATE}"
        ).fetchall()
        return {row[0]: ItemState(*row[1:]) for row in rows}

    def write_batch(
        self, bundle: str, done: Sequence[Embedded], failed: Sequence[Failed]
    ) -> None:
        """Store one batch: vectors, tags and state rows in one transaction."""
        now = time.time()
        ids = [(e.item_id,) for e in done] + [(f.item_id,) for f in failed]
        with self.transaction() as conn:
            # vec0 has no upsert: delete, then insert.
            conn.executemany(f"DELETE FROM {VECTORS} WHERE item_id = ?", ids)
            conn.executemany(f"DELETE FROM {TAGS} WHERE item_id = ?", ids)
            conn.executemany(
                f"INSERT INTO {VECTORS} (item_id, embedding) VALUES (?, ?)",
                [(e.item_id, _blob(e.vector)) for e in done],
            )
            conn.executemany(
                f"INSERT INTO {TAGS} (item_id, tags) VALUES (?, ?)",
                [(e.item_id, _blob(e.tags)) for e in done if e.tags is not None],
            )
            conn.executemany(
                f"INSERT OR REPLACE INTO {STATE} "
                "(item_id, mtime, size, bundle, status, error, windows, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.item_id, e.mtime, e.size, bundle, "ok", None, e.windows, now)
                    for e in done
                ]
                + [
                    (f.item_id, f.mtime, f.size, bundle, "failed", f.error, 0, now)
                    for f in failed
                ],
            )

    def update_file_stats(self, stats: Sequence[tuple[int, float, int]]) -> None:
        """Record new (mtime, size) for items whose audio is unchanged
        (the importer copied them or wrote tags after they were embedded)."""
        if not stats or not self.ready():
            return
        with self.transaction() as conn:
            conn.executemany(
                f"UPDATE {STATE} SET mtime = ?, size = ? WHERE item_id = ?",
                [(mtime, size, item_id) for item_id, mtime, size in stats],
            )

    def delete_items(self, item_ids: Iterable[int]) -> None:
        ids = [(int(i),) for i in item_ids]
        if not ids or not self.ready():
            return
        with self.transaction() as conn:
            for table in (VECTORS, TAGS, STATE):
                conn.executemany(f"DELETE FROM {table} WHERE item_id = ?", ids)

    def purge_missing(self) -> int:
        """Drop rows of items no longer in the library and vectors left
        without a state row (beets removes items with its own connection,
        which cannot touch the vec0 table). Returns the number of vectors
        dropped."""
        if not self.ready():
            return 0
        with self.transaction() as conn:
            conn.execute(
                f"DELETE FROM {STATE} WHERE item_id NOT IN (SELECT id FROM items)"
            )
            conn.execute(_DELETE_TAGS_WITHOUT_STATE)
            return self._delete_vectors_without_state(conn)

    def counts(self) -> dict[str, int]:
        if STATE not in self._table_names():
            return {"ok": 0, "failed": 0}
        rows = self.conn.execute(
            f"SELECT status, count(*) FROM {STATE} GROUP BY status"
        ).fetchall()
        return {"ok": 0, "failed": 0, **dict(rows)}

    # Search ---------------------------------------------------------------

    def check_searchable(self, bundle: str) -> None:
        """Raise StoreError unless the index holds vectors of `bundle`."""
        meta = self.meta()
        if "bundle" not in meta or not self.ready():
            raise StoreError("the clap index is empty: run `beet clap-index` first")
        if meta["bundle"] != bundle:
            raise StoreError(
                f"the clap index was built with another model bundle "
                f"({meta.get('label', meta['bundle'][:12])}): run `beet clap-index` "
                f"to embed the library with the current one"
            )
        row = self.conn.execute(
            f"SELECT 1 FROM {STATE} WHERE status = 'ok' AND bundle = ? LIMIT 1",
            (bundle,),
        ).fetchone()
        if row is None:
            raise StoreError("the clap index is empty: run `beet clap-index` first")

    def knn(
        self, query: np.ndarray, k: int, candidates: Iterable[int] | None = None
    ) -> list[tuple[int, float]]:
        """The k items nearest to `query` as (item id, cosine similarity),
        best first, optionally among `candidates` only.

        The one place that ranks the whole table: a coarse quantized pass
        can be slotted in here without touching the callers.
        """
        k = max(1, min(int(k), MAX_KNN))
        sql = (
            f"SELECT item_id, distance FROM {VECTORS} WHERE embedding MATCH ? AND k = ?"
        )
        params: list[Any] = [_blob(query), k]
        if candidates is not None:
            sql += f" AND item_id IN {_ID_LIST}"
            params.append(_json_ids(candidates))
        rows = self.conn.execute(sql, params).fetchall()
        return [(int(item_id), 1.0 - float(dist)) for item_id, dist in rows]

    def vectors(self, item_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of the stored vectors among `item_ids` (missing ones
        are skipped), in ascending id order."""
        import numpy as np

        rows = self.conn.execute(
            f"SELECT item_id, embedding FROM {VECTORS} "
            f"WHERE item_id IN {_ID_LIST} ORDER BY item_id",
            (_json_ids(item_ids),),
        ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        if not rows:
            dim = int(self.meta().get("dim", 0))
            return ids, np.zeros((0, dim), np.float32)
        mat = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        return ids, mat

    def all_vectors(self, bundle: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of every item embedded by `bundle`, by ascending id."""
        rows = self.conn.execute(
            f"SELECT item_id FROM {STATE} WHERE status = 'ok' AND bundle = ?", (bundle,)
        ).fetchall()
        return self.vectors(r[0] for r in rows)

    def tags(self, item_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Tag probabilities stored for `item_ids` (bundles with a tags output)."""
        import numpy as np

        if TAGS not in self._table_names():
            return {}
        rows = self.conn.execute(
            f"SELECT item_id, tags FROM {TAGS} WHERE item_id IN {_ID_LIST}",
            (_json_ids(item_ids),),
        ).fetchall()
        return {int(i): np.frombuffer(blob, dtype=np.float32) for i, blob in rows}

    # Album structure, read from beets' own items table -------------------

    def albums_of(self, item_ids: Iterable[int]) -> dict[int, int]:
        """item id -> album id for those of `item_ids` that are in an album."""
        rows = self.conn.execute(
            "SELECT id, album_id FROM items WHERE album_id IS NOT NULL "
            f"AND id IN {_ID_LIST}",
            (_json_ids(item_ids),),
        ).fetchall()
        return {int(i): int(a) for i, a in rows}

    def album_members(self, album_ids: Iterable[int]) -> dict[int, list[int]]:
        """album id -> its item ids."""
        rows = self.conn.execute(
            f"SELECT album_id, id FROM items WHERE album_id IN {_ID_LIST} "
            "ORDER BY album_id, id",
            (_json_ids(album_ids),),
        ).fetchall()
        members: dict[int, list[int]] = {}
        for album_id, item_id in rows:
            members.setdefault(int(album_id), []).append(int(item_id))
        return members

    def tag_names(self) -> list[str]:
        return list(json.loads(self.meta().get("tags", "[]")))
