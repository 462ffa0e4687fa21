"""The benchmark: retrieval and negation metrics of model bundles on held-out splits.

    python -m trainer evaluate --bundle DIR --data DIR [--split test]
        [--split test_shift] [--baseline random=DIR --baseline blind=DIR]
        [--out DIR] [--max-clips N]

Clips are embedded exactly as the plugin embeds a track (its `load_windows`
and `pool_embeddings`, through its `Bundle`), so the numbers describe what a
user gets. Every metric is a pure function of similarity matrices and labels
(tested on hand-made matrices); docs/benchmark.md defines each one. The JSON
of the run is written to a file and printed as the last line of stdout; a PNG
plot is written next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from trainer import vocab
from trainer.synth.labels import IMPLIES, present_terms

FORMAT = 1
CAPTION_COLUMNS: tuple[str, ...] = (
    "caption_writing",
    "caption_summary",
    "caption_paraphrase",
    "caption_attribute_prediction",
)
RECALL_KS: tuple[int, ...] = (1, 5, 10)
CURVE_MAX_K = 50
TOP_K = 10
# Minimal-pair prompts: the with-X clip should win the positive ones, the
# without-X clip the negative ones. "{style}" is the pair's own style.
PAIR_POSITIVE: tuple[str, ...] = (
    "{x}",
    "with {x}",
    "music with {x}",
    "{style} with {x}",
)
PAIR_NEGATIVE: tuple[str, ...] = (
    "no {x}",
    "without {x}",
    "music without {x}",
    "{style} without {x}",
)
PAIR_NEGATIVE_EXTRA: dict[str, tuple[str, ...]] = {"vocals": ("instrumental music",)}
NEGATED_FORMS: tuple[str, ...] = ("{a} without {b}", "{a}, no {b}")
WEIGHT_SWEEP: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
TAG_WEIGHT_SWEEP: tuple[float, ...] = (0.0, 0.15, 0.3, 0.5, 1.0)
AFFIRMED_TAG_WEIGHT_SWEEP: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5)
EMBED_CHUNK = 32  # clips per embed_audio call
NPY_RATE = 16000  # the rate of preprocessed .npy clips (Contract 3)


class EvaluateError(Exception):
    """Bad input to the benchmark (one-line reason)."""


# --------------------------------------------------------------------------
# Metrics: pure functions of similarity matrices
# --------------------------------------------------------------------------


def target_ranks(sim: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """1-based rank of each query's target item (row q of `sim` scores every item).

    Ties count against the target: an item scoring the same as the target is
    ranked above it, so a model that scores everything alike gets the worst
    rank, not the best.
    """
    sim = np.asarray(sim, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    target_scores = sim[np.arange(len(targets)), targets]
    return (sim >= target_scores[:, None]).sum(axis=1).astype(np.int64)


def recall_at(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(np.asarray(ranks) <= k)) if len(ranks) else float("nan")


def map_at(ranks: np.ndarray, k: int = TOP_K) -> float:
    """Mean average precision at k with one relevant item per query (= MRR cut at k)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if not len(ranks):
        return float("nan")
    return float(np.mean(np.where(ranks <= k, 1.0 / ranks, 0.0)))


def retrieval_metrics(sim: np.ndarray, targets: Sequence[int]) -> dict:
    """R@1/5/10, mAP@10 and median rank of each query's target."""
    ranks = target_ranks(sim, targets)
    out = {f"R@{k}": recall_at(ranks, k) for k in RECALL_KS}
    out["mAP@10"] = map_at(ranks, TOP_K)
    out["median_rank"] = float(np.median(ranks)) if len(ranks) else float("nan")
    out["queries"] = len(ranks)
    return out


def recall_curve(
    sim: np.ndarray, targets: Sequence[int], max_k: int = CURVE_MAX_K
) -> list[float]:
    ranks = target_ranks(sim, targets)
    return [recall_at(ranks, k) for k in range(1, min(max_k, sim.shape[1]) + 1)]


def binary_accuracy(score_a: np.ndarray, score_b: np.ndarray) -> float:
    """Share of cases where a scores strictly above b (ties are failures)."""
    score_a, score_b = np.asarray(score_a), np.asarray(score_b)
    return float(np.mean(score_a > score_b)) if len(score_a) else float("nan")


def topk_precision_violation(
    scores: np.ndarray, relevant: np.ndarray, violating: np.ndarray, k: int = TOP_K
) -> tuple[float, float]:
    """(share of the top k that is relevant, share that violates) for one query.

    k is capped at the number of relevant items, so a perfect ranking scores
    1.0 even when fewer than k items qualify. Ties are broken by item order.
    """
    k = int(min(k, relevant.sum()))
    if k == 0:
        return float("nan"), float("nan")
    top = np.argsort(-np.asarray(scores), kind="stable")[:k]
    return float(relevant[top].mean()), float(violating[top].mean())


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


