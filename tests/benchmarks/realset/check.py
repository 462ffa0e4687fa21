"""How a bundle and the pretrained taggers rank REAL recordings: the realset check.

The default model learns from synthetic MIDI renders; this check asks
whether what it knows carries over to real recordings, on the clips that
build.py makes from Debian packages (labels with cited evidence, see
docs/realset.md). It runs the plugin's own runtime (Contract 2: Bundle.load,
load_windows, pool_embeddings and the query layer's scoring), so it
measures what `beet clap` would see:

    python tests/benchmarks/realset/build.py --out /tmp/realset
    python tests/benchmarks/realset/check.py --bundle models/NAME --data /tmp/realset \
        [--part choose|report] [--cache DIR] [--plot PNG]

Per concept (concepts.py: instruments, vocals and their gender, drums,
genre families, speech, and words outside the tags) it reports the text
query's ROC AUC and R-precision beside each pretrained tagger's own tag
for the same concept ("tag parity": MTT_musicnn and MSD_musicnn through
the trainer's PyTorch port); "music without X" beside the tagger's absence
(1 - p); how far speech alone ranks below music for music queries. Every
figure is given per part of the split (labels.json `split`: choose on
`choose`, report `report`). The older per-attribute contrast, minimal
pairs and negation precision tables follow.

`--musicnn MTT_musicnn` runs one tagger alone (no bundle). The last line
printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import zipfile
import zlib
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
                if attr in (c["labels"].get("instruments") or ())
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


def r_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """With R positives, the share of positives among the R best-scored clips
    (ties broken by clip order, so the figure is deterministic)."""
    r = int(labels.sum())
    if r == 0:
        return float("nan")
    top = np.argsort(-scores, kind="stable")[:r]
    return float(labels[top].mean())


def concept_row(
    concept: Any,
    clips: Sequence[dict[str, Any]],
    text_scores: dict[str, np.ndarray],
    tag_scores: dict[str, np.ndarray],
) -> dict[str, Any]:
    """n+, n-, and AUC / R-precision for every scorer (text or tag) on one
    concept over `clips` (unknown labels left out); skipped below MIN_POSITIVES."""
    from concepts import MIN_POSITIVES

    lab = np.array(concept.labels(list(clips)))
    mask = lab >= 0
    y = lab[mask] == 1
    row: dict[str, Any] = {
        "concept": concept.id,
        "kind": concept.kind,
        "query": concept.query,
        "n_pos": int(y.sum()),
        "n_neg": int((~y).sum()),
    }
    if min(row["n_pos"], row["n_neg"]) < MIN_POSITIVES:
        row["skipped"] = f"fewer than {MIN_POSITIVES} positives or negatives"
        return row
    for name, scores in {**text_scores, **tag_scores}.items():
        row[f"auc_{name}"] = auc(scores[mask], y)
        row[f"rprec_{name}"] = r_precision(scores[mask], y)
    for model, tag in concept.tags.items():
        if model in {n.split(":")[0] for n in tag_scores}:
            row[f"tag_{model}"] = tag
    return row


def speech_rows(
    clips: Sequence[dict[str, Any]], text_scores: dict[str, dict[str, np.ndarray]]
) -> list[dict[str, Any]]:
    """For each music query: AUC of music over speech alone, where the
    best-ranked speech clip lands and how many speech clips are in the top
    10 (among the music and speech clips). For the music queries that negate
    an instrument, the music is the clips without it (NEGATED's labels)."""
    from concepts import MUSIC_QUERIES, NEGATED, NEGATED_MUSIC_QUERIES, music

    kind = np.array([music(c["labels"]) for c in clips])  # 1 music, 0 speech
    speech = kind == 0
    rows = []
    answers = {c.id: np.array(c.labels(list(clips))) == 1 for c in NEGATED}
    wanted = [(q, kind == 1) for q in MUSIC_QUERIES]
    wanted += [(q, answers[c]) for q, c in NEGATED_MUSIC_QUERIES if c in answers]
    for query, is_music in wanted:
        mask = is_music | speech
        y = is_music[mask]
        if y.all() or not y.any():
            continue
        row: dict[str, Any] = {"query": query, "n_music": int(y.sum()),
                               "n_speech": int((~y).sum())}  # fmt: skip
        for scorer, by_query in text_scores.items():
            if query not in by_query:
                continue
            sc = by_query[query][mask]
            row[f"auc_{scorer}"] = auc(sc, y)
            order = np.argsort(-sc, kind="stable")
            row[f"first_speech_rank_{scorer}"] = int(np.flatnonzero(~y[order])[0]) + 1
            row[f"speech_in_top10_{scorer}"] = int((~y[order[:10]]).sum())
        rows.append(row)
    return rows


def tag_scores_for(
    concept: Any, taggers: dict[str, tuple[list[str], np.ndarray]]
) -> dict[str, np.ndarray]:
    """'MODEL:tag' -> scores for the concept's tag in each tagger that has one."""
    from concepts import tag_column

    out = {}
    for model, spec in concept.tags.items():
        if model in taggers:
            names, probs = taggers[model]
            col = tag_column(spec, names, probs)
            if col is not None:
                out[f"{model}:{spec}"] = col
    return out


def part_report(
    recipe: dict[str, Any],
    index: np.ndarray,
    text: dict[str, dict[str, np.ndarray]],
    taggers: dict[str, tuple[list[str], np.ndarray]],
) -> dict[str, Any]:
    """Concept, negation and speech figures on the clips `index` selects.

    `text` maps a scorer name to {query: scores over ALL clips}; taggers map
    a model to (tag names, probabilities over ALL clips)."""
    from concepts import CONCEPTS, NEGATED

    clips = [recipe["clips"][i] for i in index]
    sub_taggers = {m: (n, p[index]) for m, (n, p) in taggers.items()}
    out: dict[str, Any] = {"clips": len(clips), "concepts": [], "negated": []}
    for key, group in (("concepts", CONCEPTS), ("negated", NEGATED)):
        for concept in group:
            ts = {
                name: by_query[concept.query][index]
                for name, by_query in text.items()
                if concept.query in by_query
            }
            out[key].append(
                concept_row(concept, clips, ts, tag_scores_for(concept, sub_taggers))
            )
    out["speech"] = speech_rows(
        clips, {n: {q: v[index] for q, v in bq.items()} for n, bq in text.items()}
    )
    out["summary"] = parity_summary(out["concepts"], list(text), list(taggers))
    return out


def parity_summary(
    rows: list[dict[str, Any]], scorers: list[str], models: list[str]
) -> dict[str, Any]:
    """Over the concepts a tagger names and the part scores: mean AUC and
    R-precision of each text scorer and of that tagger's tags, and in how
    many concepts the text is at least the tag's AUC - 0.01."""
    out: dict[str, Any] = {}
    for model in models:
        scored = [r for r in rows if "skipped" not in r and f"tag_{model}" in r]
        if not scored:
            continue
        tag_key = [f"{model}:{r[f'tag_{model}']}" for r in scored]
        pairs = list(zip(scored, tag_key, strict=True))
        entry: dict[str, Any] = {
            "concepts": [r["concept"] for r in scored],
            "auc_tag": float(np.mean([r[f"auc_{k}"] for r, k in pairs])),
            "rprec_tag": float(np.mean([r[f"rprec_{k}"] for r, k in pairs])),
        }
        for s in scorers:
            if not all(f"auc_{s}" in r for r in scored):
                continue
            entry[f"auc_{s}"] = float(np.mean([r[f"auc_{s}"] for r in scored]))
            entry[f"rprec_{s}"] = float(np.mean([r[f"rprec_{s}"] for r in scored]))
            entry[f"at_parity_{s}"] = int(
                sum(
                    r[f"auc_{s}"] >= r[f"auc_{k}"] - 0.01
                    for r, k in zip(scored, tag_key, strict=True)
                )
            )
        out[model] = entry
    return out


# --------------------------------------------------------------------------
# Report


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.3f}"
    return str(v)


