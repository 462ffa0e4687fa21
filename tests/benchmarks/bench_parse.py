"""Query understanding per search, whole text searches and long descriptions,
side by side with the plugin of an earlier revision, in one process.

    python tests/benchmarks/bench_parse.py [--baseline REV] [--quick] [--library N]

The baseline is `beetsplug/clap` at REV, extracted from git and imported
as the package `baseline_clap` (its parser, tag matching and scoring lived
in negation.py, and a search parsed twice: dangling_cue, then
parse_query; after it, query.py and taglinks.py). Searches of the two
alternate, query by query, with the default bundle; with `--library N`
also whole `beet clap` searches (embed_query + rank_items) over a beets
library of N items with vectors and tags, each side through its own
store. Prints one JSON object; the numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from bench_query import NEGATED, PLAIN  # noqa: E402

LONG = {
    "'high ' x 2000 (10,000 chars)": ("high " * 2000)[:10_000],
    "'no drums, ' x 1000 (10,000 chars)": "no drums, " * 1000,
}


def _baseline(rev: str) -> Any:
    """The plugin package at `rev`, imported as `baseline_clap`."""
    root = Path(tempfile.mkdtemp())
    archive = subprocess.run(
        ["git", "archive", rev, "beetsplug/clap"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    (root / "beetsplug" / "clap").rename(root / "baseline_clap")
    sys.path.insert(0, str(root))
    return importlib.import_module("baseline_clap")


def _old_query_side(rev: str) -> Any:
    """The baseline's parser and tag matching as one namespace: one module
    (negation.py) before the renovation, query + taglinks after it."""
    import types

    try:
        return importlib.import_module("baseline_clap.negation")
    except ModuleNotFoundError:
        query = importlib.import_module("baseline_clap.query")
        links = importlib.import_module("baseline_clap.taglinks")
        return types.SimpleNamespace(
            parse_query=query.parse_query,
            match_tags=links.match_tags,
            match_head=links.match_head,
        )


def _ms(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50": round(statistics.median(samples), 3),
        "p95": round(samples[int(0.95 * (len(samples) - 1))], 3),
    }


def _take_turns(
    search: dict[str, Callable[[str], Any]], texts: list[str], repeats: int
) -> dict[str, Any]:
    """p50 / p95 ms of each side's search of each description, the sides
    taking turns (which goes first alternates by round)."""
    samples: dict[str, list[float]] = {side: [] for side in search}
    for r in range(repeats):
        for text in texts:
            for side in ("baseline", "now") if r % 2 else ("now", "baseline"):
                start = time.perf_counter()
                search[side](text)
                samples[side].append((time.perf_counter() - start) * 1000)
    return _summary(samples)


def _sides() -> dict[str, str]:
    """Each side's plugin package."""
    return {"baseline": "baseline_clap", "now": "beetsplug.clap"}


def _searches(texts: list[str], repeats: int) -> dict[str, Any]:
    """embed_query + score of each description over a pool of 256 random
    unit vectors with one probability per tag, the two revisions taking
    turns."""
    import numpy as np

    bundle_dir = REPO / "models" / "clap-default"
    rng = np.random.default_rng(0)
    mat = rng.standard_normal((256, 256)).astype(np.float32)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    search = {}
    for side, pkg in _sides().items():
        module = importlib.import_module(f"{pkg}.search")
        bundle = importlib.import_module(f"{pkg}.model").Bundle.load(bundle_dir)
        tags = rng.random((256, len(bundle.tag_names))).astype(np.float32)
        for text in texts:  # warm: sessions, remembered attributes
            module.embed_query(bundle, text, 0.5)

        def run(text: str, module: Any = module, bundle: Any = bundle,
                tags: np.ndarray = tags) -> None:  # fmt: skip
            query = module.embed_query(bundle, text, 0.5)
            query.score(mat, tags if query.uses_tags else None)

        search[side] = run
    return _take_turns(search, texts, repeats)


def _library_searches(texts: list[str], n: int, repeats: int) -> dict[str, Any]:
    """embed_query + rank_items (limit 20) over a library of n items, each
    revision through its own store, taking turns."""
    from bench_query import build_library

    from beetsplug.clap.model import Bundle

    bundle_dir = REPO / "models" / "clap-default"
    now_bundle = Bundle.load(bundle_dir)
    qlib = build_library(
        Path(tempfile.mkdtemp()),
        n,
        now_bundle.embedding_dim,
        now_bundle.identity,
        tags=len(now_bundle.tag_names),
    )
    search = {}
    for side, pkg in _sides().items():
        module = importlib.import_module(f"{pkg}.search")
        bundle = importlib.import_module(f"{pkg}.model").Bundle.load(bundle_dir)
        store = importlib.import_module(f"{pkg}.store").Store.open(qlib.db)

        def run(text: str, module: Any = module, bundle: Any = bundle,
                store: Any = store) -> None:  # fmt: skip
            module.rank_items(store, bundle, module.embed_query(bundle, text, 0.5), 20)

        for text in texts:  # warm: sessions, scales, remembered attributes
            run(text)
        search[side] = run
    return {"items": n, **_take_turns(search, texts, repeats)}


def _summary(samples: dict[str, list[float]]) -> dict[str, Any]:
    out = {}
    for side, values in samples.items():
        values.sort()
        out[side] = {
            "p50": round(statistics.median(values), 3),
            "p95": round(values[int(0.95 * (len(values) - 1))], 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="d9d27be", help="git revision")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--library", type=int, default=0, metavar="N", help="also search N items"
    )
    args = parser.parse_args()

    from beetsplug.clap.query import parse_query
    from beetsplug.clap.taglinks import match_head, match_tags

    manifest = json.loads((REPO / "models/clap-default/manifest.json").read_text())
    names = tuple(manifest["audio"].get("tags", []))
    _baseline(args.baseline)  # importable as baseline_clap from here on
    old = _old_query_side(args.baseline)
    texts = PLAIN + NEGATED
    repeats = 5 if args.quick else 30

    def new_search() -> None:
        for text in texts:
            parsed = parse_query(text, args.max_tokens)
            for a in parsed.negated:
                match_tags(a, names)
            for a in parsed.affirmed:
                match_head(a, names)

    def old_search() -> None:
        for text in texts:
            if hasattr(old, "dangling_cue"):  # d9d27be parsed twice
                old.dangling_cue(text)
            parsed = old.parse_query(text)
            for a in parsed.negated:
                old.match_tags(a, names)
            for a in parsed.affirmed:
                old.match_head(a, names)

    new_search(), old_search()  # warm the caches a running plugin has warm
    out: dict[str, Any] = {
        "queries": len(texts),
        "per 40 queries, ms": {
            "baseline": _ms(old_search, repeats),
            "now": _ms(new_search, repeats),
        },
        "long": {},
    }
    out["search, ms"] = _searches(texts, 5 if args.quick else 15)
    if args.library:
        out["library search, ms"] = _library_searches(
            texts, args.library, 3 if args.quick else 10
        )
    for label, text in LONG.items():
        row = {
            "now": _ms(lambda t=text: parse_query(t, args.max_tokens), repeats),
            "now, unbounded": _ms(lambda t=text: parse_query(t, 10**6), 3),
        }
        if not args.quick:
            row["baseline"] = _ms(lambda t=text: old.parse_query(t), 1)
        out["long"][label] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
