"""Where the taggers' silence can be trusted: the real corpus' absence bars.

The real-recording training corpus (trainer/realcorpus.py) states a concept
absent when every tag for it stays under a bar. This counts, on the
realset's choose part (never the report part), how many clips each bar
would deny that the labels say hold the concept:

    python tests/benchmarks/realset/absence.py --data REALSET [--cache DIR]

A bar is safe when it denies no labelled-present clip; the sources file's
`captions.absent` takes the largest safe bar per concept (docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[2]))

import check  # noqa: E402

BARS = (0.01, 0.02, 0.03, 0.05, 0.1)


def denials(
    recipe: dict,
    concepts: Sequence[str | None],
    probs: np.ndarray,
    part: np.ndarray,
    negatable: Sequence[str],
) -> list[dict]:
    """Per negatable concept: the labelled-present clips of `part` that each
    bar would deny (every tag of the concept under it), and the largest bar
    that denies none. `concepts` gives each column of `probs` its concept."""
    rows = []
    for concept in negatable:
        cols = [k for k, c in enumerate(concepts) if c == concept]
        present = check.known(recipe, concept)[part] == 1
        row: dict = {"concept": concept, "labelled_present": int(present.sum())}
        rows.append(row)
        if not cols or not present.any():
            continue
        silence = probs[part][:, cols].max(axis=1)
        for bar in BARS:
            row[f"denied_present<{bar}"] = int((present & (silence < bar)).sum())
        safe = [b for b in BARS if row[f"denied_present<{b}"] == 0]
        row["largest_safe_bar"] = max(safe) if safe else None
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    from beetsplug.clap.meanings import read_tag_meanings
    from trainer.realcorpus import load_sources

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="built realset")
    parser.add_argument("--cache", type=Path, help="tag cache shared with check.py")
    parser.add_argument("--labels", type=Path, default=HERE / "labels.json")
    parser.add_argument("--part", default="choose", choices=("choose", "report"))
    args = parser.parse_args(argv)

    recipe = check.load_recipe(args.labels)
    paths = check.clip_paths(recipe, args.data)
    ids = [c["id"] for c in recipe["clips"]]
    names: list[str] = []
    probs = []
    for model in ("MTT_musicnn", "MSD_musicnn"):
        got = check.cached(
            args.cache,
            model,
            ids,
            lambda index, m=model: dict(
                zip(
                    ("names", "probs"),
                    check.tags_with_musicnn(m, [paths[n] for n in index]),
                    strict=True,
                )
            ),
        )
        names += [f"{model.split('_')[0].lower()}:{n}" for n in got["names"]]
        probs.append(got["probs"])
    p = np.concatenate(probs, axis=1)
    concepts = [m.concept for m in read_tag_meanings(names)]
    negatable = load_sources()["captions"]["negatable"]
    rows = denials(recipe, concepts, p, check.part_index(recipe, args.part), negatable)
    print(f"{'concept':10} {'present':>7} " + " ".join(f"<{b:<5}" for b in BARS))
    for row in rows:
        cells = [str(row.get(f"denied_present<{b}", "-")).rjust(6) for b in BARS]
        print(f"{row['concept']:10} {row['labelled_present']:>7} " + " ".join(cells))
    print(json.dumps({"part": args.part, "concepts": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