def _tag_cols(row: dict[str, Any], model: str) -> list[Any]:
    tag = row.get(f"tag_{model}")
    if tag is None:
        return [None, None, None]
    key = f"{model}:{tag}"
    return [tag, row.get(f"auc_{key}"), row.get(f"rprec_{key}")]


def print_report(report: dict[str, Any]) -> None:
    print(f"realset check: {report['model']} on {report['clips']} clips")
    scorers, models = report["scorers"], report["taggers"]
    for part, entry in report["parts"].items():
        print()
        print(f"== part {part}: {entry['clips']} clips")
        for key in ("concepts", "negated"):
            head = ["concept", "query", "n+", "n-"]
            for s in scorers:
                head += [f"AUC {s}", f"Rp {s}"]
            for m in models:
                short = m.split("_")[0]
                head += [f"{short} tag", f"AUC {short}", f"Rp {short}"]
            lines = [head]
            for r in entry[key]:
                line = [r["concept"], r["query"], r["n_pos"], r["n_neg"]]
                for s in scorers:
                    line += [r.get(f"auc_{s}"), r.get(f"rprec_{s}")]
                for m in models:
                    line += _tag_cols(r, m)
                lines.append(line)
            print()
            _table(lines)
        if entry["speech"]:
            print()
            head = ["music query", "music", "speech"]
            for s in scorers:
                head += [f"AUC {s}", f"1st speech {s}", f"speech in top 10 {s}"]
            lines = [head]
            for r in entry["speech"]:
                line = [r["query"], r["n_music"], r["n_speech"]]
                for s in scorers:
                    line += [
                        r.get(f"auc_{s}"),
                        r.get(f"first_speech_rank_{s}"),
                        r.get(f"speech_in_top10_{s}"),
                    ]
                lines.append(line)
            _table(lines)
        for m, summ in entry["summary"].items():
            text = ", ".join(
                f"{s} AUC {summ[f'auc_{s}']:.3f} Rp {summ[f'rprec_{s}']:.3f} "
                f"(at parity in {summ[f'at_parity_{s}']}/{len(summ['concepts'])})"
                for s in scorers
                if f"auc_{s}" in summ
            )
            print(
                f"\n{m} concepts ({len(summ['concepts'])}): tags AUC "
                f"{summ['auc_tag']:.3f} Rp {summ['rprec_tag']:.3f}; {text}"
            )
        print_legacy(entry, scorers)


