"""Search latency with and without the speech penalty, side by side.

A plain description that wants no voice is rescored for the speech penalty
(scoring.speech_penalty) even where it names no tagged attribute. This
times `embed_query` + `rank_items` for bench_query's plain descriptions on
one library, the two weights interleaved so both see the same load:

    python tests/benchmarks/bench_speech.py [--items 100000] [--work DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_query import PLAIN, build_library

from beetsplug.clap import search
from beetsplug.clap.model import Bundle, default_bundle_path
from beetsplug.clap.store import Store

WEIGHTS = (0.0, search.DEFAULT_SPEECH_WEIGHT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args(argv)
    bundle = Bundle.load(default_bundle_path(), threads=1)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-speech-"))
    try:
        lib = build_library(
            work, args.items, bundle.embedding_dim, bundle.identity,
            tags=len(bundle.tag_names),
        )  # fmt: skip
        store = Store.open(lib.db)
        store.coarse_index()
        for weight in WEIGHTS:  # warm-up: sessions, caches, the tag scale
            for text in PLAIN[:3]:
                query = search.embed_query(bundle, text, 0.5, speech_weight=weight)
                search.rank_items(store, bundle, query, 20)
        ms: dict[float, list[float]] = {w: [] for w in WEIGHTS}
        for _ in range(args.repeats):
            for weight in WEIGHTS:
                for text in PLAIN:
                    start = time.perf_counter()
                    query = search.embed_query(bundle, text, 0.5, speech_weight=weight)
                    search.rank_items(store, bundle, query, 20)
                    ms[weight].append((time.perf_counter() - start) * 1000)
        for weight, samples in ms.items():
            rescored = sum(
                search.embed_query(bundle, t, 0.5, speech_weight=weight).rescores
                for t in PLAIN
            )
            print(
                f"speech_weight {weight:g}: p50 {np.percentile(samples, 50):.1f} ms, "
                f"p95 {np.percentile(samples, 95):.1f} ms; {rescored} of "
                f"{len(PLAIN)} plain descriptions rescored"
            )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
