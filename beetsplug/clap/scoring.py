"""Scoring: a parsed query against item vectors and stored tags, and its explanation.

The score of an item is the whole description's similarity, minus a penalty
for the negated concepts (their text similarity, and the tagger's evidence
where a tag speaks about them), plus a small bonus for the wanted concepts a
tag speaks about (docs/queries.md). What a bundle's tags mean is read once
per set of tag names (`tag_meanings`), never at each search.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from .lexicon import lexicon

if TYPE_CHECKING:
    import numpy as np

    from .query import ParsedQuery

__all__ = [
    "COMBINE_FORMS",
    "TagMatch",
    "TagMeaning",
    "TextQuery",
    "attribute_phrases",
    "combine_scores",
    "describe",
    "match_head",
    "match_tags",
    "negated_phrases",
    "tag_evidence",
    "tag_meanings",
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


def negated_phrases(parsed: ParsedQuery) -> list[str]:
    """Every text a query's penalty embeds, attribute by attribute in the
    order of `parsed.negated` (what TextQuery.build expects after the whole
    text)."""
    return [p for a in parsed.negated for p in attribute_phrases(a)]


# --------------------------------------------------------------------------
# Tags
# --------------------------------------------------------------------------


class TagMeaning(NamedTuple):
    """What one tag says: the concept it names (None when it names none the
    lexicon knows) and the concepts it says are absent ("no vocals")."""

    concept: str | None
    absent: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def tag_meanings(tag_names: tuple[str, ...]) -> tuple[TagMeaning, ...]:
    """The meaning of each of a bundle's tags, read once per set of names.

    The tag names are read as the query parser reads a description: "male
    vocal" names "male vocals", "no vocals" and "instrumental" say vocals
    are absent. The one place that decides what a tag means.
    """
    from .query import canonical_attribute, parse_query

    return tuple(
        TagMeaning(canonical_attribute(name), tuple(parse_query(name).negated))
        for name in tag_names
    )


class TagMatch(NamedTuple):
    """Indices of tags that say an attribute is present, and absent."""

    present: list[int]
    absent: list[int]


def match_tags(attribute: str, tag_names: Sequence[str]) -> TagMatch:
    """Which of a bundle's tags speak about `attribute`.

    A tag is *present* evidence when it names the attribute or a kind of it
    ("vocal", "male vocal" for "vocals") and *absent* evidence when it is a
    negation of it ("no vocals", "instrumental"). Search can then use a tagger's
    probabilities, which know presence better than text similarity does.
    """
    present, absent = [], []
    for index, meaning in enumerate(tag_meanings(tuple(tag_names))):
        if attribute in meaning.absent:
            absent.append(index)
            continue
        concept = meaning.concept
        if concept is not None and (
            concept == attribute or concept.endswith(" " + attribute)
        ):
            present.append(index)
    return TagMatch(present, absent)


def match_head(attribute: str, tag_names: Sequence[str]) -> TagMatch:
    """The tags that speak about `attribute`, else about its head noun: no
    tag says "calm piano" or "hip hop drums", but "piano" and "drums" do
    (empty when no tag speaks about any of its endings)."""
    words = attribute.split()
    for start in range(len(words)):
        match = match_tags(" ".join(words[start:]), tag_names)
        if match.present or match.absent:
            return match
    return TagMatch([], [])


def tag_evidence(match: TagMatch, tags: np.ndarray) -> np.ndarray | None:
    """How present an attribute is in each item by the tagger, in [0, 1].

    The highest probability among the tags that name it, averaged with one
    minus the highest among those that negate it when there are both; None
    when no tag speaks about the attribute. `tags` is [n_items, n_tags].
    """
    import numpy as np

    tags = np.asarray(tags, dtype=np.float32)
    parts = []
    if match.present:
        parts.append(tags[:, match.present].max(axis=1))
    if match.absent:
        parts.append(1.0 - tags[:, match.absent].max(axis=1))
    if not parts:
        return None
    return np.mean(parts, axis=0).astype(np.float32)


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


@dataclass
class TextQuery:
    """An embedded description: the whole text and its negated attributes."""

    parsed: ParsedQuery
    vector: np.ndarray  # [D], the whole text as typed
    # [M, D]: per negated attribute, its phrases (attribute_phrases: the
    # attribute, then its kinds), in the order of `negated`; M may be 0.
    negated_vectors: np.ndarray
    weight: float
    # Per negated attribute, the bundle's tags that speak about it (empty
    # matches for a bundle without tags), and the weight of their evidence.
    tag_matches: tuple[TagMatch, ...] = ()
    tag_weight: float = 0.0
    tag_names: tuple[str, ...] = ()
    # The same for the attributes the affirmative part names, and the weight
    # of their mean evidence as a bonus.
    affirmed_matches: tuple[TagMatch, ...] = ()
    affirmed_tag_weight: float = 0.0
    # How many rows of `negated_vectors` each negated attribute has (left
    # empty: one each).
    phrase_counts: tuple[int, ...] = ()

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
    ) -> TextQuery:
        """From a parsed query and the embeddings of [whole text,
        *negated_phrases(parsed)] (or [whole text, *negated], one text per
        attribute, for a caller that does not widen them to their kinds):
        finds, per negated and per affirmed attribute, the tags that speak
        about it."""
        names = tuple(tag_names)
        matches = tuple(match_tags(n, names) for n in parsed.negated)
        affirmed = tuple(match_head(a, names) for a in parsed.affirmed)
        counts = tuple(len(attribute_phrases(n)) for n in parsed.negated)
        if len(vectors) - 1 != sum(counts):
            if len(vectors) - 1 != len(counts):
                raise ValueError(
                    f"{len(vectors)} vectors for {len(counts)} negated attributes "
                    f"with {sum(counts)} phrases: expected the whole text's and "
                    "one per phrase (or per attribute)"
                )
            counts = (1,) * len(counts)
        return cls(
            parsed,
            vectors[0],
            vectors[1:],
            weight,
            matches,
            float(tag_weight),
            names,
            affirmed,
            float(affirmed_tag_weight),
            counts,
        )

    @property
    def _penalty_tags(self) -> bool:
        return _tags_count(self.tag_weight, self.tag_matches)

    @property
    def _bonus_tags(self) -> bool:
        return _tags_count(self.affirmed_tag_weight, self.affirmed_matches)

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
        return bool(len(self.negated_vectors)) or self._bonus_tags

    def score(self, mat: np.ndarray, tags: np.ndarray | None = None) -> np.ndarray:
        """sim(whole text) - weight * max over negated attributes of their
        penalty: text sim, plus tag_weight * the tagger's evidence where a tag
        speaks about the attribute and `tags` ([n_items, T]) are given
        (docs/queries.md, form "max"); plus affirmed_tag_weight * the mean
        evidence for the affirmed attributes a tag speaks about."""
        negated = self._phrase_max(mat) if len(self.negated_vectors) else None
        if negated is not None and tags is not None and self._penalty_tags:
            for j, match in enumerate(self.tag_matches):
                evidence = tag_evidence(match, tags)
                if evidence is not None:
                    negated[j] += self.tag_weight * evidence
        return self.with_bonus(
            combine_scores(mat @ self.vector, negated, self.weight), tags
        )

    def _phrase_max(self, mat: np.ndarray) -> np.ndarray:
        """[n_negated, n_items]: per negated attribute, the best similarity
        of its phrases (itself or one of its kinds)."""
        import numpy as np

        sims = (mat @ self.negated_vectors.T).T
        starts = np.concatenate([[0], np.cumsum(self.phrase_counts)[:-1]])
        return np.maximum.reduceat(sims, starts, axis=0)

    def with_bonus(self, scores: np.ndarray, tags: np.ndarray | None) -> np.ndarray:
        """`scores` plus affirmed_tag_weight x the mean tagger evidence for
        the affirmed attributes (unchanged without tags or such attributes)."""
        import numpy as np

        if tags is None or not self._bonus_tags:
            return scores
        found = [tag_evidence(m, tags) for m in self.affirmed_matches]
        bonus = np.mean([e for e in found if e is not None], axis=0)
        return (scores + self.affirmed_tag_weight * bonus).astype(np.float32)

    def explain(self) -> str:
        """How the description was understood, for `beet clap --explain`."""
        scored_by = {}
        for attribute, match, count in zip(
            self.negated, self.tag_matches, self.phrase_counts, strict=False
        ):
            sim = f"text sim({attribute!r})"
            if count > 1:
                phrases = ", ".join(map(repr, attribute_phrases(attribute)))
                sim = f"max text sim({phrases})"
            names = self._tag_list(match)
            if names and self.tag_weight > 0:
                scored_by[attribute] = f"{sim} + {self.tag_weight:g} x tagger [{names}]"
            elif count > 1:
                scored_by[attribute] = sim
        bonus = {}
        if self.affirmed_tag_weight > 0:
            for attribute, match in zip(
                self.parsed.affirmed, self.affirmed_matches, strict=False
            ):
                if names := self._tag_list(match):
                    bonus[attribute] = f"tagger [{names}]"
        return describe(
            self.parsed,
            self.weight,
            scored_by=scored_by,
            bonus=bonus,
            bonus_weight=self.affirmed_tag_weight,
        )

    def _tag_list(self, match: TagMatch) -> str:
        names = [repr(self.tag_names[i]) for i in match.present]
        names += [f"1 - {self.tag_names[i]!r}" for i in match.absent]
        return ", ".join(names)


def _tags_count(weight: float, matches: Sequence[TagMatch]) -> bool:
    """Whether tag evidence weighted `weight` changes a score: some tag speaks
    about one of the attributes."""
    return weight > 0 and any(m.present or m.absent for m in matches)


# --------------------------------------------------------------------------
# Explanation
# --------------------------------------------------------------------------


def describe(
    parsed: ParsedQuery,
    weight: float,
    form: str = "max",
    *,
    whole: str | None = None,
    scored_by: Mapping[str, str] | None = None,
    bonus: Mapping[str, str] | None = None,
    bonus_weight: float = 0.0,
) -> str:
    """How the query was understood, for `beet clap --explain`.

    `whole` is the text the search embeds for the whole-query score (the
    original text unless the search says otherwise); `scored_by` maps a
    negated attribute to how its penalty is measured (e.g. "tag 'no vocals'"),
    text similarity otherwise; `bonus` maps an affirmed attribute to the
    evidence whose mean, times `bonus_weight`, is added to the score.
    """
    whole = parsed.text if whole is None else whole
    lines = [
        f"query:       {parsed.text!r}",
        f"affirmative: {parsed.affirmative!r}",
    ]
    bonus = dict(bonus or {})
    bonus_term = ""
    if bonus and bonus_weight > 0:
        for attribute, how in bonus.items():
            lines.append(f"  wanted {attribute}: evidence = {how}")
        evidence = ", ".join(f"evidence({a!r})" for a in bonus)
        bonus_term = f" + {bonus_weight:g} * " + (
            evidence if len(bonus) == 1 else f"mean({evidence})"
        )
    if not parsed.negated:
        lines.append("negated:     (none)")
        lines.append(f"ranking:     sim({whole!r}){bonus_term}")
        return "\n".join(lines)
    lines.append(f"negated:     {', '.join(parsed.negated)}")
    for clause in parsed.clauses:
        # Without the lead-in punctuation (", no drums"), keeping "-drums".
        source = re.sub(
            r"^(?:[\s,;:/–—]|-(?=\s))+", "", parsed.text[clause.start : clause.end]
        ).strip()
        how = "implies" if clause.kind == "implied" else "negates"
        lines.append(f"  {source!r} {how} {', '.join(clause.attributes)}")
    scored_by = scored_by or {}
    for attribute in parsed.negated:
        how = scored_by.get(attribute)
        lines.append(
            f"  {attribute}: "
            + (f"penalty = {how}" if how else f"text sim({attribute!r})")
        )
    if weight == 0:
        lines.append(
            f"ranking:     sim({whole!r}){bonus_term}  (negation weight 0: no penalty)"
        )
    else:
        # An attribute scored other than by text similarity shows as
        # penalty(...), spelt out on its own line above.
        terms = ", ".join(
            f"{'penalty' if a in scored_by else 'sim'}({a!r})" for a in parsed.negated
        )
        penalty = terms if len(parsed.negated) == 1 else f"{form}({terms})"
        lines.append(
            f"ranking:     sim({whole!r}) - {weight:g} * {penalty}{bonus_term}"
        )
    return "\n".join(lines)
