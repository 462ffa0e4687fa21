"""Latency of composed searches and song paths, beside the plain search, at 100k tracks.

The library is bench_query's (beets rows and clustered vectors with tag
probabilities, written through Store.write_batch, cached under --work).
Every sample is one whole search after start-up, as a command runs it:
beets query -> seeds -> description -> ranking (or -> path), the plain
search timed in the same process as the baseline.

    python tests/benchmarks/bench_compose_speed.py [--n 100000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import bench_query  # noqa: E402
from common import percentiles  # noqa: E402

from beetsplug.clap import compose, paths, search  # noqa: E402
from beetsplug.clap.model import Bundle  # noqa: E402

TEXTS = ["without vocals", "calm piano, no drums", "rock without guitar", "ambient"]
REPEATS = 5


def _ms(samples: list[float]) -> dict[str, float]:
    p50, p95 = percentiles(samples)
    return {"p50": round(p50 * 1000, 2), "p95": round(p95 * 1000, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/beets-clap-bench"))
    parser.add_argument("--bundle", type=Path, default=None)
    args = parser.parse_args(argv)
    from beets.library import Library

    from beetsplug.clap.store import Store

    bundle = Bundle.load(args.bundle, threads=0, audio=False)
    args.work.mkdir(parents=True, exist_ok=True)
    qlib = bench_query.build_library(
        args.work,
        args.n,
        bundle.embedding_dim,
        bundle.identity,
        tags=len(bundle.tag_names),
    )
    lib = Library(str(qlib.db))
    store = Store.open(qlib.db)
    weight = search.resolve_negation_weight(None, bundle)
    rng = np.random.default_rng(0)
    seeds = [int(i) for i in rng.integers(1, args.n + 1, 40)]
    for text in TEXTS:  # start-up: sessions, the codes, remembered attributes
        search.rank_items(store, bundle, search.embed_query(bundle, text, weight), 20)

    def plain(text: str, seed: int) -> None:
        search.rank_items(store, bundle, search.embed_query(bundle, text, weight), 20)

    def seed_set(option: str, seed: int) -> compose.SeedSet:
        query = f"id:{seed}"
        return compose.seed_set(store, option, query, search.matching_ids(lib, query))

    def composed(text: str | None, seed: int, unlike: bool = False) -> None:
        query = compose.ComposedQuery(
            None if text is None else search.embed_query(bundle, text, weight),
            [seed_set("--like", seed)],
            [seed_set("--unlike", seed + 1)] if unlike else [],
        )
        compose.rank_items(store, bundle, query, 20)

    def path(seed: int, other: int, candidates: set[int] | None = None) -> None:
        start = lib.items(f"id:{seed}").get().id
        end = lib.items(f"id:{other}").get().id
        paths.song_path(store, bundle, start, end, 12, candidates)

    cases = {
        "plain search": lambda t, s: plain(t, s),
        "description --like": lambda t, s: composed(t, s),
        "description --like --unlike": lambda t, s: composed(t, s, unlike=True),
        "--like alone (clap-similar --without's twin without text)": lambda t, s: (
            composed(None, s)
        ),
        "path, 12 tracks": lambda t, s: path(s, seeds[(seeds.index(s) + 7) % 40]),
    }
    # Round-robin: every case sees the same load on a shared machine, so
    # the ratios to the plain search hold even when the absolute times move.
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(REPEATS):
        for i, seed in enumerate(seeds[:20]):
            for name, run in cases.items():
                started, started_cpu = time.perf_counter(), time.process_time()
                run(TEXTS[i % len(TEXTS)], seed)
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - started_cpu)
    results = {}
    for name in cases:
        results[name] = {**_ms(wall[name]), "cpu": _ms(cpu[name])}
        got = results[name]
        print(
            f"{name}: p50 {got['p50']} ms, p95 {got['p95']} ms "
            f"(CPU p50 {got['cpu']['p50']}, p95 {got['cpu']['p95']})"
        )
    filtered = search.matching_ids(lib, "year:1990..1999")
    samples = []
    for i, seed in enumerate(seeds[:20]):
        other = seeds[(i + 7) % 40]
        started = time.perf_counter()
        path(seed, other, search.matching_ids(lib, "year:1990..1999"))
        samples.append(time.perf_counter() - started)
    name = f"path, 12 tracks, through year:1990..1999 ({len(filtered)} tracks)"
    results[name] = _ms(samples)
    print(f"{name}: p50 {results[name]['p50']} ms, p95 {results[name]['p95']} ms")
    print(json.dumps({"n": args.n, "ms": results}))
    store.close()
    lib._close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
