"""Descriptions that want two things at once, "metal with male vocals",
or either of two, "piano or guitar".

For every pair of concepts the set labels (A, B: a genre, part, voice or
instrument; not two of one family, "violin with strings"), the description
"A with B" (and "A and B" where neither is a genre or a voice) is answered
by the clips labelled with both, a clip labelled without one of them
being a wrong answer; "A or B" by the clips labelled with either, a clip
labelled without both being a wrong answer; the rest are left out. A
description is judged where a part has at least MIN_POSITIVES clips on
each side. Per part it prints the mean AUC and R-precision of three
rankings of each description, all clips scored as one library (as
check.py does), the two kinds apart:

- text: the whole text's similarity alone (no tagger evidence);
- mean: the plugin's ranking with the wanted attributes' evidence
  averaged (what the plugin did before it told the two kinds apart);
- plugin: the plugin's ranking as it stands (scoring.combine_evidence:
  their geometric mean for "with", the highest for "or").

    python tests/benchmarks/realset/conjunctions.py --bundle models/clap-default \\
        --data REALSET --cache CACHE [--part choose|report]

It reuses check.py's cache of the bundle's embeddings and tags. The last
line printed is one JSON object. docs/benchmarks.md ("Wanted attributes
together") has clap-default's figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[2]))

import check  # noqa: E402
from concepts import CONCEPTS, MIN_POSITIVES, Concept  # noqa: E402

# Concepts that are kinds of one another or one voice: "A with B" of two of
# them asks for one thing twice.
FAMILIES = (
    frozenset({"guitar", "electric guitar"}),
    frozenset({"violin", "cello", "strings"}),
    frozenset({"trumpet", "brass"}),
    frozenset({"vocals", "female voice", "male voice", "choir", "singing"}),
)
KINDS = ("part", "gender", "instrument", "genre", "outside")
# What a description asks of its two concepts, by its form.
TOGETHER = ("{a} with {b}", "{a} and {b}")
ALTERNATIVES = ("{a} or {b}",)
# The rankings compared, in the order they are printed.
COLUMNS = ("text", "mean", "plugin")

# description -> each COLUMNS ranking's scores over all the set's clips.
Scorer = Callable[[str], dict[str, np.ndarray]]


def descriptions() -> list[tuple[str, Concept, Concept, str]]:
    """(description, A, B, "together" or "alternatives") for every ordered
    pair the benchmark asks about: a genre or a voice reads after "with" or
    before it, never "and"."""
    out = []
    usable = [c for c in CONCEPTS if c.kind in KINDS]
    for a, b in itertools.permutations(usable, 2):
        if any(a.id in f and b.id in f for f in FAMILIES):
            continue
        if a.kind in ("part", "gender") and b.kind == "genre":
            continue  # "vocals with metal": the genre comes first
        forms = [(TOGETHER[0], "together")]
        if a.kind != "genre" and b.kind not in ("part", "gender"):
            forms.append((TOGETHER[1], "together"))
        forms += [(f, "alternatives") for f in ALTERNATIVES]
        out += [(f.format(a=a.query, b=b.query), a, b, k) for f, k in forms]
    return out


def both(a: Concept, b: Concept, clips: list[dict[str, Any]]) -> np.ndarray:
    """Per clip: 1 with both, 0 without one of them, -1 unknown."""
    la = np.array(a.labels(clips))
    lb = np.array(b.labels(clips))
    return np.where((la == 1) & (lb == 1), 1, np.where((la == 0) | (lb == 0), 0, -1))


def either(a: Concept, b: Concept, clips: list[dict[str, Any]]) -> np.ndarray:
    """Per clip: 1 with one of them, 0 without both, -1 unknown."""
    la = np.array(a.labels(clips))
    lb = np.array(b.labels(clips))
    return np.where((la == 1) | (lb == 1), 1, np.where((la == 0) & (lb == 0), 0, -1))


def part_rows(
    recipe: dict[str, Any], index: np.ndarray, scores: Scorer
) -> dict[str, Any]:
    """One row per description judged on the part (n+, n-, each column's
    AUC and R-precision) and the columns' means over them, per kind."""
    clips = [recipe["clips"][i] for i in index]
    rows = []
    for text, a, b, kind in descriptions():
        labels = (both if kind == "together" else either)(a, b, clips)
        mask = labels >= 0
        y = labels[mask] == 1
        if min(int(y.sum()), int((~y).sum())) < MIN_POSITIVES:
            continue
        ranked = scores(text)
        row: dict[str, Any] = {
            "query": text,
            "kind": kind,
            "n_pos": int(y.sum()),
            "n_neg": int((~y).sum()),
        }
        for column in COLUMNS:
            got = ranked[column][index][mask]
            row[f"auc_{column}"] = check.auc(got, y)
            row[f"rprec_{column}"] = check.r_precision(got, y)
        rows.append(row)
    mean = {}
    for kind in ("together", "alternatives"):
        of_kind = [r for r in rows if r["kind"] == kind]
        if of_kind:
            mean[kind] = {
                f"{m}_{c}": float(np.mean([r[f"{m}_{c}"] for r in of_kind]))
                for m in ("auc", "rprec")
                for c in COLUMNS
            }
    return {"rows": rows, "mean": mean}


