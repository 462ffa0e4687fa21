"""The protocols: caption retrieval, negation, minimal pairs and negated retrieval.

Each takes pooled clip embeddings, the clips' labels and a text embedder, and
returns plain numbers (docs/benchmark.md defines each one).
"""

from __future__ import annotations

import random
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trainer import vocab
from trainer.evaluate.clips import Clip, TextEmbedder
from trainer.evaluate.metrics import (
    TOP_K,
    binary_accuracy,
    recall_curve,
    retrieval_metrics,
    topk_precision_violation,
)
from trainer.synth.labels import IMPLIES

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
# Descriptions that want two things at once (conjunctive_retrieval).
CONJUNCTIVE_FORMS: tuple[str, ...] = ("{a} with {b}", "{a} and {b}")
WEIGHT_SWEEP: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
TAG_WEIGHT_SWEEP: tuple[float, ...] = (0.0, 0.15, 0.3, 0.5, 1.0)
AFFIRMED_TAG_WEIGHT_SWEEP: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5)


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


def _term_pairs(
    clips: list[Clip],
) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
    """(A, B, has A, has B) for A a style or instrument family and B vocals,
    drums or a family that the clips name, A ≠ B and neither implying the
    other."""
    present = [c.present for c in clips]

    def seen(terms: Sequence[str]) -> list[str]:
        return [t for t in terms if any(t in p for p in present)]

    b_terms = seen((*vocab.PRESENCE, *vocab.INSTRUMENTS))
    for a in seen((*vocab.STYLES, *vocab.INSTRUMENTS)):
        has_a = np.array([a in p for p in present])
        for b in b_terms:
            if a == b or b in IMPLIES.get(a, ()) or a in IMPLIES.get(b, ()):
                continue
            yield a, b, has_a, np.array([b in p for p in present])


def negated_queries(clips: list[Clip], min_relevant: int = TOP_K) -> list[NegatedQuery]:
    """ "A without B" / "A, no B" queries the split can judge.

    A is a style or instrument family, B vocals, drums or a family. Relevant:
    clips with A and without B (B not implied either); violating: clips with
    B. A query is kept when at least `min_relevant` clips are relevant and at
    least one clip has both A and B (otherwise B would not discriminate).
    """
    out = []
    for a, b, has_a, has_b in _term_pairs(clips):
        relevant = has_a & ~has_b
        if relevant.sum() < min_relevant or not (has_a & has_b).any():
            continue
        out += [
            NegatedQuery(f.format(a=a, b=b), a, b, f, relevant, has_b)
            for f in NEGATED_FORMS
        ]
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
    speech_weight: float = 0.0,
) -> ParsedScores:
    """The plugin's parser and its score combination (what `beet clap TEXT` ranks by):
    sim(whole text) - w * max over the negated attributes of (sim, the best of
    the attribute's and its kinds', + tag_weight x
    the tagger's evidence, where a tag speaks about the attribute), plus
    affirmed_tag_weight x the evidence for the attributes the query asks
    for, together (their geometric mean), minus speech_weight x the speech
    penalty where the query wants no voice. The plugin's own TextQuery does
    the scoring, its attributes linked to tags as the plugin links them:
    through the bundle `embed` embeds with (`taglinks.link_tags`: the
    lexicon, else the bundle's text encoder), the lexicon alone for an
    `embed` without one. A text the model has no words for scores 0
    everywhere (the plugin refuses it; here it just ranks badly).
    """
    from beetsplug.clap.query import parse_query
    from beetsplug.clap.scoring import SPEECH_TEXT, negated_phrases, whole_vector
    from beetsplug.clap.search import TextQuery

    parsed = parse_query(text)
    whole = whole_vector(embed(list(parsed.whole_texts)))
    negated = negated_phrases(parsed)
    vecs = np.concatenate([whole[None, :], embed(negated)]) if negated else whole[None]
    names = tag_names if tags is not None else ()
    query = TextQuery.build(
        parsed,
        vecs,
        0.0,
        names,
        tag_weight,
        affirmed_tag_weight,
        bundle=getattr(embed, "bundle", None) if names else None,
        speech_vector=embed([SPEECH_TEXT])[0] if speech_weight > 0 else None,
        speech_weight=speech_weight,
    )
    return ParsedScores(query, audio, tags)


def _kind(term: str) -> str:
    return term if term in vocab.PRESENCE else "instrument"


def _summary(
    queries: Sequence[NegatedQuery | ConjunctiveQuery],
    results: list[tuple[float, float]],
    second: str,
    forms: Sequence[str],
) -> tuple[dict, Callable[[np.ndarray], dict]]:
    """Precision@10 and `second` (the other share of each result) averaged
    over the queries, and by form; with the function that averages them
    over a mask of the queries."""
    prec = np.array([r[0] for r in results])
    other = np.array([r[1] for r in results])

    def block(mask: np.ndarray) -> dict:
        return {
            "queries": int(mask.sum()),
            "precision_at_10": float(prec[mask].mean()) if mask.any() else None,
            second: float(other[mask].mean()) if mask.any() else None,
        }

    out = block(np.ones(len(queries), bool))
    out["by_form"] = {f: block(np.array([q.form == f for q in queries])) for f in forms}
    return out, block