@dataclass
class Clip:
    track_id: str
    audio: Path
    tags: list[str]
    captions: dict[str, str]
    attributes: dict | None = None
    absent: list[str] | None = None
    pair_id: str | None = None
    pair_attribute: str | None = None
    base_piece: str | None = None
    present: set[str] = field(default_factory=set)


def _audio_path(data: Path, rel: str) -> Path:
    """The preprocessed .npy beside the file if there is one (Contract 3), else it."""
    path = data / "audio" / rel
    npy = path.with_suffix(".npy")
    return npy if npy.is_file() else path


def load_split(data: Path, split: str, max_clips: int | None = None) -> list[Clip]:
    """The clips of one split; --max-clips keeps whole base pieces (pairs together)."""
    import pyarrow.parquet as pq

    path = data / "captions" / f"{split}.parquet"
    if not path.is_file():
        raise EvaluateError(
            f"{path} not found (is {data} a data directory with a {split} split?)"
        )
    table = pq.read_table(path).to_pylist()
    missing = {"track_id", "tag", "path"} - set(
        table[0] if table else {"track_id", "tag", "path"}
    )
    if missing:
        raise EvaluateError(f"{path} lacks columns {sorted(missing)}")
    clips = []
    for row in table:
        attrs = json.loads(row["attributes"]) if row.get("attributes") else None
        tags = [str(t) for t in (row.get("tag") or [])]
        present = present_terms(tags)
        if attrs and attrs.get("style"):
            present.add(attrs["style"])
        clips.append(
            Clip(
                track_id=str(row["track_id"]),
                audio=_audio_path(data, row["path"]),
                tags=tags,
                captions={c: row[c] for c in CAPTION_COLUMNS if row.get(c)},
                attributes=attrs,
                absent=row.get("absent"),
                pair_id=row.get("pair_id"),
                pair_attribute=row.get("pair_attribute"),
                base_piece=row.get("base_piece") or str(row["track_id"]),
                present=present,
            )
        )
    clips.sort(key=lambda c: c.track_id)
    if max_clips is not None and len(clips) > max_clips:
        groups: dict[str, list[Clip]] = defaultdict(list)
        for clip in clips:
            groups[clip.base_piece].append(clip)
        kept: list[Clip] = []
        for key in sorted(groups):
            if len(kept) + len(groups[key]) > max_clips:
                break
            kept.extend(groups[key])
        clips = kept
    return clips


# --------------------------------------------------------------------------
# Embedding (exactly as the plugin does)
# --------------------------------------------------------------------------


def windows_from_array(
    samples: np.ndarray,
    rate: int,
    sample_rate: int,
    window_seconds: float,
    max_windows: int,
) -> np.ndarray:
    """Windows of an already decoded mono array, cut exactly as load_windows cuts
    a file: the plugin's window plan, cyclic fill of short windows, clipping,
    silent windows dropped."""
    import math

    from beetsplug.clap.audio import MIN_SECONDS, SILENCE_RMS, AudioError, plan_windows

    mono = np.asarray(samples, dtype=np.float32).reshape(-1)
    if len(mono) < MIN_SECONDS * rate:
        raise AudioError(
            f"too short ({len(mono) / rate:.1f} s; at least {MIN_SECONDS:g} s needed)"
        )
    window = math.ceil(window_seconds * rate)
    size = round(window_seconds * sample_rate)
    out = []
    for start in plan_windows(len(mono), window, max_windows, rate):
        segment = mono[start : start + window]
        if rate != sample_rate:
            import soxr

            segment = soxr.resample(segment, rate, sample_rate, quality="HQ").astype(
                np.float32
            )
        out.append(segment[:size] if len(segment) >= size else np.resize(segment, size))
    windows = np.clip(np.stack(out), -1.0, 1.0).astype(np.float32)
    rms = np.sqrt(np.mean(np.square(windows, dtype=np.float64), axis=1))
    if not (rms >= SILENCE_RMS).any():
        raise AudioError("silent (every window below -70 dBFS)")
    return windows[rms >= SILENCE_RMS]


def clip_windows(bundle, path: Path) -> np.ndarray:
    from beetsplug.clap.audio import load_windows

    if path.suffix == ".npy":
        # Contract 3: preprocessed clips are 16 kHz mono float32.
        return windows_from_array(
            np.load(path),
            NPY_RATE,
            bundle.sample_rate,
            bundle.window_seconds,
            bundle.max_windows,
        )
    return load_windows(
        path, bundle.sample_rate, bundle.window_seconds, bundle.max_windows
    )


