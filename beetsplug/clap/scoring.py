"""Scoring: a parsed query against item vectors and stored tags, and its explanation.

The score of an item is the whole description's similarity, minus a penalty
for the negated concepts (their text similarity, and the tagger's evidence
where a tag means them), plus a bonus for the wanted concepts a tag means
(docs/queries.md), minus, for a description that wants no voice, a
penalty for what sounds like speech alone (plus, for one that asks for
speech alone). Which tags a phrase means is taglinks' job; a tag's
probability counts relative to its top over the library (`TagScale`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from .lexicon import lexicon
from .taglinks import (
    TagMatch,
    link_by_lexicon,
    link_by_text,
    link_tags,
    tag_meanings,
    unknown_words,
)

if TYPE_CHECKING:
    import numpy as np

    from .query import Clause, ParsedQuery

__all__ = [
    "COMBINE_FORMS",
    "EXPLAIN_TEXT_WIDTH",
    "SPEECH_MARGIN",
    "SPEECH_TEXT",
    "TOP_FLOOR",
    "TOP_QUANTILE",
    "ScoreTerms",
    "TagScale",
    "TextQuery",
    "attribute_phrases",
    "clip",
    "combine_scores",
    "contrasted",
    "describe",
    "leaves_speech_to_penalties",
    "negated_phrases",
    "negates_voice",
    "quoted",
    "speech_penalty",
    "tag_evidence",
    "wants_speech_alone",
    "wants_voice",
    "whole_vector",
]

COMBINE_FORMS = ("max", "sum", "mean")


# --------------------------------------------------------------------------
# What a negated concept is measured by
# --------------------------------------------------------------------------


def attribute_phrases(attribute: str) -> tuple[str, ...]:
    """The texts whose most similar one measures a negated attribute: the
    attribute, then its kinds ("without guitar" excludes a distorted guitar
    too; lexicon kinds_of).

    A model learns the words its captions use, and captions name the kind
    ("distorted guitar"), so the broader word's own embedding can miss its
    kinds (docs/queries.md).
    """
    return (attribute, *lexicon().kinds_of(attribute))


def whole_vector(vectors: np.ndarray) -> np.ndarray:
    """The whole description's vector from the embeddings of its
    `ParsedQuery.whole_texts` [k, D]: their mean direction, unit length
    (the first as it is when there is one)."""
    import numpy as np

    vectors = np.asarray(vectors, np.float32)
    if len(vectors) == 1:
        return vectors[0]
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def negated_phrases(parsed: ParsedQuery) -> list[str]:
    """Every text a query's penalty embeds, attribute by attribute in the
    order of `parsed.negated`, then the other gender's voice for each
    negated voice a gender narrows (`contrasted`; what TextQuery.build
    expects after the whole text)."""
    own = [p for a in parsed.negated for p in attribute_phrases(a)]
    return own + [other for _, other in contrasted(parsed.negated)]


def contrasted(negated: Sequence[str]) -> list[tuple[int, str]]:
    """(index, the other gender's voice) for each negated voice a gender
    narrows ("no male vocals"). Its penalty is the part of it the other
    voice does not have: the text tower and the taggers hear "male vocals"
    in a woman's song almost as much as in a man's, and the plain penalty
    sank every voice (docs/queries.md)."""
    from .query import other_voice

    # both refused ("neither male nor female"): no voice at all is wanted
    return [
        (j, o)
        for j, a in enumerate(negated)
        if (o := other_voice(a)) is not None and o not in negated
    ]


# --------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------

# A tag's top over the library: the probability its most tagged items reach
# (this quantile of its distribution, so one odd item does not set it).
TOP_QUANTILE = 0.99
# A tag whose top stays below this has not fired on the library: its values
# there are noise, not a small scale, and are not stretched to count as one.
TOP_FLOOR = 0.05


class TagScale:
    """Each tag's top over a collection (the library), so that a probability
    reads as how near the collection's most tagged items an item is.

    Taggers' tags have their own scales ("vocals" reaches 1, a rare genre
    0.1): read relative to its top, a tag with a small scale counts as much
    as one with a large scale, and one weight fits all. Items the tag does
    not fire on stay near 0 (a percentile would spread them over the whole
    range). Chosen over percentiles and z-scores on the real-recording check
    set's choose part (docs/benchmarks.md, "Query phrases linked to tags").
    """

    def __init__(self, tops: np.ndarray) -> None:
        import numpy as np

        self.tops = np.maximum(np.asarray(tops, np.float32), TOP_FLOOR)  # [T]

    @classmethod
    def fit(cls, tags: np.ndarray) -> TagScale:
        """The scale of the tags of a collection [n_items, T]."""
        import numpy as np

        tags = np.asarray(tags, np.float32)
        if tags.ndim != 2 or not len(tags):
            return cls(np.ones(tags.shape[-1] if tags.ndim else 0, np.float32))
        return cls(np.quantile(tags, TOP_QUANTILE, axis=0))

    @property
    def width(self) -> int:
        return int(self.tops.shape[0])

    def relative(self, values: np.ndarray, tag: int) -> np.ndarray:
        """`values` of tag `tag` over the tag's top, in [0, 1]."""
        import numpy as np

        return np.clip(values / self.tops[tag], 0.0, 1.0).astype(np.float32)


