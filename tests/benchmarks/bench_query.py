"""Query latency, recall and storage at 10k-1M vectors, side by side with
exact numpy brute force and sqlite-vec's exact float KNN on the same data."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    beets_env,
    percentiles,
    repeat,
    run_measured,
    timed,
    write_beets_config,
)

PLAIN = [
    "calm piano",
    "jazz with saxophone",
    "energetic rock with distorted guitar",
    "ambient synth pads",
    "acoustic folk song with male vocals",
    "fast electronic dance music",
    "sad slow ballad",
    "string quartet",
    "hip hop beat",
    "female singer with guitar",
    "loud metal with screaming",
    "soft lullaby",
    "latin percussion",
    "orchestral film score",
    "reggae groove",
    "blues guitar solo",
    "happy pop song",
    "dark techno",
    "solo cello",
    "country music with fiddle",
]
NEGATED = [
    "jazz without vocals",
    "calm piano, no drums",
    "ambient, no drums",
    "rock without guitar",
    "instrumental hip hop",
    "electronic music, not fast",
    "classical without strings",
    "folk, no vocals",
    "dance music without synth",
    "pop song without female vocals",
    "drums but no bass",
    "music without percussion",
    "acoustic, non-electronic",
    "blues, no harmonica",
    "metal without screaming",
    "guitar music, no singing",
    "slow songs minus the piano",
    "no drums, no vocals",
    "orchestra without brass",
    "quiet music, not sad",
]
FILTERS = {"year:1990..1999": "~17% of items", "year:1975": "~1.6% of items"}
CLUSTERS = 2000
SPREAD = 1.0


def vectors(n: int, dim: int, kind: str, seed: int = 0) -> Iterator[np.ndarray]:
    """Unit vectors in blocks of 65536, deterministic for (n, dim, kind, seed).

    "clustered": a mixture of 2000 Gaussian clusters with Zipf-like sizes
    (genres, artists, albums) and within-cluster spread; "uniform": uniform
    on the sphere, the hardest case for any coarse pass (every score ties).
    """
    centres_rng = np.random.default_rng([seed, dim])
    centres = centres_rng.standard_normal((CLUSTERS, dim)).astype(np.float32)
    weights = 1.0 / np.arange(1, CLUSTERS + 1) ** 0.8
    weights /= weights.sum()
    for block, start in enumerate(range(0, n, 65536)):
        m = min(65536, n - start)
        rng = np.random.default_rng([seed, dim, block])
        if kind == "uniform":
            x = rng.standard_normal((m, dim)).astype(np.float32)
        else:
            which = rng.choice(CLUSTERS, m, p=weights)
            x = centres[which] + SPREAD * rng.standard_normal((m, dim)).astype(
                np.float32
            )
        yield x / np.linalg.norm(x, axis=1, keepdims=True)


@dataclass
class QueryLib:
    n: int
    dim: int
    db: Path
    npy: Path
    build_seconds: float
    store_bytes: dict[str, int]


def _table_bytes(db: Path) -> dict[str, int]:
    """Bytes on disk per plugin table (dbstat), indexes included."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT m.tbl_name, sum(s.pgsize) FROM dbstat s "
            "JOIN sqlite_master m ON m.name = s.name "
            "WHERE m.tbl_name LIKE 'clap_%' GROUP BY m.tbl_name"
        ).fetchall()
    finally:
        conn.close()
    return {name: int(size) for name, size in rows}