def _fingerprint(bundle, clips: list[Clip]) -> str:
    h = hashlib.sha256(bundle.identity.encode())
    for clip in clips:
        st = clip.audio.stat() if clip.audio.exists() else None
        h.update(
            f"{clip.track_id}\0{clip.audio}\0{st and st.st_size}\0"
            f"{st and st.st_mtime_ns}\n".encode()
        )
    return h.hexdigest()


def embed_clips(
    bundle,
    clips: list[Clip],
    cache_dir: Path | None,
    log: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, str]]:
    """Pooled embeddings [N, D] (skipped clips' rows are zero), mean tag
    probabilities [N, T] (bundles with tags, else None; the plugin stores
    the same per track), {track_id: reason}.

    Cached per bundle identity and clip set in cache_dir, so re-runs only
    embed text.
    """
    from beetsplug.clap.audio import AudioError, pool_embeddings

    fingerprint = _fingerprint(bundle, clips)
    cache = (
        cache_dir / f"{bundle.identity[:16]}-{fingerprint[:16]}.npz"
        if cache_dir
        else None
    )
    if cache is not None and cache.is_file():
        data = np.load(cache, allow_pickle=False)
        if str(data["fingerprint"]) == fingerprint and (
            "tags" in data or not bundle.has_tags
        ):
            skipped = json.loads(str(data["skipped"]))
            return data["embeddings"], data.get("tags"), skipped
    emb = np.zeros((len(clips), bundle.embedding_dim), dtype=np.float32)
    tag_rows = (
        np.zeros((len(clips), len(bundle.tag_names)), np.float32)
        if bundle.has_tags
        else None
    )
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    for lo in range(0, len(clips), EMBED_CHUNK):
        chunk = clips[lo : lo + EMBED_CHUNK]
        windows, owners = [], []
        for i, clip in enumerate(chunk):
            try:
                w = clip_windows(bundle, clip.audio)
            except AudioError as exc:
                skipped[clip.track_id] = str(exc)
                continue
            windows.append(w)
            owners += [lo + i] * len(w)
        if not windows:
            continue
        vectors, tags = bundle.embed_audio(np.concatenate(windows))
        owners_arr = np.asarray(owners)
        for idx in np.unique(owners_arr):
            emb[idx] = pool_embeddings(vectors[owners_arr == idx])
            if tag_rows is not None and tags is not None:
                tag_rows[idx] = tags[owners_arr == idx].mean(axis=0)
        if log and (lo // EMBED_CHUNK) % 10 == 9:
            log(
                f"evaluate: embedded {lo + len(chunk)}/{len(clips)} clips "
                f"({time.perf_counter() - started:.0f} s)"
            )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        extra = {"tags": tag_rows} if tag_rows is not None else {}
        np.savez(
            tmp,
            embeddings=emb,
            fingerprint=fingerprint,
            skipped=json.dumps(skipped),
            **extra,
        )
        tmp.replace(cache)
    return emb, tag_rows, skipped


class TextEmbedder:
    """Embeds each distinct text once per bundle (captions repeat across protocols)."""

    def __init__(self, bundle) -> None:
        self.bundle = bundle
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self._cache})
        for text, vec in zip(todo, self.bundle.embed_text(todo), strict=True):
            self._cache[text] = np.asarray(vec, dtype=np.float32)
        if not texts:
            return np.zeros((0, self.bundle.embedding_dim), np.float32)
        return np.stack([self._cache[t] for t in texts])


# --------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------


def caption_retrieval(
    audio: np.ndarray, clips: list[Clip], embed: TextEmbedder, column: str
) -> dict:
    """Text->music and music->text retrieval; each clip's own caption is its match."""
    idx = [i for i, c in enumerate(clips) if column in c.captions]
    if not idx:
        return {}
    text = embed([clips[i].captions[column] for i in idx])
    a = audio[idx]
    sim = text @ a.T  # [captions, clips]
    targets = np.arange(len(idx))
    return {
        "text_to_music": retrieval_metrics(sim, targets),
        "music_to_text": retrieval_metrics(sim.T, targets),
        "curve": recall_curve(sim, targets),
    }