def _summarise(queries: list[NegatedQuery], results: list[tuple[float, float]]) -> dict:
    if not queries:
        return {"queries": 0, "precision_at_10": None, "violation_rate": None}
    out, block = _summary(queries, results, "violation_rate", NEGATED_FORMS)
    out["by_negated"] = {
        k: block(np.array([_kind(q.b) == k for q in queries]))
        for k in ("vocals", "drums", "instrument")
        if any(_kind(q.b) == k for q in queries)
    }
    # Each negated term alone: a change to how one attribute is read (its
    # phrases, its tag links) shows here before it moves the means.
    out["by_term"] = {
        b: block(np.array([q.b == b for q in queries]))
        for b in sorted({q.b for q in queries})
    }
    return out


@dataclass(frozen=True)
class ConjunctiveQuery:
    text: str
    a: str
    b: str
    form: str
    relevant: np.ndarray  # clips with A and B
    partial: np.ndarray  # clips with one of them only


def conjunctive_queries(
    clips: list[Clip], min_relevant: int = TOP_K
) -> list[ConjunctiveQuery]:
    """ "A with B" / "A and B" queries the split can judge: A a style or
    instrument family, B vocals, drums or a family (not A, not implied by it
    or implying it). Relevant: clips with both; partial: clips with one of
    them only. Kept when at least `min_relevant` clips are relevant and one
    is partial."""
    out = []
    for a, b, has_a, has_b in _term_pairs(clips):
        relevant = has_a & has_b
        partial = has_a ^ has_b
        if relevant.sum() < min_relevant or not partial.any():
            continue
        out += [
            ConjunctiveQuery(f.format(a=a, b=b), a, b, f, relevant, partial)
            for f in CONJUNCTIVE_FORMS
        ]
    return out


def conjunctive_retrieval(
    audio: np.ndarray,
    clips: list[Clip],
    embed: TextEmbedder,
    weight: float,
    min_relevant: int = TOP_K,
    tags: np.ndarray | None = None,
    tag_names: Sequence[str] = (),
    tag_weight: float = 0.0,
    affirmed_tag_weight: float = 0.0,
    speech_weight: float = 0.0,
) -> dict:
    """Descriptions that want two things ("piano with drums"), ranked as the
    plugin ranks them ("plugin": the wanted attributes' tag evidence by
    their geometric mean), with that evidence averaged instead ("mean": what
    requiring each attribute changes) and by the whole text alone
    ("text"). Per ranking: precision@10 of clips with both, and the
    share of the top 10 that has one of them only ("partial_rate")."""
    from beetsplug.clap.scoring import TagScale

    queries = conjunctive_queries(clips, min_relevant)
    columns = ("plugin", "mean", "text")
    if not queries:
        return {c: _summarise_conjunctive([], []) for c in columns}
    scale = TagScale.fit(tags) if tags is not None else None
    results: dict[str, list[tuple[float, float]]] = {c: [] for c in columns}
    for q in queries:
        scored = parsed_scores(
            q.text,
            audio,
            embed,
            tags,
            tag_names,
            tag_weight,
            affirmed_tag_weight,
            speech_weight,
        )
        query = replace(scored.query, weight=weight)
        terms = query.terms(audio, tags, scale)
        averaged = terms
        if tags is not None and terms.evidence is not None:
            evidence = np.mean(query.wanted_evidence(tags, scale), axis=0)
            averaged = replace(terms, evidence=evidence)
        ranked = {
            "plugin": query.total(terms),
            "mean": query.total(averaged),
            "text": query.total(replace(terms, evidence=None)),
        }
        for c in columns:
            got = topk_precision_violation(ranked[c], q.relevant, q.partial)
            results[c].append(got)
    return {c: _summarise_conjunctive(queries, results[c]) for c in columns}


def _summarise_conjunctive(
    queries: list[ConjunctiveQuery], results: list[tuple[float, float]]
) -> dict:
    if not queries:
        return {"queries": 0, "precision_at_10": None, "partial_rate": None}
    return _summary(queries, results, "partial_rate", CONJUNCTIVE_FORMS)[0]


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
    speech_weight: float = 0.0,
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
                "speech_weight": speech_weight,
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
            q.text,
            audio,
            embed,
            tags,
            tag_names,
            tag_weight,
            affirmed_tag_weight,
            speech_weight,
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
            "speech_weight": speech_weight,
            "parsed_share": float(np.mean([bool(p.negated) for p in parsed])),
            "negated_attributes_seen": len(parsed_negated),
        },
        "a_minus_b": {**_summarise(queries, ab), "weight": weight},
        "parsed_sweep": sweep,
        "tag_sweep": tag_sweep,
        "affirmed_sweep": affirmed_sweep,
    }