def plugin_scorer(bundle: Any, audio: np.ndarray, tags: np.ndarray | None) -> Scorer:
    """COLUMNS as the plugin ranks the set as one library, with its default
    weights."""
    from beetsplug.clap import search
    from beetsplug.clap.scoring import TagScale

    weight = search.resolve_negation_weight(None, bundle)
    scale = None if tags is None else TagScale.fit(tags)

    def scores(text: str) -> dict[str, np.ndarray]:
        query = search.embed_query(bundle, text, weight)
        terms = query.terms(audio, tags, scale)
        mean = terms
        if tags is not None and terms.evidence is not None:
            evidence = np.mean(query.wanted_evidence(tags, scale), axis=0)
            mean = dataclasses.replace(terms, evidence=evidence)
        return {
            "text": query.total(dataclasses.replace(terms, evidence=None)),
            "mean": query.total(mean),
            "plugin": query.total(terms),
        }

    return scores


def run(args: argparse.Namespace) -> dict[str, Any]:
    recipe, bundle, got = check.load_embedded(args)
    scores = plugin_scorer(bundle, got["audio"], got.get("tags"))
    cached: dict[str, dict[str, np.ndarray]] = {}

    def once(text: str) -> dict[str, np.ndarray]:
        if text not in cached:
            cached[text] = scores(text)
        return cached[text]

    parts = ("choose", "report") if args.part is None else (args.part,)
    return {
        "model": bundle.label,
        "parts": {
            part: part_rows(recipe, check.part_index(recipe, part), once)
            for part in parts
        },
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"descriptions that want two things on the realset: {report['model']}")
    for part, entry in report["parts"].items():
        print(f"\n== part {part}: AUC / R-precision of the clips with both\n")
        lines = [["description", "n+", "n-", *COLUMNS]]
        for row in entry["rows"]:
            lines.append(
                [row["query"], row["n_pos"], row["n_neg"]]
                + [f"{row[f'auc_{c}']:.3f} / {row[f'rprec_{c}']:.3f}" for c in COLUMNS]
            )
        for kind, mean in entry["mean"].items():
            n = sum(r["kind"] == kind for r in entry["rows"])
            lines.append(
                [f"mean, {kind} ({n} descriptions)", "", ""]
                + [
                    f"{mean[f'auc_{c}']:.3f} / {mean[f'rprec_{c}']:.3f}"
                    for c in COLUMNS
                ]
            )
        check._table(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return check.cached_main(argv, __doc__, "conjunctions", run, print_report)


if __name__ == "__main__":
    raise SystemExit(main())