def build_library(
    work: Path,
    n: int,
    dim: int,
    identity: str,
    label: str = "benchmark",
    tags: int = 0,
) -> QueryLib:
    """A beets library of n items (rows written in bulk) with clustered
    vectors recorded as the bundle `identity`'s, written through
    Store.write_batch in batches of 4096; with `tags` random tag
    probabilities per item too, as a bundle with a tagger stores them (the
    searches that read them pay for it, and so does the database size)."""
    from beets import config
    from beets.library import Library

    from beetsplug.clap.store import Embedded, Store

    folder = work / f"query-{n}-{dim}"
    marker = folder / "built.json"
    db, npy = folder / "library.db", folder / "vectors.npy"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("bundle") == identity and info.get("tags", 0) == tags:
            return QueryLib(n, dim, db, npy, info["build_seconds"], _table_bytes(db))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config["create_backup_before_migrations"] = False
    lib = Library(str(db))
    rng = np.random.default_rng(n)
    formats = ["FLAC", "MP3", "AAC"]
    with lib.transaction() as tx:
        for start in range(1, n + 1, 100_000):
            ids = range(start, min(start + 100_000, n + 1))
            years = rng.integers(1960, 2021, len(ids))
            tx.mutate_many(
                "INSERT INTO items (id, path, title, artist, album, year, format, "
                "album_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        i,
                        f"/music/{i // 10}/{i}.flac".encode(),
                        f"title {i}",
                        f"artist {i % 5000}",
                        f"album {i // 10}",
                        int(y),
                        formats[i % 3],
                        i // 10 + 1,
                    )
                    for i, y in zip(ids, years, strict=True)
                ],
            )
        tx.mutate_many(
            "INSERT INTO albums (id, album, albumartist) VALUES (?, ?, ?)",
            [(a, f"album {a}", f"artist {a % 5000}") for a in range(1, n // 10 + 2)],
        )
    lib._close()
    out = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=(n, dim))
    started = time.perf_counter()
    with Store.open(db) as store:
        store.prepare(identity, dim, label)
        offset = 0
        for block in vectors(n, dim, "clustered"):
            out[offset : offset + len(block)] = block
            for s in range(0, len(block), 4096):
                part = block[s : s + 4096]
                probs = (
                    rng.random((len(part), tags), dtype=np.float32) if tags else None
                )
                store.write_batch(
                    identity,
                    [
                        Embedded(
                            offset + s + j + 1,
                            v,
                            None if probs is None else probs[j],
                            1.0,
                            1,
                            2,
                        )
                        for j, v in enumerate(part)
                    ],
                    [],
                )
            offset += len(block)
    build = time.perf_counter() - started
    out.flush()
    del out
    marker.write_text(
        json.dumps({"bundle": identity, "build_seconds": build, "tags": tags})
    )
    return QueryLib(n, dim, db, npy, build, _table_bytes(db))


def build_vec0(qlib: QueryLib) -> Path:
    """The same vectors in a sqlite-vec vec0 table (the exact baseline)."""
    from beetsplug.clap.convert import extension_connection

    path = qlib.db.parent / "vec0.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    conn = extension_connection(str(tmp), 30.0)
    try:
        conn.execute(
            f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{qlib.dim}] "
            "distance_metric=cosine)"
        )
        mat = np.load(qlib.npy, mmap_mode="r")
        for s in range(0, qlib.n, 20000):
            part = np.ascontiguousarray(mat[s : s + 20000])
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO v (rowid, embedding) VALUES (?, ?)",
                [(s + i + 1, part[i].tobytes()) for i in range(len(part))],
            )
            conn.execute("COMMIT")
    finally:
        conn.close()
    tmp.rename(path)
    return path


@dataclass
class QueryResult:
    n: int
    dim: int
    ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # p50, p95
    recall: dict[str, float] = field(default_factory=dict)
    store_bytes: dict[str, int] = field(default_factory=dict)
    build_seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