def print_legacy(entry: dict[str, Any], scorers: list[str]) -> None:
    """The per-attribute contrast / pairs table and the negation precision table."""
    print()
    head = ["attribute", "n+", "n-", "AUC contrast", "AUC plain", "tag", "AUC tag",
            "pairs text", "pairs tag", "n pairs"]  # fmt: skip
    lines = [head]
    for attr, r in entry["attributes"].items():
        lines.append([
            attr, r["n_pos"], r["n_neg"], r.get("auc_text_contrast"),
            r.get("auc_text_plain"), r.get("tag"), r.get("auc_tag"),
            r.get("pairs_text"), r.get("pairs_tag"), r.get("n_pairs"),
        ])  # fmt: skip
    _table(lines)
    if entry["ranking"] and scorers:
        print()
        head = ["query", "pool", "rel"]
        for s in scorers:
            head += [f"{s} P@5", f"{s} viol@5", f"{s} P@10", f"{s} viol@10"]
        lines = [head]
        for r in entry["ranking"]:
            line = [r["query"], r["pool"], r["relevant"]]
            for s in scorers:
                line += [
                    r.get(f"{s}_p@5"),
                    r.get(f"{s}_viol@5"),
                    r.get(f"{s}_p@10"),
                    r.get(f"{s}_viol@10"),
                ]
            lines.append(line)
        _table(lines)


