"""The two-pass search store: int8 codes kept in step with the vectors, the
coarse scan graph, and recall against exact search on a real library."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from clap_helpers import bulk_library

from beetsplug.clap import coarse
from beetsplug.clap.store import CODES, STATE, VECTORS, Embedded, Failed, Store
from beetsplug.clap.vectors import CHUNK_SLOTS, EXACT_MAX

DIM = 48
BUNDLE = "b" * 64


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _write(store: Store, ids: list[int], mat: np.ndarray, bundle: str = BUNDLE) -> None:
    for start in range(0, len(ids), 4096):
        part = range(start, min(start + 4096, len(ids)))
        store.write_batch(
            bundle, [Embedded(ids[i], mat[i], None, 1.0, 1, 1) for i in part], []
        )


def _check_consistent(db: Path) -> dict[int, bytes]:
    """Every vector has exactly one code slot holding its id and its code,
    and no slot names an item without a vector; returns the vectors."""
    conn = sqlite3.connect(db)
    try:
        vectors = {
            i: (blob, chunk, slot)
            for i, blob, chunk, slot in conn.execute(
                f"SELECT item_id, embedding, chunk, slot FROM {VECTORS}"
            )
        }
        seen: dict[int, tuple[int, int]] = {}
        for number, used, ids, scales, codes in conn.execute(
            f"SELECT chunk, used, ids, scales, codes FROM {CODES}"
        ):
            ids = np.frombuffer(ids, np.int64)
            assert used == int((ids > 0).sum()) > 0
            codes = np.frombuffer(codes, np.int8).reshape(-1, CHUNK_SLOTS)
            scales = np.frombuffer(scales, np.float32)
            for slot in np.flatnonzero(ids):
                item = int(ids[slot])
                assert item not in seen
                seen[item] = (number, int(slot))
                vec = np.frombuffer(vectors[item][0], np.float32)
                approx = codes[:, slot] * scales[slot]
                assert np.abs(approx - vec).max() <= scales[slot] / 2 + 1e-6
        assert {i: (c, s) for i, (_, c, s) in vectors.items()} == seen
        return {i: blob for i, (blob, _, _) in vectors.items()}
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    bulk_library(tmp_path / "library.db", 20000)
    with Store.open(tmp_path / "library.db") as s:
        s.prepare(BUNDLE, DIM, "test bundle")
        yield s


def test_scan_graph_is_valid_onnx_and_matches_numpy() -> None:
    onnx.checker.check_model(onnx.load_from_string(coarse.scan_graph()), True)
    rng = np.random.default_rng(0)
    mat = _unit(rng, 3000)
    codes, scales, sums = coarse.quantize(mat)
    assert codes.dtype == np.int8
    assert np.abs(codes).max() == coarse.CODE_MAX
    query = _unit(rng, 1)[0]
    bias = np.zeros(len(mat), np.float32)
    bias[::7] = coarse.EXCLUDED
    pos, approx = coarse.scan(
        query,
        np.ascontiguousarray(codes.T),
        (sums * coarse.QUERY_SHIFT).astype(np.int32),
        scales,
        bias,
        50,
    )
    # The reference: the same integer arithmetic in numpy.
    q, q_scale = coarse.quantize_query(query)
    ref = (codes.astype(np.int64) @ (q[0].astype(np.int64) - coarse.QUERY_SHIFT)) * (
        scales * q_scale
    )
    ref[::7] = -np.inf
    assert not np.any(pos % 7 == 0)
    np.testing.assert_allclose(approx, ref[pos], rtol=1e-5, atol=1e-6)
    assert set(pos.tolist()) == set(np.argsort(-ref)[:50].tolist())
    # ... and the int8 scores are close to the exact cosines.
    assert np.abs(approx - mat[pos] @ query).max() < 0.01


def test_recall_at_10_against_exact_search(store: Store) -> None:
    rng = np.random.default_rng(1)
    mat = _unit(rng, 12000)  # uniform random: the hardest case for a coarse pass
    ids = list(range(1, len(mat) + 1))
    _write(store, ids, mat)
    hits = 0
    for query in _unit(rng, 20):
        exact = np.argsort(-(mat @ query))[:10] + 1
        got = store.knn(query, 10)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        for item_id, score in got:  # scores are exact, not approximate
            assert score == pytest.approx(float(mat[item_id - 1] @ query), abs=1e-5)
        hits += len(set(exact.tolist()) & {i for i, _ in got})
    assert hits / 200 >= 0.99


def test_a_pool_without_margin_is_the_coarse_top_k_scored_exactly(
    store: Store,
) -> None:
    """margin=0 (the query layer's pool) reads k rows, not k + 100: the
    coarse pass's own top k, with exact cosines, and nearly the exact top k."""
    rng = np.random.default_rng(5)
    mat = _unit(rng, 12000)
    _write(store, list(range(1, len(mat) + 1)), mat)
    index = store.coarse_index()
    assert index is not None
    overlap = []
    for query in _unit(rng, 10):
        pool = store.nearest(query, 256, margin=0)
        assert len(pool.ids) == 256
        coarse_top, _ = index.top(query, 256)
        assert set(pool.ids.tolist()) == set(coarse_top.tolist())
        np.testing.assert_allclose(pool.scores, mat[pool.ids - 1] @ query, atol=1e-5)
        assert list(pool.scores) == sorted(pool.scores, reverse=True)
        exact = set((np.argsort(-(mat @ query))[:256] + 1).tolist())
        overlap.append(len(exact & set(pool.ids.tolist())) / 256)
    assert min(overlap) >= 0.9


def test_the_scan_gives_the_same_answer_on_any_number_of_threads(
    store: Store,
) -> None:
    rng = np.random.default_rng(6)
    mat = _unit(rng, 9000)
    _write(store, list(range(1, len(mat) + 1)), mat)
    queries = _unit(rng, 5)
    try:
        answers = []
        for threads in (1, 2, 0):
            coarse.set_threads(threads)
            answers.append([store.knn(q, 20) for q in queries])
        assert answers[0] == answers[1] == answers[2]
    finally:
        coarse.set_threads(0)


def test_rows_read_vectors_and_tags_together(store: Store) -> None:
    rng = np.random.default_rng(7)
    mat = _unit(rng, 6)
    tags = rng.random((6, 3), dtype=np.float32)
    written = [
        Embedded(1, mat[0], tags[0], 1.0, 1, 1),
        Embedded(2, mat[1], tags[1], 1.0, 1, 1),
        Embedded(3, mat[2], tags[2][:2], 1.0, 1, 1),  # another tag count
        Embedded(4, mat[3], tags[3], 1.0, 1, 1),
        Embedded(5, mat[4], None, 1.0, 1, 1),  # a bundle without tags
    ]
    store.write_batch(BUNDLE, written, [])
    rows = store.rows([5, 1, 99, 2, 3, 4], 3)
    assert rows.ids.tolist() == [1, 2, 3, 4, 5]  # ascending, 99 skipped
    np.testing.assert_array_equal(rows.vectors, mat[:5])
    assert rows.tags is not None
    np.testing.assert_array_equal(rows.tags[[0, 1, 3]], tags[[0, 1, 3]])
    assert not rows.tags[[2, 4]].any()  # no usable tags: no evidence
    assert store.rows([1, 2], 0).tags is None
    # nearest hands back each hit's own tags, best first.
    hits = store.nearest(mat[3], 4, tags=3)
    assert hits.ids[0] == 4
    assert hits.tags is not None
    for item_id, row in zip(hits.ids.tolist(), hits.tags, strict=True):
        np.testing.assert_array_equal(row, rows.tags[item_id - 1])
    np.testing.assert_array_equal(hits.vectors, mat[hits.ids - 1])


def test_filters_small_and_large(store: Store) -> None:
    rng = np.random.default_rng(2)
    mat = _unit(rng, 9000)
    _write(store, list(range(1, 9001)), mat)
    query = _unit(rng, 1)[0]
    for size in (5, EXACT_MAX + 1, 8000):
        wanted = rng.choice(np.arange(1, 9001), size, replace=False)
        scores = mat[wanted - 1] @ query
        best = wanted[np.argsort(-scores)[:10]]
        got = [i for i, _ in store.knn(query, 10, candidates=set(wanted.tolist()))]
        assert set(got) <= set(wanted.tolist())
        assert got == best.tolist()[: len(got)]
        assert len(got) == min(10, size)
    # Ids the index does not hold are ignored, not an error.
    assert store.knn(query, 3, candidates=[10**7, 10**8]) == []


def test_codes_follow_upserts_deletes_and_failures(
    store: Store, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    db = tmp_path / "library.db"
    mat = _unit(rng, 5000)
    _write(store, list(range(1, 5001)), mat)
    assert len(_check_consistent(db)) == 5000
    query = _unit(rng, 1)[0]
    assert len(store.coarse_index()) == 5000
    # Re-embedding item 42 next to the query moves it to the top, in the
    # same process (the cached codes refresh) and on disk.
    _write(store, [42], query[None, :])
    assert store.knn(query, 1) == [(42, pytest.approx(1.0, abs=1e-5))]
    # A failure drops the vector (and its code) of an item.
    store.write_batch(BUNDLE, [], [Failed(42, "unreadable audio", 1.0, 1)])
    assert 42 not in {i for i, _ in store.knn(query, 20)}
    # Deleting frees slots; new items reuse them instead of growing.
    store.delete_items(range(100, 200))
    (chunks_before,) = store.conn.execute(f"SELECT count(*) FROM {CODES}").fetchone()
    _write(store, list(range(6001, 6050)), _unit(rng, 49))
    (chunks_after,) = store.conn.execute(f"SELECT count(*) FROM {CODES}").fetchone()
    assert chunks_after == chunks_before
    vectors = _check_consistent(db)
    assert len(vectors) == 5000 - 1 - 100 + 49
    assert not set(range(100, 200)) & set(vectors)


def test_another_process_sees_new_vectors(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    _write(store, list(range(1, 3001)), _unit(rng, 3000))
    query = _unit(rng, 1)[0]
    with Store.open(tmp_path / "library.db") as reader:
        reader.knn(query, 5)  # loads its copy of the codes
        _write(store, [7000], query[None, :])
        assert reader.knn(query, 1)[0][0] == 7000
        store.delete_items([7000])
        assert reader.knn(query, 1)[0][0] != 7000


def test_removing_most_items_packs_the_codes(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    mat = _unit(rng, 3 * CHUNK_SLOTS)
    _write(store, list(range(1, len(mat) + 1)), mat)
    (chunks,) = store.conn.execute(f"SELECT count(*) FROM {CODES}").fetchone()
    assert chunks == 3
    keep = list(range(1, len(mat) + 1, 10))
    store.delete_items(set(range(1, len(mat) + 1)) - set(keep))
    (chunks,) = store.conn.execute(f"SELECT count(*) FROM {CODES}").fetchone()
    assert chunks == 1
    assert sorted(_check_consistent(tmp_path / "library.db")) == keep
    query = _unit(rng, 1)[0]
    best = np.array(keep)[np.argsort(-(mat[np.array(keep) - 1] @ query))[:10]]
    assert [i for i, _ in store.knn(query, 10)] == best.tolist()


def test_a_new_bundle_or_dimension_drops_vectors_and_codes(
    store: Store, tmp_path: Path
) -> None:
    rng = np.random.default_rng(6)
    _write(store, list(range(1, 101)), _unit(rng, 100))
    store.conn.executemany(
        f"UPDATE {STATE} SET bundle = ? WHERE item_id = ?",
        [("c" * 64, i) for i in range(1, 51)],
    )
    # Half the items belong to another bundle: only they go.
    assert store.prepare(BUNDLE, DIM, "test bundle") == 0
    assert store.prepare("c" * 64, DIM, "other") == 50
    assert sorted(_check_consistent(tmp_path / "library.db")) == list(range(1, 51))
    assert store.prepare("d" * 64, DIM * 2, "wider") == 50
    assert _check_consistent(tmp_path / "library.db") == {}
    assert store.coarse_index() is None
    assert store.knn(_unit(rng, 1, DIM * 2)[0], 5) == []
    _write(store, [1, 2], _unit(rng, 2, DIM * 2), bundle="d" * 64)
    assert sorted(_check_consistent(tmp_path / "library.db")) == [1, 2]
