"""How a model bundle ranks REAL recordings: the realset check.

The default model learns from synthetic MIDI renders; this check asks
whether what it learnt transfers to real recordings, on the clips that
build.py makes from Debian packages (labels with cited evidence, see
docs/realset.md). It runs the plugin's own runtime (Contract 2), so it
measures exactly what `beet clap` would see:

    python tests/benchmarks/realset/build.py --out /tmp/realset
    python tests/benchmarks/realset/check.py --bundle models/NAME --data /tmp/realset

For each binary attribute with enough known positives and negatives
(vocals, drums, guitar, piano) it reports the ROC AUC of
- the text contrast sim("music with X") - sim("music without X"),
- the plain text similarity sim("X"),
- the bundle's matching tag probability, when audio.onnx has a `tags` output,
and the share of minimal pairs (same recording with and without X) that the
score orders correctly. Then queries with negations ("music without
vocals", "guitar music without drums", ...) rank all clips whose relevant
labels are known: precision@5/@10 and violation@5/@10 (share of the top k
that has a negated attribute), by raw text similarity and by the plugin's
negation-aware scoring when beetsplug.clap.search provides it.

`--musicnn MTT_musicnn` instead runs the pretrained musicnn tagger (the
trainer's PyTorch port) for the tag rows only: the zero-shot bar the
default model is meant to match on real audio.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
MIN_CLASS = 5  # an AUC needs at least this many known positives and negatives

# attribute -> (with-X text, without-X text, plain text)
QUERIES: dict[str, tuple[str, str, str]] = {
    "vocals": ("music with vocals", "instrumental music without vocals", "vocals"),
    "drums": ("music with drums", "music without drums", "drums"),
    "guitar": ("music with guitar", "music without guitar", "guitar"),
    "piano": ("piano music", "music without piano", "piano"),
}
# attribute -> (tags that mean present, tags that mean absent); the first
# present tag the bundle has is the "primary" one reported in the table.
TAG_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "vocals": (
        ("vocals", "vocal", "voice", "singing", "male vocal", "female vocal",
         "male voice", "female voice", "speech", "choir", "male vocalists",
         "female vocalists", "female vocalist"),
        ("no vocals", "no vocal", "no voice", "instrumental"),
    ),
    "drums": (("drums", "drum", "percussion", "beat", "beats"), ("no drums",)),
    "guitar": (
        ("guitar", "electric guitar", "acoustic guitar", "distorted guitar"), ()
    ),
    "piano": (("piano",), ()),
}  # fmt: skip
# Ranking queries and what a correct hit must satisfy; a False requirement
# is a negated attribute, so a hit that has it is a violation.
RANKING: list[tuple[str, dict[str, bool]]] = [
    ("music without vocals", {"vocals": False}),
    ("instrumental music", {"vocals": False}),
    ("music without drums", {"drums": False}),
    ("guitar music without vocals", {"guitar": True, "vocals": False}),
    ("guitar music without drums", {"guitar": True, "drums": False}),
    ("drums without vocals", {"drums": True, "vocals": False}),
    ("a voice without drums", {"vocals": True, "drums": False}),
    ("guitar and drums, no vocals", {"guitar": True, "drums": True, "vocals": False}),
    ("music with vocals and drums", {"vocals": True, "drums": True}),
    ("music without guitar", {"guitar": False}),
    ("drums, no guitar", {"drums": True, "guitar": False}),
    # No MTT tag names "electric guitar": the text tower and the query
    # layer's kinds (docs/queries.md) carry these two.
    ("music without electric guitar", {"electric guitar": False}),
    ("drums, no electric guitar", {"drums": True, "electric guitar": False}),
]


class CheckError(Exception):
    """A one-line reason the check cannot run."""


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties count half): P(score of a positive > a negative)."""
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def load_recipe(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckError(f"cannot read {path}: {exc}") from exc


def clip_paths(recipe: dict[str, Any], data: Path) -> list[Path]:
    paths = [data / "audio" / "realset" / f"{c['id']}.flac" for c in recipe["clips"]]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise CheckError(
            f"{len(missing)} clip(s) missing under {data}/audio/realset (first: "
            f"{missing[0].name}): run tests/benchmarks/realset/build.py --out {data}"
        )
    return paths


# --------------------------------------------------------------------------
# Embedding


def embed_with_bundle(
    bundle: Any, paths: Sequence[Path]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pooled audio embeddings [N, D] and mean tag probabilities [N, T] (or None),
    through the plugin's own decoding and windowing."""
    from beetsplug.clap.audio import load_windows, pool_embeddings

    embs, tags = [], []
    for path in paths:
        windows = load_windows(
            path, bundle.sample_rate, bundle.window_seconds, bundle.max_windows
        )
        emb, tag = bundle.embed_audio(windows)
        embs.append(pool_embeddings(emb))
        if tag is not None:
            tags.append(tag.mean(axis=0))
    return np.stack(embs), (np.stack(tags) if tags else None)


def tags_with_musicnn(
    model: str, paths: Sequence[Path]
) -> tuple[list[str], np.ndarray]:
    """musicnn's tag probabilities [N, 50], mean over up to 8 three-second windows."""
    sys.path.insert(0, str(REPO))
    import torch

    from beetsplug.clap.audio import load_windows
    from trainer.models.frontend import LogMelFrontend
    from trainer.models.musicnn import LABELS, load_musicnn

    net = load_musicnn(model)
    frontend = LogMelFrontend()
    out = []
    with torch.no_grad():
        for path in paths:
            windows = torch.from_numpy(load_windows(path, 16000, 3.0, 8))
            probs = torch.sigmoid(net(frontend(windows))["logits"])
            out.append(probs.mean(dim=0).numpy())
    return list(LABELS[model]), np.stack(out)


# --------------------------------------------------------------------------
# Metrics


# Instruments judged from a clip's `instruments` list: present where the
# list names it, absent where its family is absent, else unknown (a guitar
# whose kind the sources do not state).
KIND_OF_FAMILY: dict[str, str] = {"electric guitar": "guitar"}


def known(recipe: dict[str, Any], attr: str) -> np.ndarray:
    """Per clip: 1 present, 0 absent, -1 unknown (null in labels.json)."""
    if attr in KIND_OF_FAMILY:
        family = KIND_OF_FAMILY[attr]
        return np.array(
            [
                1
                if attr in c["labels"].get("instruments", ())
                else 0
                if c["labels"].get(family) is False
                else -1
                for c in recipe["clips"]
            ]
        )
    values = [c["labels"].get(attr) for c in recipe["clips"]]
    return np.array([-1 if v is None else int(bool(v)) for v in values])


def tag_score(
    attr: str, tag_names: Sequence[str], tags: np.ndarray
) -> tuple[str, np.ndarray] | None:
    """(description, score) for the primary present tag; absent-tags flip sign."""
    present, absent = TAG_WORDS.get(attr, ((), ()))
    for name in present:
        if name in tag_names:
            return name, tags[:, tag_names.index(name)]
    for name in absent:
        if name in tag_names:
            return f"1-{name}", 1.0 - tags[:, tag_names.index(name)]
    return None


def all_tag_aucs(
    attr: str,
    tag_names: Sequence[str],
    tags: np.ndarray,
    mask: np.ndarray,
    y: np.ndarray,
) -> dict[str, float]:
    present, absent = TAG_WORDS.get(attr, ((), ()))
    result = {}
    for name in present:
        if name in tag_names:
            result[name] = auc(tags[mask, tag_names.index(name)], y)
    for name in absent:
        if name in tag_names:
            result[f"1-{name}"] = auc(1.0 - tags[mask, tag_names.index(name)], y)
    return result


def pair_accuracy(
    recipe: dict[str, Any], attr: str, score: np.ndarray
) -> tuple[float, int]:
    """Share of minimal pairs on `attr` where the with-X clip scores higher."""
    index = {c["id"]: i for i, c in enumerate(recipe["clips"])}
    pairs = [p for p in recipe.get("pairs", []) if p["attribute"] == attr]
    if not pairs:
        return float("nan"), 0
    hits = [score[index[p["with"]]] > score[index[p["without"]]] for p in pairs]
    return float(np.mean(hits)), len(pairs)


def attribute_rows(
    recipe: dict[str, Any],
    audio: np.ndarray | None,
    text: dict[str, np.ndarray],
    tag_names: Sequence[str],
    tags: np.ndarray | None,
) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for attr, (with_x, without_x, plain) in QUERIES.items():
        lab = known(recipe, attr)
        mask = lab >= 0
        y = lab[mask] == 1
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        row: dict[str, Any] = {"n_pos": n_pos, "n_neg": n_neg}
        if min(n_pos, n_neg) < MIN_CLASS:
            row["skipped"] = f"fewer than {MIN_CLASS} known positives or negatives"
            rows[attr] = row
            continue
        if audio is not None:
            contrast = audio @ text[with_x] - audio @ text[without_x]
            plain_s = audio @ text[plain]
            row["auc_text_contrast"] = auc(contrast[mask], y)
            row["auc_text_plain"] = auc(plain_s[mask], y)
            row["pairs_text"], row["n_pairs"] = pair_accuracy(recipe, attr, contrast)
        if tags is not None:
            primary = tag_score(attr, tag_names, tags)
            if primary is not None:
                name, s = primary
                row["tag"] = name
                row["auc_tag"] = auc(s[mask], y)
                row["pairs_tag"], row["n_pairs"] = pair_accuracy(recipe, attr, s)
                row["auc_tags_all"] = all_tag_aucs(attr, tag_names, tags, mask, y)
        rows[attr] = row
    return rows


def ranking_rows(
    recipe: dict[str, Any], scorers: dict[str, Any]
) -> list[dict[str, Any]]:
    """Precision and violation at 5 and 10 for each RANKING query and scorer.

    `scorers` maps a name to a function query -> scores [N] (None: refused).
    """
    rows = []
    for query, need in RANKING:
        labs = {a: known(recipe, a) for a in need}
        pool = np.all([labs[a] >= 0 for a in need], axis=0)
        ok = np.all([labs[a] == int(v) for a, v in need.items()], axis=0)
        negated = [a for a, v in need.items() if not v]
        bad = (
            np.any([labs[a] == 1 for a in negated], axis=0)
            if negated
            else np.zeros(len(ok), bool)
        )
        row: dict[str, Any] = {
            "query": query,
            "pool": int(pool.sum()),
            "relevant": int((ok & pool).sum()),
        }
        idx = np.flatnonzero(pool)
        for name, scorer in scorers.items():
            scores = scorer(query)
            if scores is None:  # the scorer refused the query (e.g. unknown words)
                for k in (5, 10):
                    row[f"{name}_p@{k}"] = row[f"{name}_viol@{k}"] = None
                continue
            order = idx[np.argsort(-scores[idx], kind="stable")]
            for k in (5, 10):
                top = order[:k]
                row[f"{name}_p@{k}"] = float(ok[top].mean())
                row[f"{name}_viol@{k}"] = float(bad[top].mean()) if negated else None
        rows.append(row)
    return rows


# --------------------------------------------------------------------------
# Report


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.3f}"
    return str(v)


def print_report(report: dict[str, Any]) -> None:
    print(f"realset check: {report['model']} on {report['clips']} clips")
    print()
    head = ["attribute", "n+", "n-", "AUC contrast", "AUC plain", "tag", "AUC tag",
            "pairs text", "pairs tag", "n pairs"]  # fmt: skip
    lines = [head]
    for attr, r in report["attributes"].items():
        lines.append([
            attr, r["n_pos"], r["n_neg"], r.get("auc_text_contrast"),
            r.get("auc_text_plain"), r.get("tag"), r.get("auc_tag"),
            r.get("pairs_text"), r.get("pairs_tag"), r.get("n_pairs"),
        ])  # fmt: skip
    _table(lines)
    if report["ranking"]:
        print()
        scorers = report["scorers"]
        head = ["query", "pool", "rel"]
        for s in scorers:
            head += [f"{s} P@5", f"{s} viol@5", f"{s} P@10", f"{s} viol@10"]
        lines = [head]
        for r in report["ranking"]:
            line = [r["query"], r["pool"], r["relevant"]]
            for s in scorers:
                line += [
                    r[f"{s}_p@5"],
                    r[f"{s}_viol@5"],
                    r[f"{s}_p@10"],
                    r[f"{s}_viol@10"],
                ]
            lines.append(line)
        _table(lines)


def _table(lines: list[list[Any]]) -> None:
    cells = [[_fmt(v) for v in line] for line in lines]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for j, row in enumerate(cells):
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(padded))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def _clean(obj: Any) -> Any:
    """NaN -> None so the JSON line is strict JSON."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> dict[str, Any]:
    recipe = load_recipe(args.labels)
    paths = clip_paths(recipe, args.data)
    sys.path.insert(0, str(REPO))
    scorers: dict[str, Any] = {}
    if args.musicnn:
        tag_names, tags = tags_with_musicnn(args.musicnn, paths)
        audio, text = None, {}
        model = f"{args.musicnn} (tags only)"
    else:
        from beetsplug.clap.audio import AudioError
        from beetsplug.clap.model import Bundle, BundleError

        try:
            bundle = Bundle.load(args.bundle, threads=args.threads)
            audio, tags = embed_with_bundle(bundle, paths)
        except (BundleError, AudioError) as exc:
            raise CheckError(str(exc)) from exc
        tag_names = list(bundle.tag_names)
        model = bundle.label
        texts = sorted(
            {t for q in QUERIES.values() for t in q} | {q for q, _ in RANKING}
        )
        vecs = bundle.embed_text(texts)
        text = dict(zip(texts, vecs, strict=True))
        scorers["sim"] = lambda q: audio @ text[q]
        plugin = _plugin_scorer(
            bundle, audio, tags, args.tag_weight, args.affirmed_tag_weight
        )
        if plugin is not None:
            scorers["plugin"] = plugin
    return {
        "model": model,
        "clips": len(paths),
        "scorers": list(scorers),
        "attributes": attribute_rows(recipe, audio, text, tag_names, tags),
        "ranking": ranking_rows(recipe, scorers) if scorers else [],
    }


def _plugin_scorer(
    bundle: Any,
    audio: np.ndarray,
    tags: np.ndarray | None,
    tag_weight: float | None = None,
    affirmed_tag_weight: float | None = None,
) -> Any:
    """The plugin's negation-aware ranking (beetsplug.clap.search), if it has one,
    with the tagger's evidence in negations' penalties and for wanted
    attributes (the plugin's default weights unless given)."""
    try:
        from beetsplug.clap import search
    except ImportError:
        return None
    if not hasattr(search, "embed_query"):
        return None
    weight = bundle.negation_weight
    weight = (
        getattr(search, "DEFAULT_NEGATION_WEIGHT", 0.5) if weight is None else weight
    )

    extra = {} if tag_weight is None else {"tag_weight": tag_weight}
    if affirmed_tag_weight is not None:
        extra["affirmed_tag_weight"] = affirmed_tag_weight

    def score(query: str) -> np.ndarray | None:
        try:
            tq = search.embed_query(bundle, query, weight, **extra)
            return tq.score(audio, tags)
        except search.SearchError as exc:
            print(
                f"realset check: plugin scoring skipped {query!r}: {exc}",
                file=sys.stderr,
            )
            return None

    return score


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--bundle", type=Path, help="model bundle folder (Contract 1)")
    who.add_argument(
        "--musicnn",
        choices=("MTT_musicnn", "MSD_musicnn"),
        help="tag-only baseline: the pretrained musicnn tagger",
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="folder build.py wrote"
    )
    parser.add_argument("--labels", type=Path, default=HERE / "labels.json")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--tag-weight",
        type=float,
        default=None,
        help="the plugin's tag_weight for its ranking (default: the plugin's)",
    )
    parser.add_argument(
        "--affirmed-tag-weight",
        type=float,
        default=None,
        help="the plugin's affirmed_tag_weight (default: the plugin's)",
    )
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except CheckError as exc:
        print(f"realset check: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    print(json.dumps({"realset": _clean(report)}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
