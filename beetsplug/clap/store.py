"""Index state in library.db (per item, meta, tags), and the Store facade."""

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

from .schema import (
    CODES,
    ID_LIST,
    META,
    STATE,
    STATE_ADDED_COLUMNS,
    STATE_SCHEMA,
    TAGS,
    VECTOR_SCHEMA,
    VECTORS,
    column_names,
    json_ids,
    table_names,
)
from .vectors import (
    VectorIndex,
    drop_vectors,
    float32_blob,
    matrix,
    put_vectors,
)

if TYPE_CHECKING:
    import numpy as np


# Long enough to wait out a beets import committing a large album.
BUSY_TIMEOUT_SECONDS = 30.0
_DELETE_TAGS_WITHOUT_STATE = (
    f"DELETE FROM {TAGS} WHERE item_id NOT IN (SELECT item_id FROM {STATE})"
)


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
    max_windows: int  # the window cap it was embedded with; 0: not recorded


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


def connect(db_path: Path | str, timeout: float | None = None) -> Any:
    """A connection of the plugin's own to library.db.

    Autocommit mode: every write goes through `Store.transaction`, so no
    implicit transaction is left open to block beets. The standard sqlite3
    is enough: the plugin's tables are plain tables.
    """
    import sqlite3

    if timeout is None:
        timeout = BUSY_TIMEOUT_SECONDS
    try:
        conn = sqlite3.connect(
            os.fsdecode(db_path),
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    except sqlite3.Error as exc:
        raise StoreError(
            f"cannot open library database {os.fsdecode(db_path)}: {exc}"
        ) from exc
    return conn


def _add_state_columns(conn: Any) -> None:
    """Give a state table made by an older version the columns it lacks.

    Run inside `prepare`'s write transaction: a concurrent `prepare` waits
    for it and then finds the columns there; readers see the table before
    or after, and `states` reads either.
    """
    present = column_names(conn, STATE)
    for name, definition in STATE_ADDED_COLUMNS.items():
        if name not in present:
            conn.execute(f"ALTER TABLE {STATE} ADD COLUMN {name} {definition}")


class Store(VectorIndex):
    """Vectors, codes and per-item index state in the library database.

    Vectors, their codes and their state rows are only ever written in the
    same transaction, so an interrupted run leaves whole batches or nothing.
    Searching (`nearest`, `knn`, `rows`, `vectors`) is the vector engine's.
    """

    def __init__(self, conn: Any) -> None:
        # beets' importer calls plugin stages and listeners from several
        # pipeline threads; one connection must not interleave transactions.
        super().__init__(conn, threading.RLock())

    @classmethod
    def open(cls, db_path: Path | str, timeout: float | None = None) -> Store:
        if timeout is None:
            timeout = BUSY_TIMEOUT_SECONDS
        # Only an index of the first layout needs the converter (and its
        # sqlite-vec); it imports this module for StoreError.
        from .convert import convert_vec0, is_vec0

        conn = connect(db_path, timeout)
        try:
            if is_vec0(conn):
                convert_vec0(os.fsdecode(db_path), timeout)
        except BaseException:
            conn.close()
            raise
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

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
        return table_names(self.conn)

    def ready(self) -> bool:
        """Whether an index was ever created in this library."""
        return {VECTORS, CODES, STATE, META} <= self._table_names()

    def meta(self) -> dict[str, str]:
        if META not in self._table_names():
            return {}
        return dict(self.conn.execute(f"SELECT key, value FROM {META}").fetchall())

    def other_bundle(self, bundle: str) -> str | None:
        """The label of another bundle whose vectors the index holds (which
        `prepare(bundle)` would drop); None when it holds none but `bundle`'s."""
        meta = self.meta()
        if meta.get("bundle") in (None, bundle) or STATE not in self._table_names():
            return None
        row = self.conn.execute(
            f"SELECT 1 FROM {STATE} WHERE status = 'ok' AND bundle != ? LIMIT 1",
            (bundle,),
        ).fetchone()
        if row is None:
            return None
        return meta.get("label") or meta["bundle"][:12]

    def prepare(
        self, bundle: str, dim: int, label: str, tag_names: Sequence[str] = ()
    ) -> int:
        """Make the tables ready for vectors of `bundle` (dimension `dim`).

        Rows embedded by another bundle are dropped in the same transaction
        that records the new bundle, so searches never mix two models; a
        dimension change recreates the vector tables. Returns how many
        vectors were dropped (items that had failed had none).
        """
        with self.transaction() as conn:
            for ddl in STATE_SCHEMA:
                conn.execute(ddl)
            _add_state_columns(conn)
            meta = dict(conn.execute(f"SELECT key, value FROM {META}").fetchall())
            dropped = 0
            if meta.get("dim") not in (None, str(dim)):
                if VECTORS in table_names(conn):
                    (dropped,) = conn.execute(
                        f"SELECT count(*) FROM {VECTORS}"
                    ).fetchone()
                conn.execute(f"DROP TABLE IF EXISTS {VECTORS}")
                conn.execute(f"DROP TABLE IF EXISTS {CODES}")
            for ddl in VECTOR_SCHEMA:
                conn.execute(ddl)
            if meta.get("bundle") != bundle:
                conn.execute(f"DELETE FROM {STATE} WHERE bundle != ?", (bundle,))
                conn.execute(_DELETE_TAGS_WITHOUT_STATE)
                dropped += self._delete_vectors_without_state(conn)
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
        return drop_vectors(conn, orphans)

    # Index state ------------------------------------------------------------

    def states(self) -> dict[int, ItemState]:
        """Every item's recorded state (an empty dict before the first index)."""
        if STATE not in self._table_names():
            return {}
        # An index not yet upgraded by `prepare` (a --pretend run writes
        # nothing) has no recorded cap: 0, as the added column's default.
        cap = "max_windows" if "max_windows" in column_names(self.conn, STATE) else "0"
        rows = self.conn.execute(
            "SELECT item_id, mtime, size, bundle, status, error, windows, "
            f"{cap} FROM {STATE}"
        ).fetchall()
        return {row[0]: ItemState(*row[1:]) for row in rows}

    def write_batch(
        self,
        bundle: str,
        done: Sequence[Embedded],
        failed: Sequence[Failed],
        max_windows: int = 0,
    ) -> None:
        """Store one batch: vectors, codes, tags and state rows in one
        transaction; `max_windows` is the window cap the batch was embedded
        with (0: not recorded)."""
        now = time.time()
        ids = [(e.item_id,) for e in done] + [(f.item_id,) for f in failed]
        with self.transaction() as conn:
            drop_vectors(conn, [f.item_id for f in failed])
            put_vectors(conn, [(e.item_id, e.vector) for e in done])
            conn.executemany(f"DELETE FROM {TAGS} WHERE item_id = ?", ids)
            conn.executemany(
                f"INSERT INTO {TAGS} (item_id, tags) VALUES (?, ?)",
                [(e.item_id, float32_blob(e.tags)) for e in done if e.tags is not None],
            )
            rows = [
                (e.item_id, e.mtime, e.size, "ok", None, e.windows) for e in done
            ] + [(f.item_id, f.mtime, f.size, "failed", f.error, 0) for f in failed]
            conn.executemany(
                f"INSERT OR REPLACE INTO {STATE} (item_id, mtime, size, status, "
                "error, windows, bundle, updated, max_windows) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*row, bundle, now, max_windows) for row in rows],
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
        ids = [int(i) for i in item_ids]
        if not ids or not self.ready():
            return
        with self.transaction() as conn:
            drop_vectors(conn, ids)
            for table in (TAGS, STATE):
                conn.executemany(
                    f"DELETE FROM {table} WHERE item_id = ?", [(i,) for i in ids]
                )

    def purge_missing(self) -> int:
        """Drop rows of items no longer in the library and vectors left
        without a state row (beets removes items with its own connection,
        which leaves the vectors and codes to this one). Returns the number
        of vectors dropped."""
        if not self.ready():
            return 0
        with self.transaction() as conn:
            conn.execute(
                f"DELETE FROM {STATE} WHERE item_id NOT IN (SELECT id FROM items)"
            )
            conn.execute(_DELETE_TAGS_WITHOUT_STATE)
            return self._delete_vectors_without_state(conn)

    def failures(self, item_ids: Iterable[int]) -> dict[int, str]:
        """The recorded reason of each of `item_ids` whose last embedding
        failed, by ascending id (items with no vector for that reason)."""
        if STATE not in self._table_names():
            return {}
        wanted = set(item_ids)
        # Failed rows are few next to a query's matches: reading them all
        # costs less than binding every matched id.
        rows = self.conn.execute(
            f"SELECT item_id, error FROM {STATE} WHERE status = 'failed' "
            "ORDER BY item_id"
        ).fetchall()
        return {i: error or "no reason recorded" for i, error in rows if i in wanted}

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
            raise StoreError(self._why_empty())

    def _why_empty(self) -> str:
        """Why the index holds no vector: nothing embedded yet, or (when the
        library's tracks were tried) the reasons they failed, the first named
        as results.track_name names a track."""
        from .items import track_label
        from .results import nothing_indexed

        empty = "the clap index is empty: run `beet clap-index` first"
        if "items" not in self._table_names():  # a bare store (tests, tools)
            return empty
        rows = self.conn.execute(
            f"SELECT s.item_id, s.error, i.artist, i.albumartist, i.title, i.path "
            f"FROM {STATE} s JOIN items i ON i.id = s.item_id "
            "WHERE s.status = 'failed' ORDER BY s.item_id"
        ).fetchall()
        if not rows:
            return empty
        (count,) = self.conn.execute("SELECT count(*) FROM items").fetchone()
        failures = {r[0]: r[1] or "no reason recorded" for r in rows}
        names = {r[0]: track_label(r[2] or r[3], r[4], r[5]) for r in rows}
        return nothing_indexed(
            count, failures, lambda item_id: names[item_id] or f"item {item_id}"
        )

    def all_vectors(self, bundle: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of every item embedded by `bundle`, by ascending id."""
        import numpy as np

        rows = self.conn.execute(
            f"SELECT v.item_id, v.embedding FROM {VECTORS} v "
            f"JOIN {STATE} s ON s.item_id = v.item_id "
            "WHERE s.status = 'ok' AND s.bundle = ? ORDER BY v.item_id",
            (bundle,),
        ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        return ids, matrix(rows, int(self.meta().get("dim", 0)))

    def tags(self, item_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Tag probabilities stored for `item_ids` (bundles with a tags output)."""
        import numpy as np

        if TAGS not in self._table_names():
            return {}
        rows = self.conn.execute(
            f"SELECT item_id, tags FROM {TAGS} WHERE item_id IN {ID_LIST}",
            (json_ids(item_ids),),
        ).fetchall()
        return {int(i): np.frombuffer(blob, dtype=np.float32) for i, blob in rows}

    # Album structure, read from beets' own items table -------------------

    def albums_of(self, item_ids: Iterable[int]) -> dict[int, int]:
        """item id -> album id for those of `item_ids` that are in an album."""
        rows = self.conn.execute(
            "SELECT id, album_id FROM items WHERE album_id IS NOT NULL "
            f"AND id IN {ID_LIST}",
            (json_ids(item_ids),),
        ).fetchall()
        return {int(i): int(a) for i, a in rows}

    def album_ids(self) -> set[int]:
        """Every album's id in the library."""
        rows = self.conn.execute("SELECT id FROM albums").fetchall()
        return {int(r[0]) for r in rows}

    def album_members(self, album_ids: Iterable[int]) -> dict[int, list[int]]:
        """album id -> its item ids."""
        rows = self.conn.execute(
            f"SELECT album_id, id FROM items WHERE album_id IN {ID_LIST} "
            "ORDER BY album_id, id",
            (json_ids(album_ids),),
        ).fetchall()
        members: dict[int, list[int]] = {}
        for album_id, item_id in rows:
            members.setdefault(int(album_id), []).append(int(item_id))
        return members

    def tag_names(self) -> list[str]:
        return list(json.loads(self.meta().get("tags", "[]")))