def plot_parity(report: dict[str, Any], path: Path) -> None:
    """One panel per part: each scored concept's AUC for the text query (the
    plugin's scoring when present) beside each tagger's tag."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = report["parts"]
    scorer = (
        "plugin" if "plugin" in report["scorers"] else (report["scorers"] or [None])[0]
    )
    fig, axes = plt.subplots(
        len(parts), 1, figsize=(13, 4.2 * len(parts)), squeeze=False
    )
    for ax, (part, entry) in zip(axes[:, 0], parts.items(), strict=True):
        rows = [r for r in entry["concepts"] + entry["negated"] if "skipped" not in r]
        x = np.arange(len(rows))
        series: list[tuple[str, list[float]]] = []
        if scorer is not None:
            series.append((f"text query ({scorer})",
                           [r.get(f"auc_{scorer}", np.nan) for r in rows]))  # fmt: skip
        for m in report["taggers"]:
            vals = []
            for r in rows:
                tag = r.get(f"tag_{m}")
                vals.append(np.nan if tag is None else r.get(f"auc_{m}:{tag}", np.nan))
            series.append((f"{m} tag", vals))
        width = 0.8 / max(1, len(series))
        for k, (label, vals) in enumerate(series):
            heights = [np.nan if v is None else v for v in vals]
            offset = (k - (len(series) - 1) / 2) * width
            ax.bar(x + offset, heights, width, label=label)
        ax.set_xticks(x)
        names = [f"{r['concept']}\n({r['n_pos']}/{r['n_neg']})" for r in rows]
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_ylim(0.0, 1.02)
        ax.set_ylabel("ROC AUC")
        ax.set_title(f"{report['model']}: part '{part}' ({entry['clips']} clips)")
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


PARTS = ("choose", "report")


def part_index(recipe: dict[str, Any], part: str) -> np.ndarray:
    """Indices of the clips in `part` ("all": every clip)."""
    if part == "all":
        return np.arange(len(recipe["clips"]))
    return np.array(
        [i for i, c in enumerate(recipe["clips"]) if c.get("part") == part], int
    )


def sub_recipe(recipe: dict[str, Any], index: np.ndarray) -> dict[str, Any]:
    """The recipe restricted to some clips (pairs with both members kept)."""
    clips = [recipe["clips"][i] for i in index]
    ids = {c["id"] for c in clips}
    pairs = [
        p for p in recipe.get("pairs", []) if p["with"] in ids and p["without"] in ids
    ]
    return dict(recipe, clips=clips, pairs=pairs)


# What np.load raises for a cache file cut short or not an .npz at all.
UNREADABLE = (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError)


def read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Every array of a cache file; None where it cannot be read, with a
    one-line note on stderr (the caller computes it again)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except UNREADABLE as exc:
        print(
            f"realset cache: {path} unreadable ({type(exc).__name__}: {exc}); "
            "computing it again",
            file=sys.stderr,
        )
        return None


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez_compressed to a temporary file beside `path`, renamed over
    it once complete: a write cut short leaves the old file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)


def cached(
    cache: Path | None,
    name: str,
    ids: list[str],
    compute: Any,
    shared: tuple[str, ...] = ("names",),
) -> dict[str, np.ndarray]:
    """Arrays for these clip ids from CACHE/NAME.npz; clips not there are computed.

    `compute(index)` returns arrays for the clips at those positions of `ids`,
    one row per clip, except the `shared` ones (a tagger's tag names). Rows
    cached under the same clip ids are reused, so adding clips to the set
    computes only the new ones. A cache file that cannot be read counts as
    absent. With `compute` None nothing is computed or written: {} unless
    the cache holds every clip.
    """
    path = None if cache is None else cache / f"{name}.npz"
    old: dict[str, np.ndarray] = {}
    if path is not None and path.is_file():
        old = read_npz(path) or {}
    at = {str(i): n for n, i in enumerate(old.get("ids", []))}
    missing = [n for n, i in enumerate(ids) if i not in at]
    if missing and compute is None:
        return {}
    fresh = compute(missing) if missing else {}
    where = {n: k for k, n in enumerate(missing)}
    keys = fresh.keys() if fresh else [k for k in old if k != "ids"]
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        if key in shared:
            arrays[key] = fresh[key] if fresh else old[key]
            continue
        arrays[key] = np.stack(
            [
                fresh[key][where[n]] if n in where else old[key][at[i]]
                for n, i in enumerate(ids)
            ]
        )
    if path is not None and missing:
        write_npz(path, ids=np.array(ids), **arrays)
    return arrays


def all_queries() -> list[str]:
    from concepts import CONCEPTS, MUSIC_QUERIES, NEGATED, NEGATED_MUSIC_QUERIES

    qs = {c.query for c in CONCEPTS + NEGATED} | set(MUSIC_QUERIES)
    qs |= {q for q, _ in NEGATED_MUSIC_QUERIES}
    qs |= {t for q in QUERIES.values() for t in q} | {q for q, _ in RANKING}
    return sorted(qs)


def run(args: argparse.Namespace) -> dict[str, Any]:
    recipe = load_recipe(args.labels)
    paths = clip_paths(recipe, args.data)
    ids = [c["id"] for c in recipe["clips"]]
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    cache = args.cache
    models = [args.musicnn] if args.musicnn else list(args.taggers)
    taggers: dict[str, tuple[list[str], np.ndarray]] = {}
    for model in models:
        try:
            got = cached(
                cache,
                model,
                ids,
                lambda index, m=model: dict(
                    zip(
                        ("names", "probs"),
                        tags_with_musicnn(m, [paths[n] for n in index]),
                        strict=True,
                    )
                ),
            )
        except ImportError as exc:  # no torch: the text figures still stand
            print(f"realset check: {model} skipped ({exc})", file=sys.stderr)
            continue
        taggers[model] = ([str(n) for n in got["names"]], got["probs"])
    text: dict[str, dict[str, np.ndarray]] = {}
    audio: np.ndarray | None = None
    tags: np.ndarray | None = None
    tag_names: list[str] = []
    scorers: dict[str, Any] = {}
    if args.musicnn:
        model = f"{args.musicnn} (tags only)"
        tag_names, tags = taggers[args.musicnn] if taggers else ([], None)
    else:
        from beetsplug.clap.audio import AudioError
        from beetsplug.clap.model import Bundle, BundleError

        try:
            bundle = Bundle.load(args.bundle, threads=args.threads)

            def embed(index: list[int]) -> dict[str, np.ndarray]:
                a, t = embed_with_bundle(bundle, [paths[n] for n in index])
                return {"audio": a} if t is None else {"audio": a, "tags": t}

            got = cached(cache, f"bundle-{bundle.identity[:16]}", ids, embed)
        except (BundleError, AudioError) as exc:
            raise CheckError(str(exc)) from exc
        audio, tags = got["audio"], got.get("tags")
        tag_names = list(bundle.tag_names)
        model = bundle.label
        queries = all_queries()
        vecs = dict(zip(queries, bundle.embed_text(queries), strict=True))
        text["sim"] = {q: audio @ v for q, v in vecs.items()}
        scorers["sim"] = lambda q: text["sim"][q]
        plugin = _plugin_scorer(
            bundle, audio, tags, args.tag_weight, args.affirmed_tag_weight
        )
        if plugin is not None:
            text["plugin"] = {}
            for q in queries:
                scored = plugin(q)
                if scored is not None:
                    text["plugin"][q] = scored
            scorers["plugin"] = lambda q: text["plugin"].get(q)
        if cache is not None:
            nan_row = np.full(len(ids), np.nan, np.float32)
            write_npz(
                cache / f"scores-{bundle.identity[:16]}.npz",
                ids=np.array(ids),
                queries=np.array(queries),
                **{
                    name: np.stack([by_q.get(q, nan_row) for q in queries])
                    for name, by_q in text.items()
                },
            )
    parts = PARTS if args.part is None else (args.part,)
    report: dict[str, Any] = {
        "model": model,
        "clips": len(paths),
        "scorers": list(text),
        "taggers": list(taggers),
        "parts": {},
    }
    for part in parts:
        index = part_index(recipe, part)
        if len(index) == 0:
            raise CheckError(f"no clips in part {part!r} (labels.json has no split?)")
        entry = part_report(recipe, index, text, taggers)
        sub = sub_recipe(recipe, index)
        sub_text = dict(vecs) if audio is not None else {}
        entry["attributes"] = attribute_rows(
            sub,
            None if audio is None else audio[index],
            sub_text,
            tag_names,
            None if tags is None else tags[index],
        )
        entry["ranking"] = ranking_rows(
            sub,
            {
                name: (lambda q, f=f, ix=index: None if f(q) is None else f(q)[ix])
                for name, f in scorers.items()
            },
        )
        report["parts"][part] = entry
    return report


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


def add_cached_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of the scripts that read a bundle's cached embeddings of
    the set (wordings.py, names.py)."""
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--labels", type=Path, default=HERE / "labels.json")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--part", choices=("choose", "report"), default=None)
    parser.add_argument("--threads", type=int, default=None)


