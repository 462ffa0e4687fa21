"""Query understanding per search (parse + tag matching) and long descriptions,
side by side with the parser of an earlier revision, in one process.

    python tests/benchmarks/bench_parse.py [--baseline REV] [--quick]

The baseline is `beetsplug/clap/negation.py` at REV (the single module the
parser, tag matching and scoring lived in), loaded from git into this
process; a search there parsed twice (dangling_cue, then parse_query).
Prints one JSON object; the numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib.util
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
    source = subprocess.run(
        ["git", "show", f"{rev}:beetsplug/clap/negation.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_negation.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("baseline_negation", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_negation"] = module
    spec.loader.exec_module(module)
    return module


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="d9d27be", help="git revision")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    from beetsplug.clap.query import parse_query
    from beetsplug.clap.scoring import match_head, match_tags

    manifest = json.loads((REPO / "models/clap-default/manifest.json").read_text())
    names = tuple(manifest["audio"].get("tags", []))
    old = _baseline(args.baseline)
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