def negation_protocols(
    audio: np.ndarray, clips: list[Clip], embed: TextEmbedder
) -> dict:
    """The paper's two protocols on (original, half-, fully-negated) tag captions.

    Retrieval: R@k of each clip among all clips, queried with each variant.
    Binary: sim(audio, original) > sim(audio, full), original > half, half > full.
    """
    idx, variants = [], []
    for i, clip in enumerate(clips):
        if not any(t in vocab.NEGATABLE for t in clip.tags):
            continue
        rng = random.Random(zlib.crc32(clip.track_id.encode()))
        idx.append(i)
        variants.append(vocab.negated_variants(clip.tags, rng))
    if not idx:
        return {"clips": 0}
    a = audio[idx]
    targets = np.arange(len(idx))
    out: dict = {"clips": len(idx), "retrieval": {}, "binary": {}, "curves": {}}
    scores = {}
    for k, name in enumerate(("original", "half", "full")):
        text = embed([v[k] for v in variants])
        sim = text @ a.T
        out["retrieval"][name] = retrieval_metrics(sim, targets)
        out["curves"][name] = recall_curve(sim, targets)
        scores[name] = np.einsum("ij,ij->i", a, text)
    out["binary"] = {
        "original_vs_full": binary_accuracy(scores["original"], scores["full"]),
        "original_vs_half": binary_accuracy(scores["original"], scores["half"]),
        "half_vs_full": binary_accuracy(scores["half"], scores["full"]),
    }
    return out


def minimal_pairs(clips: list[Clip]) -> list[tuple[str, int, int, str]]:
    """(attribute, with-clip index, without-clip index, style) for every usable pair.

    The attribute is the flipped term (drums, vocals or the instrument
    family); a vocals pair whose voice is a choir also counts for "choir".
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, clip in enumerate(clips):
        if clip.pair_id and clip.pair_attribute:
            groups[clip.pair_id].append(i)
    pairs = []
    for members in groups.values():
        if len(members) != 2:
            continue
        attr = clips[members[0]].pair_attribute
        term = attr.split(":", 1)[1] if attr.startswith("instrument:") else attr
        has = [term in clips[i].present for i in members]
        if has[0] == has[1]:
            continue
        w, wo = (members[0], members[1]) if has[0] else (members[1], members[0])
        style = (clips[w].attributes or {}).get("style", "music")
        pairs.append((term, w, wo, style))
        if (
            term == "vocals"
            and "choir" in clips[w].present
            and "choir" not in clips[wo].present
        ):
            pairs.append(("choir", w, wo, style))
    return pairs


def pair_accuracy(audio: np.ndarray, clips: list[Clip], embed: TextEmbedder) -> dict:
    """With-X vs without-X accuracy per attribute on minimal pairs (both directions)."""
    pairs = minimal_pairs(clips)
    per_attr: dict[str, dict[str, list[bool]]] = defaultdict(
        lambda: {"with": [], "without": []}
    )
    for term, w, wo, style in pairs:
        positive = [t.format(x=term, style=style) for t in PAIR_POSITIVE]
        negative = [t.format(x=term, style=style) for t in PAIR_NEGATIVE]
        negative += list(PAIR_NEGATIVE_EXTRA.get(term, ()))
        tp, tn = embed(positive), embed(negative)
        per_attr[term]["with"] += list(tp @ audio[w] > tp @ audio[wo])
        per_attr[term]["without"] += list(tn @ audio[wo] > tn @ audio[w])
    attributes = {}
    for term in sorted(per_attr):
        res = per_attr[term]
        with_acc, without_acc = (
            float(np.mean(res["with"])),
            float(np.mean(res["without"])),
        )
        attributes[term] = {
            "pairs": sum(1 for p in pairs if p[0] == term),
            "with": with_acc,
            "without": without_acc,
            "accuracy": (with_acc + without_acc) / 2,
        }
    families = [t for t in attributes if t in vocab.INSTRUMENTS]
    return {
        "pairs": len({(w, wo) for _, w, wo, _ in pairs}),
        "attributes": attributes,
        "vocals": attributes.get("vocals", {}).get("accuracy"),
        "drums": attributes.get("drums", {}).get("accuracy"),
        "instruments_mean": float(
            np.mean([attributes[f]["accuracy"] for f in families])
        )
        if families
        else None,
        "instrument_families": len(families),
    }


@dataclass(frozen=True)
class NegatedQuery:
    text: str
    a: str
    b: str
    form: str
    relevant: np.ndarray
    violating: np.ndarray


def negated_queries(clips: list[Clip], min_relevant: int = TOP_K) -> list[NegatedQuery]:
    """ "A without B" / "A, no B" queries the split can judge.

    A is a style or instrument family, B vocals, drums or a family. Relevant:
    clips with A and without B (B not implied either); violating: clips with
    B. A query is kept when at least `min_relevant` clips are relevant and at
    least one clip has both A and B (otherwise B would not discriminate).
    """
    a_terms = [
        t
        for t in (*vocab.STYLES, *vocab.INSTRUMENTS)
        if any(t in c.present for c in clips)
    ]
    b_terms = [
        t
        for t in (*vocab.PRESENCE, *vocab.INSTRUMENTS)
        if any(t in c.present for c in clips)
    ]
    present = [c.present for c in clips]
    out = []
    for a in a_terms:
        has_a = np.array([a in p for p in present])
        for b in b_terms:
            if a == b or b in IMPLIES.get(a, ()) or a in IMPLIES.get(b, ()):
                continue
            has_b = np.array([b in p for p in present])
            relevant = has_a & ~has_b
            if relevant.sum() < min_relevant or not (has_a & has_b).any():
                continue
            for form in NEGATED_FORMS:
                out.append(
                    NegatedQuery(form.format(a=a, b=b), a, b, form, relevant, has_b)
                )
    return out


@dataclass(frozen=True)
class ParsedScores:
    """A query as the plugin's layer 2 sees it: its TextQuery and the clips."""

    query: Any  # beetsplug.clap.search.TextQuery
    audio: np.ndarray  # [N clips, D]
    tags: np.ndarray | None  # [N clips, T] tag probabilities, or None

    @property
    def negated(self) -> list[str]:
        return self.query.negated

    def score(
        self,
        weight: float,
        tag_weight: float | None = None,
        affirmed_tag_weight: float | None = None,
    ) -> np.ndarray:
        changes: dict[str, float] = {"weight": weight}
        if tag_weight is not None:
            changes["tag_weight"] = tag_weight
        if affirmed_tag_weight is not None:
            changes["affirmed_tag_weight"] = affirmed_tag_weight
        return replace(self.query, **changes).score(self.audio, self.tags)