def load_embedded(
    args: argparse.Namespace,
) -> tuple[dict[str, Any], Any, dict[str, np.ndarray]]:
    """(recipe, bundle, {"audio", "tags"?}) for add_cached_arguments' args:
    the bundle's embeddings of every clip, from the cache where a check run
    left them, else computed (and cached)."""
    from beetsplug.clap.model import Bundle

    recipe = load_recipe(args.labels)
    paths = clip_paths(recipe, args.data)
    ids = [c["id"] for c in recipe["clips"]]
    bundle = Bundle.load(args.bundle, threads=args.threads)

    def embed(index: list[int]) -> dict[str, np.ndarray]:
        a, t = embed_with_bundle(bundle, [paths[n] for n in index])
        return {"audio": a} if t is None else {"audio": a, "tags": t}

    return (
        recipe,
        bundle,
        cached(args.cache, f"bundle-{bundle.identity[:16]}", ids, embed),
    )


def cached_main(
    argv: Sequence[str] | None,
    doc: str,
    label: str,
    run: Any,
    print_report: Any,
) -> int:
    """main() of a script that reads the cached embeddings (wordings.py,
    names.py): its arguments, its report, then the report as one JSON line;
    a set not built is one line on stderr and exit status 1."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    add_cached_arguments(parser)
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except CheckError as exc:  # clips not built: one line, not a traceback
        print(f"realset {label}: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    print(json.dumps(_clean(report), sort_keys=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    sys.path.insert(0, str(HERE.parent))  # tests/benchmarks: common.py
    from common import add_weight_options

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
    parser.add_argument(
        "--part",
        choices=("choose", "report", "all"),
        default=None,
        help="one part of the split (default: choose and report, each on its own)",
    )
    parser.add_argument(
        "--taggers",
        nargs="*",
        default=("MTT_musicnn", "MSD_musicnn"),
        help="pretrained taggers to put beside the text queries (none: no torch)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder for per-clip tagger tags and bundle embeddings (reused "
        "when the clip ids match; a bundle is keyed by its identity)",
    )
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG here")
    parser.add_argument("--threads", type=int, default=None)
    add_weight_options(
        parser,
        {
            "tag_weight": "the plugin's tag_weight for its ranking (default: the "
            "plugin's)",
            "affirmed_tag_weight": "the plugin's affirmed_tag_weight (default: the "
            "plugin's)",
        },
    )
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except CheckError as exc:
        print(f"realset check: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    if args.plot is not None:
        plot_parity(report, args.plot)
    print(json.dumps({"realset": _clean(report)}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
