"""How the query layer's tag weights and text-encoder link threshold were chosen.

On the choose part of the real-recording check set only (the report part is
never read here), with the plugin's own scoring (search.embed_query ->
TextQuery.score, tags relative to their top over the part's clips):

    python tests/benchmarks/tag_links.py --bundle models/clap-default \
        --data DATA --check-dir DIR [--cache DIR]

DIR holds the realset check (check.py, concepts.py, labels.json) and DATA
the clips its build.py wrote. It prints (1) the sweep of `tag_weight` and
`affirmed_tag_weight`: the mean AUC of the concepts' text queries, of the
concepts a tagger names, of the "music without X" queries, and the
ranking queries' P@10 and violations, and the weights that maximise
concepts AUC + "without X" AUC + P@10 - violations; (2) the sweep of
taglinks.TEXT_LINK_THRESHOLD: the mean AUC of queries in words the lexicon
links to no tag (synonyms of the part's labelled concepts), and which
CONTROL words (meaning no tag of the bundle) get linked. The threshold is
the lowest that links no control word; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

WEIGHTS = [(0.0, 0.0)] + [
    (t, a) for t in (0.5, 1.0, 2.0, 3.0) for a in (0.0, 0.1, 0.15, 0.2, 0.5, 0.8)
]  # (tag_weight, affirmed_tag_weight)
THRESHOLDS = [1.0, 1.2, 1.5, 1.8, 2.0, 2.2, 2.4, 2.6, 3.0]
# (concept of the check set, a query in words the lexicon links to no tag)
SYNONYMS = [
    ("vocals", "singer-songwriter"),
    ("vocals", "a cappella"),
    ("female voice", "diva"),
    ("female voice", "soprano"),
    ("rock/metal", "thrash"),
    ("rock/metal", "headbanging"),
    ("rock/metal", "grindcore"),
    ("guitar", "shredding"),
    ("music", "melody"),
    ("spoken word", "narration"),
    ("guitar", "riffs"),
]
# Words no MagnaTagATune or MSD tag means: a link for one is a wrong link.
# ("happy" was one until the MSD tagger's tags joined the bundle: its
# "happy" tag means it.)
CONTROLS = [
    "kazoo", "saxophone", "trumpet", "organ", "accordion", "clarinet", "banjo",
    "bagpipes", "ukulele", "reggae", "latin", "lullaby", "crooner", "baritone",
    "romantic", "epic", "melody", "riffs", "headbanging", "shredding",
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--check-dir", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.check_dir))
    import check
    import concepts

    from beetsplug.clap import search, taglinks
    from beetsplug.clap.model import Bundle

    recipe = check.load_recipe(args.check_dir / "labels.json")
    paths = check.clip_paths(recipe, args.data)
    ids = [c["id"] for c in recipe["clips"]]
    bundle = Bundle.load(args.bundle)

    def embed() -> dict[str, np.ndarray]:
        audio, tags = check.embed_with_bundle(bundle, paths)
        return {"audio": audio, "tags": tags}

    got = check.cached(args.cache, f"bundle-{bundle.identity[:16]}", ids, embed)
    audio, tags = got["audio"], got["tags"]
    index = check.part_index(recipe, "choose")
    clips = [recipe["clips"][i] for i in index]
    sub = check.sub_recipe(recipe, index)
    by_id = {c.id: c for c in concepts.CONCEPTS}

    def scores(text: str, **weights: float) -> np.ndarray:
        query = search.embed_query(bundle, text, 0.5, **weights)
        return query.score(audio[index], tags[index])

    def auc_of(concept: Any, s: np.ndarray) -> float | None:
        lab = np.array(concept.labels(clips))
        known = lab >= 0
        y = lab[known] == 1
        if min(y.sum(), (~y).sum()) < concepts.MIN_POSITIVES:
            return None
        return check.auc(s[known], y)

    out: dict[str, Any] = {"clips": len(index), "weights": [], "thresholds": []}
    for tag_weight, affirmed in WEIGHTS:
        w = {"tag_weight": tag_weight, "affirmed_tag_weight": affirmed}
        row: dict[str, Any] = dict(w)
        for key, group in (
            ("concepts", concepts.CONCEPTS),
            ("negated", concepts.NEGATED),
        ):
            aucs = {c.id: auc_of(c, scores(c.query, **w)) for c in group}
            aucs = {k: v for k, v in aucs.items() if v is not None}
            row[f"auc_{key}"] = float(np.mean(list(aucs.values())))
            if key == "concepts":
                tagged = [v for k, v in aucs.items() if by_id[k].tags]
                row["auc_tagged"] = float(np.mean(tagged))
        ranking = check.ranking_rows(sub, {"q": lambda q, w=w: scores(q, **w)})
        row["p@10"] = float(np.mean([r["q_p@10"] for r in ranking]))
        row["viol@10"] = float(
            np.mean([r["q_viol@10"] for r in ranking if r["q_viol@10"] is not None])
        )
        row["composite"] = (
            row["auc_concepts"] + row["auc_negated"] + row["p@10"] - row["viol@10"]
        )
        out["weights"].append(row)
        print(json.dumps(row))
    best = max(out["weights"], key=lambda r: r["composite"])
    out["chosen_weights"] = [best["tag_weight"], best["affirmed_tag_weight"]]
    chosen = None
    for threshold in THRESHOLDS:
        taglinks.TEXT_LINK_THRESHOLD = threshold
        taglinks.forget_links()
        aucs = [auc_of(by_id[c], scores(q)) for c, q in SYNONYMS]
        linked = [w for w in CONTROLS if taglinks.link_by_text(bundle, w).present]
        row = {
            "threshold": threshold,
            "auc_synonyms": float(np.mean([a for a in aucs if a is not None])),
            "controls_linked": linked,
        }
        if chosen is None and not linked:
            chosen = threshold
        out["thresholds"].append(row)
        print(json.dumps(row))
    out["chosen_threshold"] = chosen
    print(json.dumps({"tag_links": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