def tag_evidence(
    match: TagMatch, tags: np.ndarray, scale: TagScale | None = None
) -> np.ndarray | None:
    """How present an attribute is in each item by the tagger, in [0, 1].

    The highest value relative to the tag's top (`scale`: over the library;
    the given rows when None) among the tags that mean it, averaged with one
    minus the highest among those that say it is absent when there are both;
    None when no tag speaks about the attribute. `tags` is [n_items, n_tags].
    """
    import numpy as np

    tags = np.asarray(tags, dtype=np.float32)
    if not (match.present or match.absent):
        return None
    if scale is None or scale.width != tags.shape[1]:
        scale = TagScale.fit(tags)

    def best(columns: list[int]) -> np.ndarray:
        return np.max([scale.relative(tags[:, c], c) for c in columns], axis=0)

    parts = []
    if match.present:
        parts.append(best(match.present))
    if match.absent:
        parts.append(1.0 - best(match.absent))
    return np.mean(parts, axis=0).astype(np.float32)


# The geometric mean reads each wanted attribute's evidence no lower than
# this: one with none at all leaves the bonus near 0, not undefined.
EVIDENCE_FLOOR = 1e-3


def combine_evidence(found: Sequence[np.ndarray], alternatives: bool) -> np.ndarray:
    """One [n_items] evidence from each wanted attribute's, in [0, 1].

    A description that names several attributes wants them all ("metal
    with female vocals"): their geometric mean, so an item strong in one
    and without the other ranks below one that has some of each (the
    arithmetic mean let a metal track without a voice, or a choir without
    metal, count as half of both). Alternatives ("piano or guitar") are
    each enough: the highest. Chosen on the real-recording check set's
    choose part and the synthetic valid split (docs/benchmarks.md, "Wanted
    attributes together")."""
    import numpy as np

    stacked = np.asarray(found, np.float32)
    if len(stacked) == 1:
        return stacked[0]
    if alternatives:
        return stacked.max(axis=0)
    logs = np.log(np.maximum(stacked, EVIDENCE_FLOOR))
    return np.exp(logs.mean(axis=0)).astype(np.float32)


# --------------------------------------------------------------------------
# Speech alone ranks after music
# --------------------------------------------------------------------------

# How much an item sounds like speech alone: its similarity to this text.
# Spoken prompts, talks and audiobooks reach far above music, songs
# included; speech over music spreads between the two (docs/benchmarks.md,
# "Speech under music queries").
SPEECH_TEXT = "spoken word"
# Above this similarity an item is heard as speech, and a description that
# asks for no voice pushes it down (steeply: search.DEFAULT_SPEECH_WEIGHT).
# Chosen with the weight on the real-recording check set's choose part for
# clap-default's embedding space; music stays below it there.
SPEECH_MARGIN = 0.6


def _names_voice(attributes: Sequence[str]) -> bool:
    """Whether one of `attributes`, or a word or two-word run of one, names
    a voice concept or a kind of one (query.voices)."""
    from .query import voices as voice_concepts

    voices = voice_concepts()
    for attribute in attributes:
        words = attribute.split()
        runs = [attribute, *words, *map(" ".join, pairwise(words))]
        for run in runs:
            concept = lexicon().concept(run)
            if concept is not None and concept.id in voices:
                return True
    return False


def wants_voice(parsed: ParsedQuery) -> bool:
    """Whether a description asks for a voice ("female vocals", "vocal
    jazz", "a man talking"), so speech is not pushed down."""
    return _names_voice(parsed.affirmed)