def parsed_scores(
    text: str,
    audio: np.ndarray,
    embed: TextEmbedder,
    tags: np.ndarray | None = None,
    tag_names: Sequence[str] = (),
    tag_weight: float = 0.0,
    affirmed_tag_weight: float = 0.0,
) -> ParsedScores:
    """The plugin's parser and its score combination (what `beet clap TEXT` ranks by):
    sim(whole text) - w * max over the negated attributes of (sim, the best of
    the attribute's and its kinds', + tag_weight x
    the tagger's evidence, where a tag speaks about the attribute), plus
    affirmed_tag_weight x the mean evidence for the attributes the query asks
    for. The plugin's own TextQuery does the scoring. A text the model has no
    words for scores 0 everywhere (the plugin refuses it; here it just ranks
    badly).
    """
    from beetsplug.clap.query import parse_query
    from beetsplug.clap.scoring import negated_phrases
    from beetsplug.clap.search import TextQuery

    parsed = parse_query(text)
    vecs = embed([text, *negated_phrases(parsed)])
    names = tag_names if tags is not None else ()
    query = TextQuery.build(parsed, vecs, 0.0, names, tag_weight, affirmed_tag_weight)
    return ParsedScores(query, audio, tags)


def _kind(term: str) -> str:
    return term if term in vocab.PRESENCE else "instrument"


def _summarise(queries: list[NegatedQuery], results: list[tuple[float, float]]) -> dict:
    if not queries:
        return {"queries": 0, "precision_at_10": None, "violation_rate": None}
    prec = np.array([r[0] for r in results])
    viol = np.array([r[1] for r in results])

    def block(mask: np.ndarray) -> dict:
        return {
            "queries": int(mask.sum()),
            "precision_at_10": float(prec[mask].mean()) if mask.any() else None,
            "violation_rate": float(viol[mask].mean()) if mask.any() else None,
        }

    out = block(np.ones(len(queries), bool))
    out["by_form"] = {
        f: block(np.array([q.form == f for q in queries])) for f in NEGATED_FORMS
    }
    out["by_negated"] = {
        k: block(np.array([_kind(q.b) == k for q in queries]))
        for k in ("vocals", "drums", "instrument")
        if any(_kind(q.b) == k for q in queries)
    }
    return out


