"""The vector engine: float32 vectors, their int8 codes in chunks, nearest."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .schema import CODES, ID_LIST, META, TAGS, VECTORS, json_ids, table_names

if TYPE_CHECKING:
    import numpy as np

    from .coarse import CoarseIndex

# Most results one search asks for (pools for negation and albums included).
MAX_KNN = 4096
# Vectors per code chunk: small enough that adding a batch rewrites little,
# large enough that the scan reads a large library's codes in few blobs.
CHUNK_SLOTS = 4096
# The coarse pass hands the exact rescoring k + RESCORE_MARGIN candidates:
# an int8 code's cosine is off by far less than the gap this margin spans,
# so the true top k is among them (recall in docs/benchmarks.md), for large
# k and dense libraries too.
RESCORE_MARGIN = 100
# A beets filter matching at most this many items is scored exactly
# straight away: reading that many vectors costs less than a scan.
EXACT_MAX = 2000
# Free slots are reclaimed (codes rebuilt densely) when they exceed a
# quarter of the vectors, or one chunk, whichever is more.
SLACK_FRACTION = 0.25


def float32_blob(vector: np.ndarray) -> bytes:
    import numpy as np

    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def matrix(rows: Sequence[tuple[Any, bytes]], dim: int) -> np.ndarray:
    """[n, dim] float32 from rows whose second field is a vector blob."""
    import numpy as np

    if not rows:
        return np.zeros((0, dim), np.float32)
    flat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
    return flat.reshape(len(rows), -1)


def tag_rows(blobs: Sequence[bytes | None], width: int) -> np.ndarray:
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
        f"SELECT item_id, chunk, slot FROM {VECTORS} WHERE item_id IN {ID_LIST}",
        (json_ids(item_ids),),
    ).fetchall()
    return {int(i): (int(c), int(s)) for i, c, s in rows}


def put_vectors(conn: Any, entries: Sequence[tuple[int, np.ndarray]]) -> None:
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


def drop_vectors(conn: Any, item_ids: Sequence[int]) -> int:
    """Delete vectors and free their code slots; returns how many existed."""
    where = _locations(conn, item_ids)
    if not where:
        return 0
    (total,) = conn.execute(f"SELECT count(*) FROM {VECTORS}").fetchone()
    if len(where) == total:  # everything goes (a new bundle): no slot work
        conn.execute(f"DELETE FROM {VECTORS}")
        conn.execute(f"DELETE FROM {CODES}")
        return total
    dim = dim_of(conn)
    chunks = _Chunks(conn, dim)
    for number, slot in where.values():
        chunk = chunks.get(number)
        chunk.ids[slot] = 0
        chunk.scales[slot] = 0.0
        chunk.sums[slot] = 0
        chunk.codes[:, slot] = 0
    chunks.save()
    conn.execute(
        f"DELETE FROM {VECTORS} WHERE item_id IN {ID_LIST}", (json_ids(where),)
    )
    slots, used = conn.execute(f"SELECT count(*), sum(used) FROM {CODES}").fetchone()
    free = slots * CHUNK_SLOTS - (used or 0)
    if free > max(CHUNK_SLOTS, SLACK_FRACTION * (used or 0)):
        rebuild_codes(conn)
    return len(where)


def dim_of(conn: Any) -> int:
    row = conn.execute(f"SELECT embedding FROM {VECTORS} LIMIT 1").fetchone()
    return len(row[0]) // 4 if row else 0


def rebuild_codes(conn: Any) -> None:
    """Codes for every vector, packed densely in item id order."""
    from .coarse import quantize

    conn.execute(f"DELETE FROM {CODES}")
    dim = dim_of(conn)
    if not dim:
        return
    version = _next_version(conn)
    cursor = conn.execute(f"SELECT item_id, embedding FROM {VECTORS} ORDER BY item_id")
    number = 0
    while rows := cursor.fetchmany(CHUNK_SLOTS):
        number += 1
        mat = matrix(rows, dim)
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


# Search -----------------------------------------------------------------------


class VectorIndex:
    """Nearest-neighbour search over the vector tables of one connection.

    Two passes: an int8 scan of every code (in memory, kept between
    searches and refreshed chunk by chunk) picks a few hundred candidates,
    whose float vectors are then read back and scored exactly.
    """

    def __init__(self, conn: Any, lock: threading.RLock) -> None:
        self.conn = conn
        # Shared with the writer of this connection: a refresh of the codes
        # must not interleave with a write transaction.
        self._lock = lock
        self._coarse: CoarseIndex | None = None

    def dim(self) -> int:
        """The index's vector dimension (0 before the first index)."""
        if META not in table_names(self.conn):
            return 0
        row = self.conn.execute(
            f"SELECT value FROM {META} WHERE key = 'dim'"
        ).fetchone()
        return int(row[0]) if row else 0

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
                dim = dim_of(self.conn)
                numbers = [c for c, _ in listing]
                index = self._coarse
                if index is None or index.dim != dim or index.chunks != numbers:
                    index = CoarseIndex(dim, CHUNK_SLOTS, numbers)
                stale = [c for c, v in listing if index.versions.get(c) != v]
                if stale:
                    rows = self.conn.execute(
                        f"SELECT chunk, version, ids, scales, sums, codes "
                        f"FROM {CODES} WHERE chunk IN {ID_LIST}",
                        (json_ids(stale),),
                    )
                    for row in rows:
                        index.fill(*row)
            finally:
                self.conn.execute("COMMIT")
            self._coarse = index
            return index

    def rows(self, item_ids: Iterable[int], tags: int = 0) -> Rows:
        """The stored vectors among `item_ids` (missing ones are skipped), in
        ascending id order, and with `tags` > 0 their tag probabilities
        [n, tags] read by the same query (zeros where an item has none):
        one lookup per item instead of two."""
        import numpy as np

        dim = self.dim()
        ids_json = json_ids(item_ids)
        if tags > 0 and TAGS in table_names(self.conn):
            rows = self.conn.execute(
                f"SELECT v.item_id, v.embedding, t.tags FROM {VECTORS} v "
                f"LEFT JOIN {TAGS} t ON t.item_id = v.item_id "
                f"WHERE v.item_id IN {ID_LIST} ORDER BY v.item_id",
                (ids_json,),
            ).fetchall()
            tag_mat = tag_rows([r[2] for r in rows], tags)
        else:
            rows = self.conn.execute(
                f"SELECT item_id, embedding FROM {VECTORS} "
                f"WHERE item_id IN {ID_LIST} ORDER BY item_id",
                (ids_json,),
            ).fetchall()
            tag_mat = np.zeros((len(rows), tags), np.float32) if tags > 0 else None
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        return Rows(ids, matrix(rows, dim), tag_mat)

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
        read costs time.
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