def negates_voice(parsed: ParsedQuery) -> bool:
    """Whether a description refuses a voice ("jazz without vocals", "no
    singing", "no talking")."""
    return _names_voice(parsed.negated)


def leaves_speech_to_penalties(parsed: ParsedQuery) -> bool:
    """Whether a negating description leaves speech to its penalties: it
    refuses a voice (that penalty decides), or it asks for nothing but an
    absence ("no drums", `clap-similar --without drums`, where the seeds
    say what is wanted, and they may be speech). One that asks for music
    and refuses an instrument ("calm music, no piano") does not: speech
    alone has no piano either, and the negated text would lift spoken
    prompts above the music (docs/benchmarks.md, "Speech under negated
    music queries")."""
    if not parsed.negated:
        return False
    return negates_voice(parsed) or not parsed.affirmative.strip()


def _speech_concepts() -> set[str]:
    """Speech and its kinds (lexicon ids)."""
    return {"speech", *lexicon().kinds_of("speech")}


def wants_speech_alone(parsed: ParsedQuery) -> bool:
    """Whether a plain description asks for speech and nothing else ("a man
    talking", "an interview", "spoken word"): every wanted attribute ends in
    speech and no word names music (the lexicon's `music_nouns`). "a man
    talking over piano" and "music for a podcast" ask for music too and are
    left to the text."""
    if parsed.negated or not parsed.affirmed:
        return False
    # "music for a podcast", "speech over music": music is asked for too
    words = re.findall(r"[^\W_]+", parsed.text.lower())
    if set(words) & set(lexicon().grammar["music_nouns"]):
        return False
    speech = _speech_concepts()
    for attribute in parsed.affirmed:
        concept = lexicon().concept(attribute.split()[-1])
        if concept is None or concept.id not in speech:
            return False
    return True


def refuses_speech(parsed: ParsedQuery) -> bool:
    """Whether a description negates speech itself or a kind of it ("no
    talking", "jazz without narration"): what is heard as speech goes down
    as in a plain description, besides the negated attribute's penalty."""
    speech = _speech_concepts()
    return any(lexicon().head(a) in speech for a in parsed.negated)