def negated_retrieval(
    audio: np.ndarray,
    clips: list[Clip],
    embed: TextEmbedder,
    weight: float,
    min_relevant: int = TOP_K,
    tags: np.ndarray | None = None,
    tag_names: Sequence[str] = (),
    tag_weight: float = 0.0,
    affirmed_tag_weight: float = 0.0,
) -> dict:
    """Layer 1 (the query embedded as it is), layer 2 (the plugin's parsed scoring,
    with the tagger's evidence when the bundle has tags) and sim(A) - w sim(B)
    with the known A and B, plus sweeps of layer 2's three weights."""
    queries = negated_queries(clips, min_relevant)
    if not queries:
        empty = _summarise([], [])
        return {
            "plain": empty,
            "parsed": {
                **empty,
                "weight": weight,
                "tag_weight": tag_weight,
                "affirmed_tag_weight": affirmed_tag_weight,
            },
            "a_minus_b": empty,
            "parsed_sweep": [],
            "tag_sweep": [],
            "affirmed_sweep": [],
        }
    q_text = embed([q.text for q in queries])
    plain_scores = q_text @ audio.T
    plain = [
        topk_precision_violation(s, q.relevant, q.violating)
        for s, q in zip(plain_scores, queries, strict=True)
    ]

    # Layer 2 exactly as the plugin scores: its parser, its combination.
    parsed = [
        parsed_scores(
            q.text, audio, embed, tags, tag_names, tag_weight, affirmed_tag_weight
        )
        for q in queries
    ]

    def summary_at(w: float, tw: float | None = None, aw: float | None = None) -> dict:
        res = [
            topk_precision_violation(p.score(w, tw, aw), q.relevant, q.violating)
            for p, q in zip(parsed, queries, strict=True)
        ]
        return _summarise(queries, res)

    def point(key: str, value: float, summary: dict) -> dict:
        return {
            key: value,
            "precision_at_10": summary["precision_at_10"],
            "violation_rate": summary["violation_rate"],
        }

    sweep = [point("weight", w, summary_at(w)) for w in sorted({*WEIGHT_SWEEP, weight})]
    parsed_result = summary_at(weight)
    tag_sweep = (
        [
            point("tag_weight", tw, summary_at(weight, tw))
            for tw in sorted({*TAG_WEIGHT_SWEEP, tag_weight})
        ]
        if tags is not None
        else []
    )
    affirmed_sweep = (
        [
            point("affirmed_tag_weight", aw, summary_at(weight, None, aw))
            for aw in sorted({*AFFIRMED_TAG_WEIGHT_SWEEP, affirmed_tag_weight})
        ]
        if tags is not None
        else []
    )
    parsed_negated = sorted({n for p in parsed for n in p.negated})
    a_vec = embed([q.a for q in queries])
    b_vec = embed([q.b for q in queries])
    ab_scores = a_vec @ audio.T - weight * (b_vec @ audio.T)
    ab = [
        topk_precision_violation(s, q.relevant, q.violating)
        for s, q in zip(ab_scores, queries, strict=True)
    ]
    return {
        "plain": _summarise(queries, plain),
        "parsed": {
            **parsed_result,
            "weight": weight,
            "tag_weight": tag_weight if tags is not None else 0.0,
            "affirmed_tag_weight": affirmed_tag_weight if tags is not None else 0.0,
            "parsed_share": float(np.mean([bool(p.negated) for p in parsed])),
            "negated_attributes_seen": len(parsed_negated),
        },
        "a_minus_b": {**_summarise(queries, ab), "weight": weight},
        "parsed_sweep": sweep,
        "tag_sweep": tag_sweep,
        "affirmed_sweep": affirmed_sweep,
    }


def evaluate_split(
    bundle,
    clips: list[Clip],
    cache_dir: Path | None,
    weight: float,
    caption_column: str,
    min_relevant: int = TOP_K,
    log: Callable[[str], None] | None = None,
    tag_weight: float = 0.0,
    affirmed_tag_weight: float = 0.0,
) -> dict:
    """Every metric of one bundle on one split."""
    audio, tags, skipped = embed_clips(bundle, clips, cache_dir, log)
    keep = [i for i, c in enumerate(clips) if c.track_id not in skipped]
    clips = [clips[i] for i in keep]
    audio = audio[keep]
    tags = tags[keep] if tags is not None else None
    embed = TextEmbedder(bundle)
    main = caption_retrieval(audio, clips, embed, caption_column)
    by_column = {}
    for column in CAPTION_COLUMNS:
        res = (
            main
            if column == caption_column
            else caption_retrieval(audio, clips, embed, column)
        )
        if res:
            by_column[column] = {
                "text_to_music_R@10": res["text_to_music"]["R@10"],
                "music_to_text_R@10": res["music_to_text"]["R@10"],
            }
    negation = negation_protocols(audio, clips, embed)
    return {
        "clips": len(clips),
        "skipped": skipped,
        "caption_column": caption_column,
        "text_to_music": main.get("text_to_music"),
        "music_to_text": main.get("music_to_text"),
        "by_caption_column": by_column,
        "negation": {k: v for k, v in negation.items() if k != "curves"},
        "minimal_pairs": pair_accuracy(audio, clips, embed),
        "negated_retrieval": negated_retrieval(
            audio,
            clips,
            embed,
            weight,
            min_relevant,
            tags,
            bundle.tag_names if tags is not None else (),
            tag_weight,
            affirmed_tag_weight,
        ),
        "curves": {
            "text_to_music": main.get("curve", []),
            **{f"negation_{k}": v for k, v in negation.get("curves", {}).items()},
        },
    }


