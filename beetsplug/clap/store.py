"""The plugin's tables inside library.db: vectors, their int8 codes, index state."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np

    from .coarse import CoarseIndex

# item_id -> float32 vector, plus where the vector's int8 code sits.
VECTORS = "clap_vectors"
# The int8 codes, CHUNK_SLOTS vectors per row, scanned by the coarse pass.
CODES = "clap_codes"
STATE = "clap_state"
META = "clap_meta"
TAGS = "clap_tags"
# sqlite-vec is only needed to convert an index made by beets-clap 0.1's
# vec0 table; this points the converter at another build (or, in tests,
# at a missing file).
VEC_PATH_ENV = "BEETS_CLAP_SQLITE_VEC"
# Long enough to wait out a beets import committing a large album.
BUSY_TIMEOUT_SECONDS = 30.0
# Most results one search asks for (pools for negation and albums included).
MAX_KNN = 4096
# Vectors per code chunk: 1 MB of codes at 256 dimensions, so that adding a
# batch rewrites little, and reading 1M vectors' codes is ~250 blob reads.
CHUNK_SLOTS = 4096
# The coarse pass hands the exact rescoring k + RESCORE_MARGIN candidates:
# int8 codes are within ~0.003 of the exact cosine, so the true top 10 of
# 1M vectors is already among the coarse top 20 (recall@10 = 1.0 on
# clustered and on uniform random vectors, docs/benchmarks.md); the margin
# keeps it so for larger k and denser libraries.
RESCORE_MARGIN = 100
# A beets filter matching at most this many items is scored exactly
# straight away: reading that many vectors costs less than a scan.
EXACT_MAX = 2000
# Free slots are reclaimed (codes rebuilt densely) when they exceed a
# quarter of the vectors, or one chunk, whichever is more.
SLACK_FRACTION = 0.25

_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT)",
    f"CREATE TABLE IF NOT EXISTS {STATE} ("
    "item_id INTEGER PRIMARY KEY, mtime REAL NOT NULL, size INTEGER NOT NULL, "
    "bundle TEXT NOT NULL, "
    "status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), "
    "error TEXT, windows INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {TAGS} (item_id INTEGER PRIMARY KEY, tags BLOB)",
)
_VECTOR_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {VECTORS} ("
    "item_id INTEGER PRIMARY KEY, embedding BLOB NOT NULL, "
    "chunk INTEGER NOT NULL, slot INTEGER NOT NULL)",
    # ids int64[slots] (0 = free), scales float32[slots], sums int32[slots],
    # codes int8[dim, slots]: dimension-major, as the scan reads them.
    f"CREATE TABLE IF NOT EXISTS {CODES} ("
    "chunk INTEGER PRIMARY KEY, version INTEGER NOT NULL, used INTEGER NOT NULL, "
    "ids BLOB NOT NULL, scales BLOB NOT NULL, sums BLOB NOT NULL, "
    "codes BLOB NOT NULL)",
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


def _blob(vector: np.ndarray) -> bytes:
    import numpy as np

    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _json_ids(ids: Iterable[int]) -> str:
    """Id lists travel as one JSON parameter (no 32k-variable limit)."""
    return json.dumps([int(i) for i in ids])


def _matrix(rows: Sequence[tuple[Any, bytes]], dim: int) -> np.ndarray:
    """[n, dim] float32 from rows whose second field is a vector blob."""
    import numpy as np

    if not rows:
        return np.zeros((0, dim), np.float32)
    flat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
    return flat.reshape(len(rows), -1)


def _tag_rows(blobs: Sequence[bytes | None], width: int) -> np.ndarray:
    """[n, width] float32 from tag blobs; zeros for an item without stored
    tags or with another count of them (no evidence either way)."""
    import numpy as np

    size = width * 4
    if all(b is not None and len(b) == size for b in blobs):
        joined = b"".join(blobs)  # type: ignore[arg-type]  # no None left
        return np.frombuffer(joined, np.float32).reshape(len(blobs), width)
    out = np.zeros((len(blobs), width), np.float32)
    for row, blob in enumerate(blobs):
        if blob is not None and len(blob) == size:
            out[row] = np.frombuffer(blob, np.float32)
    return out


class Rows(NamedTuple):
    """Stored rows of some items: ids, vectors [n, D] and, when asked for,
    tag probabilities [n, T] (else None)."""

    ids: np.ndarray
    vectors: np.ndarray
    tags: np.ndarray | None


class Nearest(NamedTuple):
    """`Rows` of the items nearest to a query, best first, with their
    exact cosines."""

    ids: np.ndarray
    scores: np.ndarray
    vectors: np.ndarray
    tags: np.ndarray | None


# Codes ----------------------------------------------------------------------


class _Chunk:
    """One row of the codes table as writable arrays."""

    def __init__(self, number: int, dim: int, blobs: Sequence[bytes] | None) -> None:
        import numpy as np

        self.number = number
        if blobs is None:
            self.ids = np.zeros(CHUNK_SLOTS, np.int64)
            self.scales = np.zeros(CHUNK_SLOTS, np.float32)
            self.sums = np.zeros(CHUNK_SLOTS, np.int32)
            self.codes = np.zeros((dim, CHUNK_SLOTS), np.int8)
            return
        ids, scales, sums, codes = blobs
        self.ids = np.frombuffer(ids, np.int64).copy()
        self.scales = np.frombuffer(scales, np.float32).copy()
        self.sums = np.frombuffer(sums, np.int32).copy()
        self.codes = np.frombuffer(codes, np.int8).reshape(dim, CHUNK_SLOTS).copy()

    def save(self, conn: Any, version: int) -> None:
        used = int((self.ids > 0).sum())
        if not used:
            conn.execute(f"DELETE FROM {CODES} WHERE chunk = ?", (self.number,))
            return
        conn.execute(
            f"INSERT OR REPLACE INTO {CODES} "
            "(chunk, version, used, ids, scales, sums, codes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.number,
                version,
                used,
                self.ids.tobytes(),
                self.scales.tobytes(),
                self.sums.tobytes(),
                self.codes.tobytes(),
            ),
        )


class _Chunks:
    """The chunks one transaction touches, read once and written once."""

    def __init__(self, conn: Any, dim: int) -> None:
        self.conn, self.dim = conn, dim
        self.loaded: dict[int, _Chunk] = {}

    def get(self, number: int) -> _Chunk:
        if number not in self.loaded:
            row = self.conn.execute(
                f"SELECT ids, scales, sums, codes FROM {CODES} WHERE chunk = ?",
                (number,),
            ).fetchone()
            self.loaded[number] = _Chunk(number, self.dim, row)
        return self.loaded[number]

    def save(self) -> None:
        if not self.loaded:
            return
        version = _next_version(self.conn)
        for chunk in self.loaded.values():
            chunk.save(self.conn, version)
        self.loaded.clear()


def _next_version(conn: Any) -> int:
    """A number never used before in this library: chunk versions tell a
    cached copy which chunks changed, even across deletions."""
    row = conn.execute(
        f"SELECT value FROM {META} WHERE key = 'codes_version'"
    ).fetchone()
    version = int(row[0]) + 1 if row else 1
    conn.execute(
        f"INSERT OR REPLACE INTO {META} (key, value) VALUES ('codes_version', ?)",
        (str(version),),
    )
    return version


def _locations(conn: Any, item_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    rows = conn.execute(
        f"SELECT item_id, chunk, slot FROM {VECTORS} WHERE item_id IN {_ID_LIST}",
        (_json_ids(item_ids),),
    ).fetchall()
    return {int(i): (int(c), int(s)) for i, c, s in rows}


def _put_vectors(conn: Any, entries: Sequence[tuple[int, np.ndarray]]) -> None:
    """Insert or replace vectors and their codes (reusing free slots)."""
    import numpy as np

    from .coarse import quantize

    if not entries:
        return
    latest = dict(entries)  # one vector per item: the last one given
    ids = list(latest)
    mat = np.stack([np.asarray(latest[i], np.float32).ravel() for i in ids])
    dim = mat.shape[1]
    codes, scales, sums = quantize(mat)
    where = _locations(conn, ids)
    chunks = _Chunks(conn, dim)
    new = [row for row, i in enumerate(ids) if i not in where]
    if new:
        free_chunks = conn.execute(
            f"SELECT chunk FROM {CODES} WHERE used < ? ORDER BY chunk", (CHUNK_SLOTS,)
        ).fetchall()
        (last,) = conn.execute(
            f"SELECT coalesce(max(chunk), 0) FROM {CODES}"
        ).fetchone()
        numbers = [n for (n,) in free_chunks]
        taken = 0
        while taken < len(new):
            if numbers:
                number = numbers.pop(0)
            else:
                last += 1
                number = last
            chunk = chunks.get(number)
            for slot in np.flatnonzero(chunk.ids == 0)[: len(new) - taken]:
                where[ids[new[taken]]] = (number, int(slot))
                chunk.ids[slot] = ids[new[taken]]  # reserve it
                taken += 1
    for row, item_id in enumerate(ids):
        number, slot = where[item_id]
        chunk = chunks.get(number)
        chunk.ids[slot] = item_id
        chunk.scales[slot] = scales[row]
        chunk.sums[slot] = sums[row]
        chunk.codes[:, slot] = codes[row]
    chunks.save()
    conn.executemany(
        f"INSERT OR REPLACE INTO {VECTORS} (item_id, embedding, chunk, slot) "
        "VALUES (?, ?, ?, ?)",
        [(i, mat[row].tobytes(), *where[i]) for row, i in enumerate(ids)],
    )


def _drop_vectors(conn: Any, item_ids: Sequence[int]) -> int:
    """Delete vectors and free their code slots; returns how many existed."""
    where = _locations(conn, item_ids)
    if not where:
        return 0
    (total,) = conn.execute(f"SELECT count(*) FROM {VECTORS}").fetchone()
    if len(where) == total:  # everything goes (a new bundle): no slot work
        conn.execute(f"DELETE FROM {VECTORS}")
        conn.execute(f"DELETE FROM {CODES}")
        return total
    dim = _dim_of(conn)
    chunks = _Chunks(conn, dim)
    for number, slot in where.values():
        chunk = chunks.get(number)
        chunk.ids[slot] = 0
        chunk.scales[slot] = 0.0
        chunk.sums[slot] = 0
        chunk.codes[:, slot] = 0
    chunks.save()
    conn.execute(
        f"DELETE FROM {VECTORS} WHERE item_id IN {_ID_LIST}", (_json_ids(where),)
    )
    slots, used = conn.execute(f"SELECT count(*), sum(used) FROM {CODES}").fetchone()
    free = slots * CHUNK_SLOTS - (used or 0)
    if free > max(CHUNK_SLOTS, SLACK_FRACTION * (used or 0)):
        _rebuild_codes(conn)
    return len(where)


def _dim_of(conn: Any) -> int:
    row = conn.execute(f"SELECT embedding FROM {VECTORS} LIMIT 1").fetchone()
    return len(row[0]) // 4 if row else 0


def _rebuild_codes(conn: Any) -> None:
    """Codes for every vector, packed densely in item id order."""
    from .coarse import quantize

    conn.execute(f"DELETE FROM {CODES}")
    dim = _dim_of(conn)
    if not dim:
        return
    version = _next_version(conn)
    cursor = conn.execute(f"SELECT item_id, embedding FROM {VECTORS} ORDER BY item_id")
    number = 0
    while rows := cursor.fetchmany(CHUNK_SLOTS):
        number += 1
        mat = _matrix(rows, dim)
        codes, scales, sums = quantize(mat)
        chunk = _Chunk(number, dim, None)
        n = len(rows)
        chunk.ids[:n] = [r[0] for r in rows]
        chunk.scales[:n] = scales
        chunk.sums[:n] = sums
        chunk.codes[:, :n] = codes.T
        chunk.save(conn, version)
        conn.executemany(
            f"UPDATE {VECTORS} SET chunk = ?, slot = ? WHERE item_id = ?",
            [(number, slot, r[0]) for slot, r in enumerate(rows)],
        )


# Converting beets-clap 0.1's sqlite-vec table --------------------------------


def _is_vec0(conn: Any) -> bool:
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (VECTORS,)
    ).fetchone()
    return bool(row and row[0] and row[0].lstrip().upper().startswith("CREATE VIRTUAL"))


def _extension_connection(db_path: str, timeout: float) -> Any:
    """A connection with sqlite-vec loaded (the standard sqlite3, or sqlean
    where this Python's sqlite3 cannot load extensions)."""
    import sqlite3

    module: Any = sqlite3
    if not hasattr(sqlite3.Connection, "enable_load_extension"):
        try:
            import sqlean as module
        except ImportError as exc:
            raise StoreError(
                "this library's clap index was made by beets-clap 0.1 (sqlite-vec); "
                "converting it (once, vectors kept) needs SQLite extension loading: "
                "pip install 'beets-clap[vec]'"
            ) from exc
    path = os.environ.get(VEC_PATH_ENV)
    try:
        if not path:
            import sqlite_vec

            path = sqlite_vec.loadable_path()
    except ImportError as exc:
        raise StoreError(
            "this library's clap index was made by beets-clap 0.1 (sqlite-vec); "
            "converting it (once, vectors kept) needs sqlite-vec: "
            "pip install 'beets-clap[vec]'"
        ) from exc
    conn = module.connect(db_path, timeout=timeout, isolation_level=None)
    try:
        conn.enable_load_extension(True)
        conn.load_extension(path)
        conn.enable_load_extension(False)
    except module.Error as exc:
        conn.close()
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(f"cannot load sqlite-vec from {path}: {detail}") from exc
    return conn


def _convert_vec0(db_path: str, timeout: float) -> None:
    """Move the vectors out of a vec0 table into the plain tables, in one
    transaction: nothing is re-embedded and nothing is lost on failure."""
    conn = _extension_connection(db_path, timeout)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _is_vec0(conn):
                rows = conn.execute(
                    f"SELECT item_id, embedding FROM {VECTORS}"
                ).fetchall()
                conn.execute(f"DROP TABLE {VECTORS}")
                for ddl in _VECTOR_SCHEMA:
                    conn.execute(ddl)
                conn.execute(f"DELETE FROM {CODES}")
                for start in range(0, len(rows), CHUNK_SLOTS):
                    _put_vectors(
                        conn,
                        [
                            (int(i), _frombytes(blob))
                            for i, blob in rows[start : start + CHUNK_SLOTS]
                        ],
                    )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def _frombytes(blob: bytes) -> np.ndarray:
    import numpy as np

    return np.frombuffer(blob, np.float32)


class Store:
    """Vectors, codes and per-item index state in the library database.

    Vectors, their codes and their state rows are only ever written in the
    same transaction, so an interrupted run leaves whole batches or nothing.
    Searching is two passes: an int8 scan of every code (in memory, kept
    between searches) picks a few hundred candidates, whose float vectors
    are then read back and scored exactly.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        # beets' importer calls plugin stages and listeners from several
        # pipeline threads; one connection must not interleave transactions.
        self._lock = threading.RLock()
        self._coarse: CoarseIndex | None = None

    @classmethod
    def open(cls, db_path: Path | str, timeout: float | None = None) -> Store:
        if timeout is None:
            timeout = BUSY_TIMEOUT_SECONDS
        conn = connect(db_path, timeout)
        try:
            if _is_vec0(conn):
                _convert_vec0(os.fsdecode(db_path), timeout)
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
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows.fetchall()}

    def ready(self) -> bool:
        """Whether an index was ever created in this library."""
        return {VECTORS, CODES, STATE, META} <= self._table_names()

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
        dimension change recreates the vector tables. Returns how many items'
        rows were dropped.
        """
        with self.transaction() as conn:
            for ddl in _SCHEMA:
                conn.execute(ddl)
            meta = dict(conn.execute(f"SELECT key, value FROM {META}").fetchall())
            dropped = 0
            if meta.get("dim") not in (None, str(dim)):
                conn.execute(f"DROP TABLE IF EXISTS {VECTORS}")
                conn.execute(f"DROP TABLE IF EXISTS {CODES}")
            for ddl in _VECTOR_SCHEMA:
                conn.execute(ddl)
            if meta.get("bundle") != bundle:
                (dropped,) = conn.execute(
                    f"SELECT count(*) FROM {STATE} WHERE bundle != ?", (bundle,)
                ).fetchone()
                conn.execute(f"DELETE FROM {STATE} WHERE bundle != ?", (bundle,))
                conn.execute(_DELETE_TAGS_WITHOUT_STATE)
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
        return _drop_vectors(conn, orphans)

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
        """Store one batch: vectors, codes, tags and state rows in one
        transaction."""
        now = time.time()
        ids = [(e.item_id,) for e in done] + [(f.item_id,) for f in failed]
        with self.transaction() as conn:
            _drop_vectors(conn, [f.item_id for f in failed])
            _put_vectors(conn, [(e.item_id, e.vector) for e in done])
            conn.executemany(f"DELETE FROM {TAGS} WHERE item_id = ?", ids)
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
        ids = [int(i) for i in item_ids]
        if not ids or not self.ready():
            return
        with self.transaction() as conn:
            _drop_vectors(conn, ids)
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

    def coarse_index(self) -> CoarseIndex | None:
        """The in-memory codes, brought up to date with the database (only
        chunks whose version changed are read again); None when empty."""
        from .coarse import CoarseIndex

        with self._lock:
            # One read transaction: the listing and the blobs agree.
            self.conn.execute("BEGIN")
            try:
                listing = self.conn.execute(
                    f"SELECT chunk, version FROM {CODES} ORDER BY chunk"
                ).fetchall()
                if not listing:
                    self._coarse = None
                    return None
                dim = _dim_of(self.conn)
                numbers = [c for c, _ in listing]
                index = self._coarse
                if index is None or index.dim != dim or index.chunks != numbers:
                    index = CoarseIndex(dim, CHUNK_SLOTS, numbers)
                stale = [c for c, v in listing if index.versions.get(c) != v]
                if stale:
                    rows = self.conn.execute(
                        f"SELECT chunk, version, ids, scales, sums, codes "
                        f"FROM {CODES} WHERE chunk IN {_ID_LIST}",
                        (_json_ids(stale),),
                    )
                    for row in rows:
                        index.fill(*row)
            finally:
                self.conn.execute("COMMIT")
            self._coarse = index
            return index

    def _exact(
        self, query: np.ndarray, k: int, item_ids: Iterable[int], tags: int
    ) -> Nearest:
        """The k best among `item_ids`, best first."""
        import numpy as np

        rows = self.rows(item_ids, tags)
        scores = rows.vectors @ np.asarray(query, np.float32)
        order = np.argsort(-scores, kind="stable")[:k]
        return Nearest(
            rows.ids[order],
            scores[order],
            rows.vectors[order],
            None if rows.tags is None else rows.tags[order],
        )

    def nearest(
        self,
        query: np.ndarray,
        k: int,
        candidates: Iterable[int] | None = None,
        tags: int = 0,
        margin: int = RESCORE_MARGIN,
    ) -> Nearest:
        """The k items nearest to `query` with their exact cosines and
        vectors, best first, optionally among `candidates` only; with
        `tags` > 0 their tag probabilities too (`rows`).

        A filter of at most EXACT_MAX items is scored exactly; otherwise the
        int8 pass picks k + `margin` candidates and those are scored
        exactly. A caller that rescores the k itself (the query layer's
        pool) needs no margin: which items sit at the pool's edge by a few
        thousandths of cosine does not change its ranking, and every row
        read costs (~7 us of a search).
        """
        import numpy as np

        k = max(1, min(int(k), MAX_KNN))
        wanted = None
        if candidates is not None:
            wanted = np.fromiter(candidates, np.int64)  # ints straight from C
            if len(wanted) <= EXACT_MAX:
                return self._exact(query, k, wanted.tolist(), tags)
        index = self.coarse_index()
        if index is None:
            return self._exact(query, k, (), tags)
        ids, _ = index.top(query, k + max(0, int(margin)), wanted)
        return self._exact(query, k, ids.tolist(), tags)

    def knn(
        self, query: np.ndarray, k: int, candidates: Iterable[int] | None = None
    ) -> list[tuple[int, float]]:
        """The k items nearest to `query` as (item id, cosine similarity),
        best first, optionally among `candidates` only."""
        hits = self.nearest(query, k, candidates)
        return list(zip(hits.ids.tolist(), hits.scores.tolist(), strict=True))

    def vectors(self, item_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of the stored vectors among `item_ids` (missing ones
        are skipped), in ascending id order."""
        rows = self.rows(item_ids)
        return rows.ids, rows.vectors

    def rows(self, item_ids: Iterable[int], tags: int = 0) -> Rows:
        """The stored vectors among `item_ids` (missing ones are skipped), in
        ascending id order, and with `tags` > 0 their tag probabilities
        [n, tags] read by the same query (zeros where an item has none):
        one lookup per item instead of two, ~0.6 ms of a search at 100k."""
        import numpy as np

        dim = int(self.meta().get("dim", 0))
        ids_json = _json_ids(item_ids)
        if tags > 0 and TAGS in self._table_names():
            rows = self.conn.execute(
                f"SELECT v.item_id, v.embedding, t.tags FROM {VECTORS} v "
                f"LEFT JOIN {TAGS} t ON t.item_id = v.item_id "
                f"WHERE v.item_id IN {_ID_LIST} ORDER BY v.item_id",
                (ids_json,),
            ).fetchall()
            tag_mat = _tag_rows([r[2] for r in rows], tags)
        else:
            rows = self.conn.execute(
                f"SELECT item_id, embedding FROM {VECTORS} "
                f"WHERE item_id IN {_ID_LIST} ORDER BY item_id",
                (ids_json,),
            ).fetchall()
            tag_mat = np.zeros((len(rows), tags), np.float32) if tags > 0 else None
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        return Rows(ids, _matrix(rows, dim), tag_mat)

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
        return ids, _matrix(rows, int(self.meta().get("dim", 0)))

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
