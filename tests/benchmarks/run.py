"""Run every speed benchmark and write docs/benchmarks.md (# Speed) and plots.

    python tests/benchmarks/run.py --out docs            # ~20 min on 2 cores
    python tests/benchmarks/run.py --out /tmp/b --quick  # a smoke run, ~3 min

Baselines run in the same process run as what they are compared with
(numpy brute force and sqlite-vec's exact KNN on the same vectors, fp32
against int8, full decode against seeking), so ratios hold on a noisy,
shared machine even where absolute times drift. Everything generated
(audio, libraries, bundles) is cached under --work.
"""

from __future__ import annotations

import os

# As many BLAS threads as there are cores: the numpy baseline then uses the
# same resources as the plugin's scan (onnxruntime, one thread per physical
# core; the same count on the 2-core machine of docs/benchmarks.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(os.cpu_count() or 1))
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import argparse
import datetime
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, build_bundle, load_average

TARGETS = {
    "index_per_min": 1000,
    "p95_100k_ms": 10,
    "p95_1m_ms": 60,
    "recall": 0.99,
    "cold_s": 1.5,
    "version_ratio": 1.3,
    "rss_1m_mb": 500,
    "store_1m_gb": 2.5,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load_average():.1f}] {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--work", type=Path, default=Path("/tmp/beets-clap-bench"))
    parser.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="bundle to index and search with (default: one built with the "
        "shipped architecture, trainer config clap_default, untrained heads)",
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--tracks", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.tracks = "2000,20000", 12
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started": datetime.datetime.now().isoformat()}
    results["machine"] = _machine()
    results["command"] = "python tests/benchmarks/run.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )

    log("bundles (shipped architecture, int8 and fp32)")
    int8 = args.bundle or build_bundle(work / "bundle-int8")
    fp32 = build_bundle(work / "bundle-fp32", quantize=False)
    from beetsplug.clap.model import Bundle

    bundle = Bundle.load(int8)
    results["bundle"] = {
        "path": str(int8),
        "name": bundle.label,
        "dim": bundle.embedding_dim,
        "max_windows": bundle.max_windows,
        "window_seconds": bundle.window_seconds,
        "tags": len(bundle.tag_names),
    }

    import bench_model

    log("model speed")
    results["model"] = [
        asdict(bench_model.measure(int8, "int8 (shipped)")),
        asdict(bench_model.measure(fp32, "fp32")),
    ]

    import bench_query

    results["query"], results["cold"] = [], []
    for n in sizes:
        log(f"query library of {n:,}")
        qlib = bench_query.build_library(
            work, n, bundle.embedding_dim, bundle.identity, tags=len(bundle.tag_names)
        )
        log(f"query latency at {n:,}")
        res = bench_query.measure(qlib, bundle, repeats=1 if args.quick else 3)
        results["query"].append(asdict(res))
        log(f"cold search at {n:,}")
        results["cold"].append(
            asdict(
                bench_query.cold_search(work, qlib, int8, runs=2 if args.quick else 3)
            )
        )
    if not args.quick:
        log("512 dimensions at 100,000 (search alone)")
        wide = bench_query.build_library(work, 100_000, 512, "bench-512")
        results["query512"] = asdict(bench_query.measure_knn(wide))
    log("recall against candidates")
    n_curve = max(sizes)
    results["recall_curve"] = {
        kind: bench_query.recall_curve(
            n_curve, bundle.embedding_dim, kind, [10, 20, 50, 100, 200]
        )
        for kind in ("clustered", "uniform")
    }
    results["recall_curve_n"] = n_curve

    import bench_startup

    log("start-up")
    startup = bench_startup.measure(
        work,
        work / f"query-{sizes[0]}-{bundle.embedding_dim}" / "library.db",
        int8,
        runs=5 if args.quick else 15,
    )
    results["startup"] = asdict(startup) | {"ratio": startup.ratio}

    import bench_index

    formats = ["mp3", "flac", "ogg", "m4a"]
    cores = os.cpu_count() or 1
    default_windows = bundle.max_windows
    plan = [(fmt, cores, w) for fmt in formats for w in sorted({2, default_windows})]
    plan += [("mp3", 1, 2), ("mp3", 1, default_windows)]
    plan += [("mp3", cores, w) for w in (1, 4) if w != default_windows]
    results["index"] = []
    for fmt, jobs, w in plan:
        log(f"clap-index {args.tracks} x 3 min {fmt}, -j {jobs}, {w} windows")
        run = bench_index.index_run(work, int8, fmt, args.tracks, jobs, w)
        results["index"].append(
            asdict(run)
            | {
                "per_minute": run.per_minute,
                "cpu_ms_per_track": run.cpu_ms_per_track,
                "steady_per_minute": run.steady_per_minute,
                "steady_cpu_ms_per_track": run.steady_cpu_ms_per_track,
                "load": load_average(),
            }
        )
    log("where the time goes, per track")
    results["profile"] = [
        asdict(bench_index.profile(work, int8, fmt, w))
        for fmt in formats
        for w in ((1, 2, 3, 4, 8) if fmt == "mp3" else (1, 2, 4, 8))
    ]

    import bench_windows

    log("windows per track against quality (realset)")
    data = bench_windows.build_realset(work / "realset")
    results["windows_quality"] = (
        [asdict(q) for q in bench_windows.measure(int8, data, [1, 2, 3, 4])]
        if data
        else None
    )
    results["finished"] = datetime.datetime.now().isoformat()
    results["load_end"] = load_average()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks_speed.json").write_text(
        json.dumps(results, indent=1, default=float) + "\n"
    )
    import report

    report.write(results, args.out)
    log(f"wrote {args.out / 'benchmarks.md'} and plots in {args.out / 'img'}")
    return 0


def _machine() -> dict[str, Any]:
    import numpy
    import onnxruntime

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sqlite3

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_start": load_average(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "onnxruntime": onnxruntime.__version__,
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


if __name__ == "__main__":
    sys.exit(main())