def speech_penalty(mat: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """[n_items] how far each item is heard as speech beyond SPEECH_MARGIN:
    max(0, sim(SPEECH_TEXT) - SPEECH_MARGIN), `speech` being the text's
    vector."""
    import numpy as np

    return np.maximum(mat @ speech - SPEECH_MARGIN, 0.0).astype(np.float32)


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------


def combine_scores(
    whole: np.ndarray,
    negated: np.ndarray | None,
    weight: float,
    form: str = "max",
) -> np.ndarray:
    """Ranking score: whole-query similarity minus a penalty for negations.

    score_i = whole_i - weight * P_i, with P_i = max_j negated[j, i] ("max":
    the most present unwanted attribute decides), sum_j ("sum": every
    unwanted attribute counts) or mean_j ("mean": "sum" that does not grow
    with the number of negations). `whole` is [n_items]; `negated` is
    [n_negated, n_items] (or [n_items] for one), or None for no negation.
    """
    import numpy as np

    if form not in COMBINE_FORMS:
        raise ValueError(
            f"unknown form {form!r}; choose one of {', '.join(COMBINE_FORMS)}"
        )
    weight = float(weight)
    if not np.isfinite(weight) or weight < 0:
        raise ValueError(f"negation weight must be a finite number >= 0, not {weight}")
    whole = np.asarray(whole)
    if whole.ndim != 1:
        raise ValueError(f"whole-query scores must be 1-D, got shape {whole.shape}")
    if negated is None:
        return whole.copy()
    negated = np.asarray(negated)
    if negated.ndim == 1:
        negated = negated[None, :]
    if negated.ndim != 2 or negated.shape[1] != whole.shape[0]:
        raise ValueError(
            f"negated scores must be [n_negated, {whole.shape[0]}], "
            f"got shape {negated.shape}"
        )
    if negated.shape[0] == 0:
        return whole.copy()
    penalty = {"max": np.max, "sum": np.sum, "mean": np.mean}[form](negated, axis=0)
    return (whole - weight * penalty).astype(np.result_type(whole, negated), copy=False)


@dataclass(frozen=True)
class ScoreTerms:
    """What a description's score adds up, per item ([n_items] each), before
    the weights (TextQuery.total): the whole text's similarity; each negated
    attribute's penalty ([n_negated, n_items]); the tagger's evidence for
    the wanted attributes together (`combine_evidence`); how far the item is
    heard as speech. None: the description has no such term."""

    whole: np.ndarray
    negated: np.ndarray | None
    evidence: np.ndarray | None
    speech: np.ndarray | None


@dataclass
class TextQuery:
    """An embedded description: the whole text and its negated attributes."""

    parsed: ParsedQuery
    vector: np.ndarray  # [D], the whole text as typed
    # [M, D]: per negated attribute, its phrases (attribute_phrases: the
    # attribute, then its kinds), in the order of `negated`; M may be 0.
    negated_vectors: np.ndarray
    weight: float
    # Per negated attribute, the bundle's tags that mean it (empty matches
    # for a bundle without tags), and the weight of their evidence.
    tag_matches: tuple[TagMatch, ...] = ()
    tag_weight: float = 0.0
    tag_names: tuple[str, ...] = ()
    # The same for the attributes the affirmative part names, and the weight
    # of their evidence together (`combine_evidence`) as a bonus.
    affirmed_matches: tuple[TagMatch, ...] = ()
    affirmed_tag_weight: float = 0.0
    # How many rows of `negated_vectors` each negated attribute has (left
    # empty: one each).
    phrase_counts: tuple[int, ...] = ()
    # Per negated voice a gender narrows (`contrasted`): its index in
    # `negated`, the other gender's voice, its vector [D] and tags; the
    # penalty less theirs.
    contrasts: tuple[tuple[int, str, np.ndarray, TagMatch], ...] = ()
    # SPEECH_TEXT's vector [D] and the weight of the speech term (None or
    # 0: none; a description that negates, or wants a voice among other
    # things, gets none: `build`).
    speech_vector: np.ndarray | None = None
    speech_weight: float = 0.0
    # True: the description asks for speech alone, and what sounds like it
    # is lifted by the same term instead (`wants_speech_alone`).
    speech_wanted: bool = False

    def __post_init__(self) -> None:
        if not self.phrase_counts:
            self.phrase_counts = (1,) * len(self.negated_vectors)

    @property
    def text(self) -> str:
        return self.parsed.text

    @property
    def negated(self) -> list[str]:
        return self.parsed.negated

    @classmethod
    def build(
        cls,
        parsed: ParsedQuery,
        vectors: np.ndarray,
        weight: float,
        tag_names: Sequence[str] = (),
        tag_weight: float = 0.0,
        affirmed_tag_weight: float = 0.0,
        bundle: Any = None,
        speech_vector: np.ndarray | None = None,
        speech_weight: float = 0.0,
    ) -> TextQuery:
        """From a parsed query and the embeddings of [whole text,
        *negated_phrases(parsed)] (or [whole text, *negated], one text per
        attribute, for a caller that does not widen them to their kinds):
        links, per negated and per affirmed attribute, the tags that mean it
        (`link_tags` with a bundle: the lexicon, else its text encoder;
        without one the lexicon alone, over the meanings of `tag_names`).
        `speech_vector` (SPEECH_TEXT's) and `speech_weight` push items heard
        as speech below music in a description that wants no voice, negated
        instruments or not, and above it in one that asks for speech alone:
        not in one that refuses a voice or asks for nothing but an absence
        (`leaves_speech_to_penalties`) unless it refuses speech itself
        (`refuses_speech`), nor in one that wants a voice along with other
        things."""
        names = tuple(tag_names)
        if bundle is not None and names:

            def link(attribute: str, wanted: bool) -> TagMatch:
                return link_tags(bundle, attribute, wanted)
        else:
            meanings = tag_meanings(names)

            def link(attribute: str, wanted: bool) -> TagMatch:
                return link_by_lexicon(attribute, meanings, wanted)

        matches = tuple(link(n, False) for n in parsed.negated)
        affirmed = tuple(link(a, True) for a in parsed.affirmed)
        # Read before the unknown words join the wanted attributes: "poetry
        # reading" asks for speech alone whatever "reading" links to. The
        # speech term scores a description that wants no voice, instruments
        # refused or not, and one that refuses speech (speech down), or
        # speech alone (speech up).
        speech_alone = wants_speech_alone(parsed)
        speech_counts = speech_alone or not (
            (leaves_speech_to_penalties(parsed) and not refuses_speech(parsed))
            or wants_voice(parsed)
        )
        rest = unknown_words(parsed) if bundle is not None and names else ""
        if rest:
            # Words the lexicon does not know ("thrash"): the text encoder
            # alone can link them, as one more wanted attribute.
            parsed = dataclasses.replace(parsed, affirmed=[*parsed.affirmed, rest])
            affirmed += (link_by_text(bundle, rest),)
        matches, affirmed = _without_contradictions(matches, affirmed)
        counts = tuple(len(attribute_phrases(n)) for n in parsed.negated)
        others = contrasted(parsed.negated)
        own = sum(counts)
        contrasts: tuple[tuple[int, str, np.ndarray, TagMatch], ...] = ()
        if len(vectors) - 1 == own + len(others):
            contrasts = tuple(
                (j, other, vectors[1 + own + c], link(other, False))
                for c, (j, other) in enumerate(others)
            )
        elif len(vectors) - 1 == len(counts):
            counts = (1,) * len(counts)
            own = len(counts)
        else:
            raise ValueError(
                f"{len(vectors)} vectors for {len(counts)} negated attributes "
                f"with {own} phrases and {len(others)} other voices: expected "
                "the whole text's and one per phrase and other voice (or one "
                "per attribute)"
            )
        return cls(
            parsed,
            vectors[0],
            vectors[1 : 1 + own],
            weight,
            matches,
            float(tag_weight),
            names,
            affirmed,
            float(affirmed_tag_weight),
            counts,
            contrasts,
            speech_vector if speech_counts else None,
            float(speech_weight),
            speech_alone,
        )

    @property
    def _penalty_tags(self) -> bool:
        return _tags_count(self.tag_weight, self.tag_matches)

    @property
    def _bonus_tags(self) -> bool:
        return _tags_count(self.affirmed_tag_weight, self.affirmed_matches)

    @property
    def _speech(self) -> bool:
        return self.speech_vector is not None and self.speech_weight > 0

    @property
    def uses_tags(self) -> bool:
        """Whether scoring reads the items' stored tag probabilities."""
        return self._penalty_tags or self._bonus_tags

    @property
    def tag_width(self) -> int:
        """How many tag probabilities per item scoring reads (0: none)."""
        return len(self.tag_names) if self.uses_tags else 0

    @property
    def rescores(self) -> bool:
        """Whether the score is more than the whole text's cosine (a KNN
        pass alone cannot rank by it)."""
        return self.reads_vectors or self._bonus_tags

    @property
    def reads_vectors(self) -> bool:
        """Whether the score reads the items' vectors beyond their cosine to
        `vector` (negated attributes, the speech penalty)."""
        return bool(len(self.negated_vectors)) or self._speech

    def score(
        self,
        mat: np.ndarray,
        tags: np.ndarray | None = None,
        scale: TagScale | None = None,
    ) -> np.ndarray:
        """sim(whole text) - weight * max over negated attributes of their
        penalty: text sim, plus tag_weight * the tagger's calibrated evidence
        where a tag means the attribute and `tags` ([n_items, T]) are given
        (docs/queries.md, form "max"); plus affirmed_tag_weight * the
        evidence for the affirmed attributes a tag means, together
        (`combine_evidence`); minus speech_weight
        x `speech_penalty` where it applies. `scale` is the tags'
        distribution over the library (TagScale); without it the given rows
        are the collection the tags are calibrated over."""
        return self.total(self.terms(mat, tags, scale))

    def terms(
        self,
        mat: np.ndarray,
        tags: np.ndarray | None = None,
        scale: TagScale | None = None,
    ) -> ScoreTerms:
        """The terms `score` adds up, per item, before their weights."""
        negated = self._phrase_max(mat) if len(self.negated_vectors) else None
        if tags is not None and self.uses_tags and scale is None:
            scale = TagScale.fit(tags)
        if negated is not None and tags is not None and self._penalty_tags:
            for j, match in enumerate(self.tag_matches):
                evidence = tag_evidence(match, tags, scale)
                if evidence is not None:
                    negated[j] += self.tag_weight * evidence
        if negated is not None:
            for j, _, vector, match in self.contrasts:
                negated[j] -= mat @ vector
                if tags is not None and self._penalty_tags:
                    evidence = tag_evidence(match, tags, scale)
                    if evidence is not None:
                        negated[j] -= self.tag_weight * evidence
        speech = None
        if self._speech:
            assert self.speech_vector is not None
            speech = speech_penalty(mat, self.speech_vector)
        return ScoreTerms(mat @ self.vector, negated, self._bonus(tags, scale), speech)

    def total(self, terms: ScoreTerms) -> np.ndarray:
        """The score of each item from its `terms` (docs/queries.md)."""
        scores = combine_scores(terms.whole, terms.negated, self.weight)
        if terms.evidence is not None:
            scores = self._plus_bonus(scores, terms.evidence)
        if terms.speech is not None:
            heard = self.speech_weight * terms.speech
            scores = scores + heard if self.speech_wanted else scores - heard
        return scores

    def describe_rows(
        self,
        mat: np.ndarray,
        tags: np.ndarray | None = None,
        scale: TagScale | None = None,
    ) -> list[str]:
        """`describe_terms` of the rows of `mat` (and `tags`, `scale` as for
        `score`)."""
        return self.describe_terms(self.terms(mat, tags, scale))

    def describe_terms(self, terms: ScoreTerms) -> list[str]:
        """Each item's score as the ranking line of `explain` adds it up,
        with its numbers: "0.6542 = sim 0.6120 - 0.5 * drums 0.0310 + 0.2 *
        evidence 0.9300"."""
        scores = self.total(terms)
        penalised = terms.negated is not None and len(terms.negated) > 0
        lines = []
        for i, score in enumerate(scores.tolist()):
            line = f"{score:.4f} = sim {float(terms.whole[i]):.4f}"
            if penalised and self.weight != 0:
                assert terms.negated is not None
                parts = [
                    f"{clip(attribute, 24)} {float(terms.negated[j, i]):.4f}"
                    for j, attribute in enumerate(self.negated)
                ]
                penalty = parts[0] if len(parts) == 1 else f"max({', '.join(parts)})"
                line += f" - {self.weight:g} * {penalty}"
            if terms.evidence is not None:
                line += (
                    f" + {self.affirmed_tag_weight:g} * evidence "
                    f"{float(terms.evidence[i]):.4f}"
                )
            if terms.speech is not None:
                sign = "+" if self.speech_wanted else "-"
                line += (
                    f" {sign} {self.speech_weight:g} * speech "
                    f"{float(terms.speech[i]):.4f}"
                )
            lines.append(line)
        return lines

    def _phrase_max(self, mat: np.ndarray) -> np.ndarray:
        """[n_negated, n_items]: per negated attribute, the best similarity
        of its phrases (itself or one of its kinds)."""
        import numpy as np

        sims = (mat @ self.negated_vectors.T).T
        starts = np.concatenate([[0], np.cumsum(self.phrase_counts)[:-1]])
        return np.maximum.reduceat(sims, starts, axis=0)

    def _bonus(
        self, tags: np.ndarray | None, scale: TagScale | None = None
    ) -> np.ndarray | None:
        """[n_items] the calibrated tagger evidence for the affirmed
        attributes a tag means, combined by `combine_evidence`; None
        without tags or such attributes."""
        if tags is None or not self._bonus_tags:
            return None
        return combine_evidence(
            self.wanted_evidence(tags, scale), self.parsed.alternatives
        )

    def wanted_evidence(
        self, tags: np.ndarray, scale: TagScale | None = None
    ) -> list[np.ndarray]:
        """Per affirmed attribute a tag means, its calibrated tagger
        evidence [n_items] (`tag_evidence`; `scale` as for `score`)."""
        if scale is None:
            scale = TagScale.fit(tags)
        found = (tag_evidence(m, tags, scale) for m in self.affirmed_matches)
        return [e for e in found if e is not None]

    def _plus_bonus(self, scores: np.ndarray, evidence: np.ndarray) -> np.ndarray:
        import numpy as np

        return (scores + self.affirmed_tag_weight * evidence).astype(np.float32)

    def with_bonus(
        self,
        scores: np.ndarray,
        tags: np.ndarray | None,
        scale: TagScale | None = None,
    ) -> np.ndarray:
        """`scores` plus affirmed_tag_weight x the calibrated tagger
        evidence for the affirmed attributes together (`combine_evidence`;
        unchanged without tags or such attributes); `scale` as for `score`."""
        evidence = self._bonus(tags, scale)
        return scores if evidence is None else self._plus_bonus(scores, evidence)

    def explain(self) -> str:
        """How the description was understood, for `beet clap --explain`."""
        scored_by = {}
        others = {j: other for j, other, _, _ in self.contrasts}
        for j, (attribute, match, count) in enumerate(
            zip(self.negated, self.tag_matches, self.phrase_counts, strict=False)
        ):
            sim = f"text sim({quoted(attribute)})"
            if count > 1:
                phrases = ", ".join(map(quoted, attribute_phrases(attribute)))
                sim = f"max text sim({phrases})"
            names = self._tag_list(match)
            if names and self.tag_weight > 0:
                scored_by[attribute] = f"{sim} + {self.tag_weight:g} x {names}"
            elif count > 1 or j in others:
                scored_by[attribute] = sim
            if j in others:
                scored_by[attribute] += (
                    f", less the same for {quoted(others[j])} (a voice is told "
                    "from the other gender's, not from none)"
                )
        bonus = {}
        if self.affirmed_tag_weight > 0:
            for attribute, match in zip(
                self.parsed.affirmed, self.affirmed_matches, strict=False
            ):
                if names := self._tag_list(match):
                    bonus[attribute] = names
        return describe(
            self.parsed,
            self.weight,
            scored_by=scored_by,
            bonus=bonus,
            bonus_weight=self.affirmed_tag_weight,
            bonus_form="max" if self.parsed.alternatives else "geomean",
            speech_weight=self.speech_weight if self._speech else 0.0,
            speech_wanted=self.speech_wanted,
        )

    def _tag_list(self, match: TagMatch) -> str:
        """ "tags vocal, singing, 1 - no vocals (by lexicon)": the tags linked
        and what linked them ("" when none is)."""
        names = [self.tag_names[i] for i in match.present]
        names += [f"1 - {self.tag_names[i]}" for i in match.absent]
        if not names:
            return ""
        return f"tags {', '.join(names)} (by {match.by})"


def _without_contradictions(
    negated: tuple[TagMatch, ...], affirmed: tuple[TagMatch, ...]
) -> tuple[tuple[TagMatch, ...], tuple[TagMatch, ...]]:
    """The tag links of a description, no tag counted both for and
    against it: "rock but not metal" wants rock, whose family's tags
    include MSD heavy metal, which "not metal" refuses. A tag the lexicon
    links to a negated attribute means it, so it leaves the wanted side
    (heavy metal is no evidence for this rock); one the text encoder
    links to a negated attribute is only near it, so it leaves the
    negated side ("jazz but not smooth jazz": "smooth jazz" is near MSD
    jazz, which the description wants)."""
    refused = {i for m in negated if m.by == "lexicon" for i in m.present}
    if refused:
        affirmed = tuple(
            type(m)([i for i in m.present if i not in refused], m.absent)
            for m in affirmed
        )
    wanted = {i for m in affirmed for i in m.present}
    if wanted:
        negated = tuple(
            type(m)([i for i in m.present if i not in wanted], m.absent)
            if m.by != "lexicon"
            else m
            for m in negated
        )
    return negated, affirmed


def _tags_count(weight: float, matches: Sequence[TagMatch]) -> bool:
    """Whether tag evidence weighted `weight` changes a score: some tag speaks
    about one of the attributes."""
    return weight > 0 and any(m.present or m.absent for m in matches)


# --------------------------------------------------------------------------
# Explanation
# --------------------------------------------------------------------------


# Characters of a typed text an explanation line quotes; the rest is
# counted, not shown, so a long description keeps its lines readable.
EXPLAIN_TEXT_WIDTH = 60


def _start(text: str, width: int) -> str:
    """The start of a long `text` an explanation shows: `width` characters,
    cut at a word where one ends in the second half."""
    start = text[:width]
    if " " in start[width // 2 :]:
        start = start.rsplit(" ", 1)[0]
    return start.rstrip() + "…"


def clip(text: str, width: int = EXPLAIN_TEXT_WIDTH) -> str:
    """`text` for an explanation line: whole when short, else its start
    with an ellipsis and the text's length in characters."""
    if len(text) <= width:
        return text
    return f"{_start(text, width)} ({len(text):,} characters)"


def quoted(text: str, width: int = EXPLAIN_TEXT_WIDTH) -> str:
    """`text` quoted as repr() quotes it, clipped as `clip` clips it."""
    if len(text) <= width:
        return repr(text)
    return f"{_start(text, width)!r} ({len(text):,} characters)"


def _counted(lines: Sequence[str]) -> list[str]:
    """Lines in their order, a repeated one shown once with its count."""
    counts: dict[str, int] = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    return [line if n == 1 else f"{line} (×{n})" for line, n in counts.items()]


def _clause_text(parsed: ParsedQuery, clause: Clause) -> str:
    """A clause's words without the lead-in punctuation (", no drums"),
    keeping "-drums"."""
    text = parsed.text[clause.start : clause.end]
    return re.sub(r"^(?:[\s,;:/–—]|-(?=\s))+", "", text).strip()


def _mean_of(texts: Sequence[str]) -> str:
    """ "mean('a', 'b')" of a whole query's texts, each clipped."""
    return f"mean({', '.join(map(quoted, texts))})"


def describe(
    parsed: ParsedQuery,
    weight: float,
    form: str = "max",
    *,
    whole: str | None = None,
    scored_by: Mapping[str, str] | None = None,
    bonus: Mapping[str, str] | None = None,
    bonus_weight: float = 0.0,
    bonus_form: str = "geomean",
    speech_weight: float = 0.0,
    speech_wanted: bool = False,
) -> str:
    """How the query was understood, for `beet clap --explain`.

    `whole` is the text the search embeds for the whole-query score
    (`parsed.whole_texts`, their mean, unless the search says otherwise);
    `scored_by` maps a negated attribute to how its penalty is measured
    (e.g. "tag 'no vocals'"), text similarity otherwise; `bonus` maps an
    affirmed attribute to the evidence whose `bonus_form` ("geomean", or
    "max" for alternatives: `combine_evidence`), times `bonus_weight`, is
    added to the score; `speech_weight` > 0 says items heard as speech are
    pushed below music (above it when `speech_wanted`).
    """
    if whole is not None:
        shown = quoted(whole)
    else:
        texts = parsed.whole_texts
        shown = quoted(texts[0]) if len(texts) == 1 else _mean_of(texts)
    lines = [
        f"query:       {quoted(parsed.text)}",
        *_counted(
            [
                f"  read {quoted(typed)} as {quoted(read)}"
                for typed, read in parsed.mended
            ]
        ),
        f"affirmative: {quoted(parsed.affirmative)}",
        *_counted(
            [
                f"  {quoted(_clause_text(parsed, c))} goes: the wanted voice says it"
                for c in parsed.clauses
                if c.kind == "covered"
            ]
        ),
    ]
    bonus = dict(bonus or {})
    tail = ""
    if bonus and bonus_weight > 0:
        for attribute, how in bonus.items():
            lines.append(
                f"  wanted {clip(attribute)}: evidence = {how}, w {bonus_weight:g}"
            )
        evidence = ", ".join(f"evidence({quoted(a)})" for a in bonus)
        tail = f" + {bonus_weight:g} * " + (
            evidence if len(bonus) == 1 else f"{bonus_form}({evidence})"
        )
    speech = ""
    if speech_weight > 0:
        where = "first" if speech_wanted else "after music"
        speech = (
            f"  speech: max(0, sim({SPEECH_TEXT!r}) - {SPEECH_MARGIN:g}),"
            f" w {speech_weight:g} (speech alone ranks {where})"
        )
        tail += f" {'+' if speech_wanted else '-'} {speech_weight:g} * speech"
    if not parsed.negated:
        lines.append("negated:     (none)")
        lines += [speech] if speech else []
        lines.append(f"ranking:     sim({shown}){tail}")
        return "\n".join(lines)
    lines.append(f"negated:     {', '.join(map(clip, parsed.negated))}")
    said_by = []
    for clause in (c for c in parsed.clauses if c.kind not in ("cancel", "covered")):
        how = "implies" if clause.kind == "implied" else "negates"
        # less another gender's voice than the wanted one (not negated)
        said = ", ".join(clip(a) for a in clause.attributes if a in parsed.negated)
        said_by.append(f"  {quoted(_clause_text(parsed, clause))} {how} {said}")
    lines += _counted(said_by)
    scored_by = scored_by or {}
    for attribute in parsed.negated:
        how = scored_by.get(attribute)
        lines.append(
            f"  {clip(attribute)}: "
            + (f"penalty = {how}" if how else f"text sim({quoted(attribute)})")
        )
    lines += [speech] if speech else []
    if weight == 0:
        lines.append(
            f"ranking:     sim({shown}){tail}  (negation weight 0: no penalty)"
        )
    else:
        # An attribute scored other than by text similarity shows as
        # penalty(...), spelt out on its own line above.
        terms = ", ".join(
            f"{'penalty' if a in scored_by else 'sim'}({quoted(a)})"
            for a in parsed.negated
        )
        penalty = terms if len(parsed.negated) == 1 else f"{form}({terms})"
        lines.append(f"ranking:     sim({shown}) - {weight:g} * {penalty}{tail}")
    return "\n".join(lines)