# --------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------


def plot(result: dict, path: Path) -> None:
    """Per split: minimal-pair accuracy per attribute, recall curves, negation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = {"model": result["model"], **result.get("baselines", {})}
    splits = result["splits"]
    fig, axes = plt.subplots(
        len(splits), 3, figsize=(18, 4.8 * len(splits)), squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, split in enumerate(splits):
        ax_bar, ax_curve, ax_neg = axes[row]
        attrs = sorted(
            {
                a
                for m in models.values()
                for a in m["results"][split]["minimal_pairs"]["attributes"]
            },
            key=lambda a: (a not in vocab.PRESENCE, a),
        )
        width = 0.8 / max(1, len(models))
        for j, (name, model) in enumerate(models.items()):
            pa = model["results"][split]["minimal_pairs"]["attributes"]
            vals = [pa.get(a, {}).get("accuracy", np.nan) for a in attrs]
            ax_bar.bar(
                np.arange(len(attrs)) + j * width,
                vals,
                width,
                label=name,
                color=colors[j % 10],
            )
        ax_bar.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax_bar.set_xticks(
            np.arange(len(attrs)) + 0.4 - width / 2,
            attrs,
            rotation=60,
            ha="right",
            fontsize=8,
        )
        ax_bar.set_ylim(0, 1)
        ax_bar.set_title(f"{split}: with-X vs without-X accuracy (minimal pairs)")
        ax_bar.legend(fontsize=8)
        for j, (name, model) in enumerate(models.items()):
            curves = model["results"][split]["curves"]
            for key, style in (
                ("text_to_music", "-"),
                ("negation_half", "--"),
                ("negation_full", ":"),
            ):
                c = curves.get(key) or []
                if c:
                    ax_curve.plot(
                        range(1, len(c) + 1),
                        c,
                        style,
                        color=colors[j % 10],
                        label=f"{name}: {key.replace('negation_', '')}",
                    )
        ax_curve.set_xlabel("k")
        ax_curve.set_ylabel("recall@k (text -> music)")
        ax_curve.set_ylim(0, 1)
        ax_curve.set_title(
            f"{split}: retrieval curves (captions; half/fully negated tags)"
        )
        ax_curve.legend(fontsize=7)
        labels = [
            "orig>full",
            "orig>half",
            "half>full",
            "neg P@10",
            "neg viol.",
            "parsed P@10",
            "parsed viol.",
        ]
        for j, (name, model) in enumerate(models.items()):
            res = model["results"][split]
            b = res["negation"].get("binary", {})
            nr = res["negated_retrieval"]
            vals = [
                b.get("original_vs_full"),
                b.get("original_vs_half"),
                b.get("half_vs_full"),
                nr["plain"]["precision_at_10"],
                nr["plain"]["violation_rate"],
                nr["parsed"]["precision_at_10"],
                nr["parsed"]["violation_rate"],
            ]
            vals = [np.nan if v is None else v for v in vals]
            ax_neg.bar(
                np.arange(len(labels)) + j * width,
                vals,
                width,
                label=name,
                color=colors[j % 10],
            )
        ax_neg.set_xticks(
            np.arange(len(labels)) + 0.4 - width / 2,
            labels,
            rotation=30,
            ha="right",
            fontsize=8,
        )
        ax_neg.set_ylim(0, 1)
        ax_neg.set_title(f"{split}: negation protocols and negated retrieval")
        ax_neg.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trainer evaluate",
        description="Retrieval and negation benchmark of model bundles.",
    )
    p.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    p.add_argument(
        "--data", type=Path, required=True, help="data directory (Contract 3)"
    )
    p.add_argument(
        "--split",
        action="append",
        dest="splits",
        help="split(s) to evaluate (default: test, and test_shift when present)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="another bundle evaluated the same way, e.g. random=DIR blind=DIR",
    )
    p.add_argument(
        "--out", type=Path, help="output folder (default: eval/ beside the bundle)"
    )
    p.add_argument(
        "--max-clips", type=int, help="at most N clips per split (whole base pieces)"
    )
    p.add_argument(
        "--negation-weight",
        type=float,
        help="layer-2 weight (default: the bundle's query.negation_weight, else 0.5)",
    )
    p.add_argument(
        "--tag-weight",
        type=float,
        help="layer-2 weight of the tagger's evidence (default: the plugin's, "
        "for bundles with tags)",
    )
    p.add_argument(
        "--affirmed-tag-weight",
        type=float,
        help="layer-2 weight of the tagger's evidence for the attributes a query "
        "asks for (default: the plugin's, for bundles with tags)",
    )
    p.add_argument(
        "--caption-column", default="caption_writing", choices=CAPTION_COLUMNS
    )
    p.add_argument(
        "--min-relevant",
        type=int,
        default=TOP_K,
        help="negated retrieval: clips with A and not B a query needs (default 10)",
    )
    p.add_argument("--threads", type=int, help="onnxruntime threads")
    p.add_argument("--quiet", action="store_true")
    return p


def _load_bundle(path: Path, threads: int | None):
    from beetsplug.clap.model import Bundle, BundleError

    try:
        return Bundle.load(path, threads=threads)
    except BundleError as exc:
        raise EvaluateError(str(exc)) from None


def _bundle_info(bundle) -> dict:
    return {
        "name": bundle.name,
        "version": bundle.version,
        "identity": bundle.identity,
        "path": str(bundle.path),
        "embedding_dim": bundle.embedding_dim,
    }


def _tag_weight_arg(flag: str, value: float | None, default: float) -> float:
    """A layer-2 tag weight from the command line (the plugin's default if
    not given), in the range the plugin's config accepts."""
    value = default if value is None else value
    if not 0 <= value <= 10:
        raise EvaluateError(f"{flag} must be a number in 0..10")
    return value