def _brute_top(mat: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k item ids (rows are ids 1..n) by dot product: the numpy
    baseline and the recall reference."""
    scores = mat @ q
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])] + 1


def _time_knn_and_brute_force(
    res: QueryResult, store: Any, mat: np.ndarray, queries: np.ndarray
) -> None:
    """The store's top 20 against numpy's over the same vectors, per query."""
    res.ms["knn"] = _ms(
        [t for q in queries for t in repeat(lambda q=q: store.knn(q, 20), 1, 0)]
    )
    res.ms["numpy brute force"] = _ms(
        [t for q in queries for t in repeat(lambda q=q: _brute_top(mat, q, 20), 1, 0)]
    )


def _recall_at_10(store: Any, mat: np.ndarray, queries: np.ndarray) -> list[float]:
    """Per query, the share of the exact top 10 that the store's top 10 holds."""
    return [
        len(set(_brute_top(mat, q, 10).tolist()) & {i for i, _ in store.knn(q, 10)})
        / 10
        for q in queries
    ]


def _ms(samples: list[float]) -> tuple[float, float]:
    p50, p95 = percentiles(samples)
    return p50 * 1000, p95 * 1000


def measure(
    qlib: QueryLib, bundle: Any, *, repeats: int = 3, vec0_queries: int = 10
) -> QueryResult:
    """Latency of the plugin's search path and of the baselines, recall@10."""
    from beets.library import Library

    from beetsplug.clap import search
    from beetsplug.clap.store import Store

    res = QueryResult(
        qlib.n, qlib.dim, store_bytes=qlib.store_bytes, build_seconds=qlib.build_seconds
    )
    lib = Library(str(qlib.db))
    store = Store.open(qlib.db)
    weight = 0.5
    with timed() as load:
        store.coarse_index()
    res.notes["coarse_load_ms"] = load.wall * 1000

    def text_search(
        texts: list[str], candidates: Any = None, forget: bool = False
    ) -> list[float]:
        times = []
        for _ in range(repeats):
            for text in texts:
                if forget:  # as if no earlier query had negated these words
                    bundle.forget_attributes()
                start = time.perf_counter()
                tq = search.embed_query(bundle, text, weight)
                search.rank_items(store, bundle, tq, 20, candidates)
                times.append(time.perf_counter() - start)
        return times

    # The library's tag scale (percentiles the query layer reads tags as):
    # read once per index version, so the first search of a process pays it.
    scale = []
    for _ in range(5):
        search._scales.clear()
        start = time.perf_counter()
        search.library_scale(store, len(bundle.tag_names))
        scale.append(time.perf_counter() - start)
    res.ms["tag scale, first search"] = _ms(scale)
    text_search(PLAIN[:2])  # warm-up: sessions, caches
    # "negated" times searches whose attributes the bundle remembers (as
    # after a first search); their first use is "negated, new attributes".
    # Without this, the first of the repeats embedded every attribute and
    # its kinds, and that third of the samples set the p95.
    for text in NEGATED:
        search.embed_query(bundle, text, weight)
    res.notes["plain_rescored"] = sum(
        search.embed_query(bundle, text, weight).rescores for text in PLAIN
    )
    res.ms["plain"] = _ms(text_search(PLAIN))
    res.ms["negated"] = _ms(text_search(NEGATED))
    res.ms["negated, new attributes"] = _ms(text_search(NEGATED, forget=True))
    embed = []
    for text in PLAIN:
        start = time.perf_counter()
        search.embed_query(bundle, text, weight)
        embed.append(time.perf_counter() - start)
    res.ms["text embedding"] = _ms(embed)
    for query in FILTERS:
        ids_times, times = [], []
        for text in PLAIN[:10]:
            start = time.perf_counter()
            candidates = search.matching_ids(lib, query)
            mid = time.perf_counter()
            tq = search.embed_query(bundle, text, weight)
            search.rank_items(store, bundle, tq, 20, candidates)
            end = time.perf_counter()
            ids_times.append(mid - start)
            times.append(end - start)
        res.ms[f"filter {query}"] = _ms(times)
        res.ms[f"filter {query}: ids"] = _ms(ids_times)
        res.notes[f"matches {query}"] = len(candidates or ())
    # Search alone (no text model), against the baselines, same vectors.
    queries = np.concatenate([bundle.embed_text(PLAIN), bundle.embed_text(NEGATED)])
    data_like = np.concatenate(list(vectors(40, qlib.dim, "clustered", seed=7)))
    mat = np.load(qlib.npy)  # exact numpy baseline: all floats in RAM
    _time_knn_and_brute_force(res, store, mat, queries)
    vec0 = build_vec0(qlib)
    from beetsplug.clap.convert import extension_connection

    conn = extension_connection(str(vec0), 30.0)
    sql = "SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = 20"
    res.ms["sqlite-vec exact KNN"] = _ms(
        [
            t
            for q in queries[:vec0_queries]
            for t in repeat(
                lambda q=q: conn.execute(sql, (q.tobytes(),)).fetchall(), 1, 0
            )
        ]
    )
    # Rescoring reads k + 100 vectors by id: from the plugin's plain table
    # in one query, against vec0's point lookups (what rescoring would cost
    # with the vectors left in sqlite-vec).
    some = np.random.default_rng(1).choice(qlib.n, 120, replace=False) + 1
    res.ms["fetch 120 vectors by id, plain table"] = _ms(
        repeat(lambda: store.vectors(some.tolist()), 10, 1)
    )
    res.ms["fetch 120 vectors by id, vec0"] = _ms(
        repeat(
            lambda: [
                conn.execute(
                    "SELECT embedding FROM v WHERE rowid = ?", (int(i),)
                ).fetchone()
                for i in some
            ],
            3,
            1,
        )
    )
    conn.close()
    for name, qs in (("text queries", queries), ("track-like queries", data_like)):
        hits = _recall_at_10(store, mat, qs)
        res.recall[name] = float(np.mean(hits))
        res.notes[f"recall min {name}"] = float(np.min(hits))
    store.close()
    lib._close()
    return res


def measure_knn(qlib: QueryLib, queries: int = 40) -> QueryResult:
    """Search alone (no text model: for a dimension the bundle does not
    have), against numpy brute force, with recall@10."""
    from beetsplug.clap.store import Store

    res = QueryResult(
        qlib.n, qlib.dim, store_bytes=qlib.store_bytes, build_seconds=qlib.build_seconds
    )
    mat = np.load(qlib.npy)
    qs = np.concatenate(list(vectors(queries, qlib.dim, "clustered", seed=7)))
    with Store.open(qlib.db) as store:
        store.knn(qs[0], 20)
        _time_knn_and_brute_force(res, store, mat, qs)
        hits = _recall_at_10(store, mat, qs)
    res.recall["track-like queries"] = float(np.mean(hits))
    return res


def recall_curve(
    n: int, dim: int, kind: str, candidates: list[int], queries: int = 50
) -> dict[int, float]:
    """recall@10 of the coarse pass + exact rescoring of R candidates, for
    each R, on n vectors of `kind` held in memory (no database)."""
    from beetsplug.clap.coarse import QUERY_SHIFT, quantize, scan

    mat = np.concatenate(list(vectors(n, dim, kind, seed=11)))
    codes, scales, sums = quantize(mat)
    codes_t = np.ascontiguousarray(codes.T)
    del codes
    offsets = (sums * QUERY_SHIFT).astype(np.int32)
    bias = np.zeros(n, np.float32)
    qs = np.concatenate(list(vectors(queries, dim, kind, seed=12)))
    if kind == "clustered":  # text-like queries sit between clusters
        rng = np.random.default_rng(13)
        qs = qs + 0.8 * rng.standard_normal(qs.shape).astype(np.float32) / np.sqrt(dim)
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    out = {}
    exact = [set(np.argsort(-(mat @ q))[:10].tolist()) for q in qs]
    for r in candidates:
        hits = []
        for q, truth in zip(qs, exact, strict=True):
            pos, _ = scan(q, codes_t, offsets, scales, bias, r)
            best = pos[np.argsort(-(mat[pos] @ q))[:10]]
            hits.append(len(truth & set(best.tolist())) / 10)
        out[r] = float(np.mean(hits))
    return out


@dataclass
class Cold:
    n: int
    clap_wall: list[float]
    clap_rss: int
    search_rss: int


def cold_search(work: Path, qlib: QueryLib, bundle_path: Path, runs: int = 3) -> Cold:
    """`beet clap "…"` from a new process (wall, peak RSS), and the peak RSS
    of a process that searches 20 times (text model and codes loaded)."""
    beetsdir = write_beets_config(work / f"beets-query-{qlib.n}", qlib.db, bundle_path)
    env = beets_env(beetsdir)
    walls, rss = [], 0
    for i in range(runs):
        run = run_measured(
            [sys.executable, "-m", "beets", "clap", PLAIN[i % len(PLAIN)], "-n", "20"],
            env=env,
        )
        if run.returncode != 0:
            raise RuntimeError(f"beet clap failed: {run.stderr.strip()[-400:]}")
        walls.append(run.wall)
        rss = max(rss, run.peak_rss)
    code = (
        "import sys\n"
        "from beetsplug.clap import search\n"
        "from beetsplug.clap.model import Bundle\n"
        "from beetsplug.clap.store import Store\n"
        f"bundle = Bundle.load({str(bundle_path)!r})\n"
        f"store = Store.open({str(qlib.db)!r})\n"
        f"for text in {PLAIN!r}:\n"
        "    tq = search.embed_query(bundle, text, 0.5)\n"
        "    search.rank_items(store, bundle, tq, 20)\n"
    )
    run = run_measured([sys.executable, "-c", code], env=env)
    if run.returncode != 0:
        raise RuntimeError(f"search process failed: {run.stderr.strip()[-400:]}")
    return Cold(qlib.n, walls, rss, run.peak_rss)
