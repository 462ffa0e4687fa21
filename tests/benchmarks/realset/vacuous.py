"""Negations with nothing to remove: how much "X without B" reorders a
library in which no track has B.

A negation should push down what has B and leave the rest as the plain
description ranks it. For each attribute B whose absence the labels state
(vocals, drums, guitar, piano), the clips of a part labelled without B are
taken as a library of their own (the tags scaled over them, as the plugin
scales them over a library); for every concept X the set judges there (not
B itself or what implies it, at least MIN_POSITIVES clips on each side), it
prints the AUC of X for the plugin's ranking of "X" and of "X without B",
and between them where the difference comes from:

- text: "X without B"'s own terms without its penalty (the whole text's
  similarity, the wanted attributes' evidence, the speech term);
- similarity penalty: "X"'s ranking minus B's penalty from the similarity
  to B's phrases alone (the tagger left out);
- penalty: "X"'s ranking minus B's whole penalty, the tagger's evidence
  included.

    python tests/benchmarks/realset/vacuous.py --bundle models/clap-default \\
        --data REALSET --cache CACHE [--part choose|report]

It reuses check.py's cache of the bundle's embeddings and tags (after a
check run it embeds only the queries' texts). The last line printed is one
JSON object. docs/benchmarks.md ("A negation with nothing to remove") has
clap-default's figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[2]))

import check  # noqa: E402
from concepts import CONCEPTS, MIN_POSITIVES  # noqa: E402

# Each negated attribute and the concepts that are it, a kind of it or imply
# it: among clips without B their positives are wrong labels or none.
NEGATED: dict[str, frozenset[str]] = {
    "vocals": frozenset(
        {"vocals", "female voice", "male voice", "singing", "choir", "spoken word"}
    ),
    "drums": frozenset({"drums"}),
    "guitar": frozenset({"guitar", "electric guitar", "rock/metal"}),
    "piano": frozenset({"piano"}),
}
# The rankings compared, in the order they are printed.
COLUMNS = ("plain", "text", "similarity penalty", "penalty", "negated")

# (description X, attribute B, the library's clip indices) -> each COLUMNS
# ranking's scores over those clips.
Scorer = Callable[[str, str, np.ndarray], dict[str, np.ndarray]]


def part_rows(
    recipe: dict[str, Any], index: np.ndarray, scores: Scorer
) -> dict[str, Any]:
    """Per negated attribute B: the library (clips of `index` labelled
    without B), one row per concept judged there (n+, n-, the AUC of each
    column) and the columns' means over those rows."""
    out: dict[str, Any] = {}
    for attr, related in NEGATED.items():
        absent = check.known(recipe, attr)[index] == 0
        library = index[absent]
        clips = [recipe["clips"][i] for i in library]
        rows = []
        for concept in CONCEPTS:
            if concept.id in related:
                continue
            labels = np.array(concept.labels(clips))
            mask = labels >= 0
            y = labels[mask] == 1
            if min(int(y.sum()), int((~y).sum())) < MIN_POSITIVES:
                continue
            ranked = scores(concept.query, attr, library)
            row: dict[str, Any] = {
                "concept": concept.id,
                "n_pos": int(y.sum()),
                "n_neg": int((~y).sum()),
            }
            for column in COLUMNS:
                row[column] = check.auc(ranked[column][mask], y)
            rows.append(row)
        mean = (
            {c: float(np.mean([r[c] for r in rows])) for c in COLUMNS} if rows else {}
        )
        out[attr] = {"clips": len(library), "rows": rows, "mean": mean}
    return out


def plugin_scorer(bundle: Any, audio: np.ndarray, tags: np.ndarray | None) -> Scorer:
    """COLUMNS as the plugin ranks a library made of the given clips, with
    its default weights."""
    from beetsplug.clap import search
    from beetsplug.clap.scoring import TagScale

    weight = search.resolve_negation_weight(None, bundle)

    def scores(text: str, attr: str, library: np.ndarray) -> dict[str, np.ndarray]:
        mat = audio[library]
        rows = None if tags is None else tags[library]
        scale = None if rows is None else TagScale.fit(rows)
        plain = search.embed_query(bundle, text, weight)
        negated = search.embed_query(bundle, f"{text} without {attr}", weight)
        untagged = dataclasses.replace(negated, tag_weight=0.0)
        base = plain.score(mat, rows, scale)
        terms = negated.terms(mat, rows, scale)
        assert terms.negated is not None
        penalty = weight * terms.negated.max(axis=0)
        similarity = untagged.terms(mat, rows, scale).negated
        assert similarity is not None
        return {
            "plain": base,
            "text": negated.total(terms) + penalty,
            "similarity penalty": base - weight * similarity.max(axis=0),
            "penalty": base - penalty,
            "negated": negated.total(terms),
        }

    return scores


def run(args: argparse.Namespace) -> dict[str, Any]:
    recipe, bundle, got = check.load_embedded(args)
    scores = plugin_scorer(bundle, got["audio"], got.get("tags"))
    parts = ("choose", "report") if args.part is None else (args.part,)
    return {
        "model": bundle.label,
        "parts": {
            part: part_rows(recipe, check.part_index(recipe, part), scores)
            for part in parts
        },
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"negations with nothing to remove on the realset: {report['model']}")
    for part, entry in report["parts"].items():
        print(f"\n== part {part}: AUC of X among the clips without B\n")
        lines = [["B", "X", "n+", "n-", *COLUMNS]]
        for attr, got in entry.items():
            for row in got["rows"]:
                lines.append(
                    [attr, row["concept"], row["n_pos"], row["n_neg"]]
                    + [row[c] for c in COLUMNS]
                )
            if got["mean"]:
                lines.append(
                    [attr, f"mean ({got['clips']} clips)", "", ""]
                    + [got["mean"][c] for c in COLUMNS]
                )
        check._table(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return check.cached_main(argv, __doc__, "vacuous", run, print_report)


if __name__ == "__main__":
    raise SystemExit(main())