def run(args: argparse.Namespace, log: Callable[[str], None] | None = None) -> dict:
    """Evaluate the bundle (and baselines), write JSON + PNG; return the JSON."""
    from beetsplug.clap.search import (
        DEFAULT_AFFIRMED_TAG_WEIGHT,
        DEFAULT_TAG_WEIGHT,
        resolve_negation_weight,
    )

    started = time.perf_counter()
    data = args.data
    if not (data / "captions").is_dir():
        raise EvaluateError(f"{data} is not a data directory (no captions/ folder)")
    splits = args.splits or ["test"] + (
        ["test_shift"] if (data / "captions" / "test_shift.parquet").is_file() else []
    )
    baselines = []
    for spec in args.baseline:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise EvaluateError(f"--baseline {spec!r}: expected NAME=DIR")
        if name == "model" or name in [b[0] for b in baselines]:
            raise EvaluateError(f"--baseline {spec!r}: the name {name!r} is taken")
        baselines.append((name, Path(path)))
    if args.max_clips is not None and args.max_clips < 1:
        raise EvaluateError("--max-clips must be at least 1")
    clips = {s: load_split(data, s, args.max_clips) for s in splits}
    for s, c in clips.items():
        if not c:
            raise EvaluateError(f"split {s} of {data} has no clips")
    bundle = _load_bundle(args.bundle, args.threads)
    out = args.out or args.bundle.resolve().parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    weight = resolve_negation_weight(args.negation_weight, bundle)
    tag_weight = _tag_weight_arg("--tag-weight", args.tag_weight, DEFAULT_TAG_WEIGHT)
    affirmed_tag_weight = _tag_weight_arg(
        "--affirmed-tag-weight", args.affirmed_tag_weight, DEFAULT_AFFIRMED_TAG_WEIGHT
    )

    def evaluate_bundle(b) -> dict:
        results = {}
        for s in splits:
            if log:
                log(f"evaluate: {b.name} on {s} ({len(clips[s])} clips)")
            results[s] = evaluate_split(
                b,
                clips[s],
                out / "cache",
                weight,
                args.caption_column,
                args.min_relevant,
                log,
                tag_weight,
                affirmed_tag_weight,
            )
        return {**_bundle_info(b), "results": results}

    result = {
        "benchmark": "beets-clap retrieval and negation benchmark",
        "format": FORMAT,
        "data": str(data),
        "splits": splits,
        "caption_column": args.caption_column,
        "negation_weight": weight,
        "tag_weight": tag_weight,
        "affirmed_tag_weight": affirmed_tag_weight,
        "max_clips": args.max_clips,
        "model": evaluate_bundle(bundle),
        "baselines": {
            name: evaluate_bundle(_load_bundle(path, args.threads))
            for name, path in baselines
        },
    }
    result["seconds"] = round(time.perf_counter() - started, 2)
    stem = f"{bundle.name}-{data.resolve().name}"
    json_path, png_path = out / f"{stem}.json", out / f"{stem}.png"
    result["outputs"] = {"json": str(json_path), "png": str(png_path)}
    json_path.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    plot(result, png_path)
    return result


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; the last stdout line is the JSON result. 2 on bad input."""
    args = _parser().parse_args(argv)
    log = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    try:
        result = run(args, log)
    except EvaluateError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=_json_default))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
