"""Text augmentation of the recipe: negation, stochastic tags, view dropout, TextSwap.

Every function takes an explicit `random.Random`, so one example's augmentation
is fixed by (seed, epoch, index) and a resumed run sees the same texts.

- Negation augmentation ("Towards Effective Negation Modeling in Joint
  Audio-Text Models for Music"): with probability p append true negations
  of attributes ABSENT from the clip ("..., no drums, not jazz"); build the
  half- and fully-negated variants of the clip's tags as hard negatives and
  as the partner of the dissimilarity loss.
- Stochastic text representation (Doh et al., "Toward Universal
  Text-to-Music Retrieval"): K of the L tags, K ~ U(1, L), shuffled.
- Augmented View Dropout and TextSwap (Manco et al., "Augment, Drop &
  Swap"): a second, sparser view of the caption; a caption with one
  attribute swapped for another of the same kind, as a hard negative.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from beetsplug.clap.lexicon import lexicon
from trainer import vocab
from trainer.config import AugmentConfig, Config, DataConfig
from trainer.data import Clip

# Words that make the following term absent, and those that may sit between
# them ("without any drums"): the lexicon's training section.
NEGATION_CUES: frozenset[str] = frozenset(lexicon().training["negation_words"])
_CUE_GLUE: frozenset[str] = frozenset(lexicon().training["glue"])
# Other words that reveal a term (the lexicon's `mentions`), so it is never
# claimed absent by mistake.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    c.id: c.mentions for c in lexicon().concepts.values() if c.mentions
}
# Kinds TextSwap exchanges. Presence words are left out: having drums does not
# exclude vocals, so "with drums" -> "with vocals" is often still true.
SWAP_KINDS: tuple[str, ...] = ("style", "instrument", "mood", "tempo", "energy")
NEGATIVE_KINDS: tuple[str, ...] = ("full", "half", "swap")
# Probe texts of the minimal-pair loss: short, like the queries people type;
# the negative probes are vocab.negation_phrase's ("no X", "without X", ...).
PAIR_PROBES_POSITIVE: tuple[str, ...] = (
    "{x}",
    "with {x}",
    "featuring {x}",
    "{x} playing",
    "some {x}",
)

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def mentions(text: str, term: str) -> bool:
    """Whether `text` says anything about `term` (prefix match on word stems).

    Deliberately generous ("vocalists" mentions "vocals", "guitar" mentions
    "electric guitar"): a term wrongly kept out of the absent list costs one
    augmentation, a term wrongly claimed absent teaches the model a lie.
    """
    words = _words(text)
    stems = [_stem(w) for w in _words(term) if len(w) >= 3 or len(_words(term)) == 1]
    stems += list(_SYNONYMS.get(term, ()))
    return any(w.startswith(s) for s in stems for w in words)


def absent_candidates(
    tags: Sequence[str], absent: Sequence[str] | None, evidence: str
) -> list[str]:
    """Terms that may be negated as absent from the clip.

    The `absent` column (synthetic corpus) is trusted; otherwise (MSD) the
    vocabulary's negatable terms that neither the tags nor any caption of the
    clip mention. Either way a term the clip's texts mention is dropped.
    """
    pool = list(absent) if absent is not None else list(vocab.NEGATABLE)
    return [t for t in pool if t not in tags and not mentions(evidence, t)]


def append_phrases(text: str, phrases: Sequence[str]) -> str:
    """Append clauses to a tag list or a sentence, keeping its final full stop."""
    if not phrases:
        return text
    stripped = text.rstrip()
    end = "." if stripped.endswith(".") else ""
    base = stripped.rstrip(".").rstrip(" ,")
    return f"{base}, {', '.join(phrases)}{end}" if base else ", ".join(phrases) + end


def negation_augment(
    text: str,
    candidates: Sequence[str],
    rng: random.Random,
    p: float,
    max_negations: int,
    word_prob: float = 0.0,
) -> str:
    """With probability `p`, append 1..max_negations negations of absent terms
    (each phrased by vocab.absence_phrase: "no vocals" or "instrumental")."""
    if not candidates or max_negations < 1 or rng.random() >= p:
        return text
    n = rng.randint(1, min(max_negations, len(candidates)))
    terms = rng.sample(list(candidates), n)
    return append_phrases(
        text, [vocab.absence_phrase(t, rng, word_prob) for t in terms]
    )


def states_absence(text: str, term: str) -> bool:
    """Whether `text` mentions `term` or says it is absent in a word of its own."""
    words = set(_words(text))
    return mentions(text, term) or any(
        w in words for w in vocab.ABSENCE_WORDS.get(term, ())
    )


def stochastic_tags(tags: Sequence[str], rng: random.Random) -> list[str]:
    """K of the L tags, K ~ U(1, L), in random order (Doh et al.)."""
    if not tags:
        return []
    return rng.sample(list(tags), rng.randint(1, len(tags)))


def _segments(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"[,;]", text.strip().rstrip(".")) if s.strip()]


def _bare(word: str) -> str:
    found = _words(word)
    return found[-1] if found else ""


def _word_units(text: str) -> list[str]:
    """Words, with each negation cue glued to the term it negates.

    Dropping "no" from "no drums" would turn a negation into its opposite, so
    a cue and its term are kept or dropped together.
    """
    words = text.strip().rstrip(".").split()
    units: list[str] = []
    i = 0
    while i < len(words):
        j = i
        if _bare(words[i]) in NEGATION_CUES:
            # Absorb further cues and glue words, then the negated term itself.
            while (
                j + 1 < len(words) and _bare(words[j + 1]) in NEGATION_CUES | _CUE_GLUE
            ):
                j += 1
            j = min(j + 1, len(words) - 1)
        units.append(" ".join(words[i : j + 1]))
        i = j + 1
    return units


def view_dropout(text: str, rng: random.Random, rate: float) -> str:
    """A sparser view: drop tags of a tag list, or words of a sentence.

    With two or more units at least one is dropped and at least one kept, so
    the view is strictly sparser and never empty; negations stay whole.
    """
    segments = _segments(text)
    # A tag list drops whole tags; a sentence drops words.
    tag_like = len(segments) > 1 and all(len(s.split()) <= 4 for s in segments)
    units, joiner = (segments, ", ") if tag_like else (_word_units(text), " ")
    if len(units) < 2:
        return text
    keep = [u for u in units if rng.random() >= rate]
    if len(keep) == len(units):
        keep.pop(rng.randrange(len(keep)))
    if not keep:
        keep = [rng.choice(units)]
    return joiner.join(keep)


# Longest terms first, so "electric guitar" wins over a bare "guitar".
def _terms_pattern(terms: Iterable[str]) -> re.Pattern[str]:
    """Any of `terms` as whole words, case-insensitive; longest first, so
    "electric guitar" wins over "guitar"."""
    alternatives = sorted(terms, key=len, reverse=True)
    return re.compile(
        r"\b(" + "|".join(map(re.escape, alternatives)) + r")\b", re.IGNORECASE
    )


_TERM_PATTERN = _terms_pattern(vocab.TERM_KIND)


def _negated_context(text: str, start: int) -> bool:
    before = _words(text[:start])[-3:]
    return any(w in NEGATION_CUES for w in before)


_HYPONYM_PATTERN = _terms_pattern(vocab.HYPERNYMS)


def hypernym_text(
    text: str, rng: random.Random, p: float, keep: Sequence[str] = ()
) -> str:
    """Say a family by a broader word ("distorted guitar" -> "electric guitar"
    or "guitar", "violin" -> "strings"), each affirmed mention with
    probability `p`, so "guitar" and "electric guitar" come to mean what they
    mean to people (vocab.HYPERNYMS). A negated mention is never widened ("no
    violin" is not "no strings" when a cello plays), nor a term in `keep` (a
    minimal pair's flipped attribute: its sibling may have the broader one).
    """
    if p <= 0:
        return text
    out, last = [], 0
    for match in _HYPONYM_PATTERN.finditer(text):
        term = match.group(1).lower()
        if term in keep or _negated_context(text, match.start()) or rng.random() >= p:
            continue
        out += [text[last : match.start()], rng.choice(vocab.HYPERNYMS[term])]
        last = match.end()
    return "".join(out) + text[last:]


def hypernym_absences(candidates: Sequence[str]) -> list[str]:
    """The broader words that are absent because every family they cover is
    ("guitar" when no acoustic, electric or distorted guitar plays)."""
    have = set(candidates)
    return [
        word
        for word, members in vocab.HYPERNYM_MEMBERS.items()
        if word not in have and all(m in have for m in members)
    ]


def text_swap(
    text: str,
    tags: Sequence[str],
    rng: random.Random,
    *,
    absent: Sequence[str] | None = None,
    evidence: str = "",
) -> str | None:
    """Swap one attribute of `text` for another of the same kind (TextSwap).

    Only an affirmed term is swapped (never the "drums" of "no drums"), and
    the replacement is neither a tag nor mentioned in the clip's texts, and is
    taken from the true-absent list when the corpus gives one for that kind.
    None when the text names no swappable attribute.
    """
    found = [
        m
        for m in _TERM_PATTERN.finditer(text)
        if vocab.kind_of(m.group(1).lower()) in SWAP_KINDS
        and not _negated_context(text, m.start())
    ]
    rng.shuffle(found)
    for match in found:
        term = match.group(1).lower()
        kind = vocab.kind_of(term)
        choices = [
            u
            for u in vocab.KINDS[kind]
            if u != term and u not in tags and not mentions(evidence + " " + text, u)
        ]
        if absent is not None:
            known = [u for u in choices if u in absent]
            choices = known or choices
        if choices:
            new = rng.choice(choices)
            return text[: match.start()] + new + text[match.end() :]
    return None


def negated_pair(
    tags: Sequence[str], rng: random.Random
) -> tuple[str | None, str | None]:
    """(half-negated, fully-negated) captions of `tags`, None where meaningless.

    A caption with no negatable tag has no negation (full would equal the
    original); with one negatable tag, half and full coincide.
    """
    original, half, full = vocab.negated_variants(list(tags), rng)
    full_out = None if full == original or not full else full
    half_out = None if half in (original, full) or not half else half
    return half_out, full_out


def negative_kinds(cfg: Config) -> tuple[str, ...]:
    """Which hard-negative texts the run needs, from the config switches."""
    kinds = []
    if cfg.augment.negated_negatives or cfg.loss.dissimilarity_weight > 0:
        kinds.append("full")  # the dissimilarity loss needs it even as no column
    if cfg.augment.negated_negatives:
        kinds.append("half")
    if cfg.augment.text_swap:
        kinds.append("swap")
    return tuple(kinds)


@dataclass
class PairProbe:
    """What the minimal-pair loss needs of one example of a pair."""

    group: str  # the base piece both renders share
    has_term: bool  # this render has the flipped attribute
    positive: str  # a short text naming the attribute
    negative: str | None  # a short text negating it (None: negation off)


@dataclass
class TextSample:
    """The texts of one training example."""

    positive: str
    view: str | None = None  # Augmented View Dropout's sparser second positive
    negatives: dict[str, str | None] = field(default_factory=dict)  # by NEGATIVE_KINDS
    pair: PairProbe | None = None
    # Vocabulary terms the clip is known to have / to lack (attribute loss).
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()


def pair_probe(
    clip: Clip, rng: random.Random, negation: bool, word_prob: float = 0.0
) -> PairProbe | None:
    """Probe texts for a minimal-pair clip, sometimes in a context both renders
    share ("jazz, no drums"), so the loss sees the attribute alone and in a
    phrase."""
    term = clip.pair_term
    if term is None or clip.group is None:
        return None
    shared = [t for t in clip.tags if t != term and vocab.kind_of(t) != "presence"]
    context = rng.choice(shared) if shared and rng.random() < 0.5 else None
    positive = rng.choice(PAIR_PROBES_POSITIVE).format(x=term)
    negative = vocab.absence_phrase(term, rng, word_prob) if negation else None
    if context is not None:
        # "jazz with drums", "jazz, drums playing"
        sep = " " if positive.startswith("with") else ", "
        positive = f"{context}{sep}{positive}"
        if negative is not None:
            negative = f"{context}, {negative}"
    return PairProbe(clip.group, term in clip.tags, positive, negative)


class TextAugmenter:
    """Builds each training example's positive caption and hard negatives."""

    def __init__(
        self,
        augment: AugmentConfig,
        data: DataConfig,
        kinds: Sequence[str] = NEGATIVE_KINDS,
        pair_probes: bool = False,
    ) -> None:
        self.augment, self.data, self.kinds = augment, data, tuple(kinds)
        self.pair_probes = pair_probes

    def __call__(self, clip: Clip, rng: random.Random) -> TextSample:
        aug = self.augment
        evidence = " ".join([*clip.tags, *clip.captions.values()])
        use_tags = bool(clip.tags) and (
            not clip.captions or rng.random() < self.data.tag_caption_prob
        )
        if use_tags:
            tags = (
                stochastic_tags(clip.tags, rng)
                if aug.stochastic_text
                else list(clip.tags)
            )
            base = ", ".join(tags)
        else:
            base = clip.captions[rng.choice(sorted(clip.captions))]
            tags = list(clip.tags)
        term = clip.pair_term
        mention = (
            term is not None
            and aug.pair_mention_prob > 0
            and rng.random() < aug.pair_mention_prob
        )
        has_term = mention and term in clip.tags
        if has_term and not mentions(base, term):
            if use_tags:
                tags.insert(rng.randint(0, len(tags)), term)
                base = ", ".join(tags)
            else:
                base = append_phrases(base, [f"with {term}"])
        base = hypernym_text(base, rng, aug.hypernym_prob, keep=(term,) if term else ())
        positive = base
        if aug.negation:
            candidates = absent_candidates(clip.tags, clip.absent, evidence)
            if aug.hypernym_prob > 0:
                candidates += hypernym_absences(candidates)
            positive = negation_augment(
                base,
                candidates,
                rng,
                aug.negation_prob,
                aug.max_negations,
                aug.absence_word_prob,
            )
            # The without-clip of a minimal pair says what it lacks, so its
            # sibling (same batch under `data.group_pairs`) is a true negative.
            if mention and not has_term and not states_absence(positive, term):
                positive = append_phrases(
                    positive, [vocab.absence_phrase(term, rng, aug.absence_word_prob)]
                )
        negatives: dict[str, str | None] = dict.fromkeys(NEGATIVE_KINDS)
        if "full" in self.kinds or "half" in self.kinds:
            half, full = negated_pair(tags, rng)
            negatives["full"] = full if "full" in self.kinds else None
            negatives["half"] = half if "half" in self.kinds else None
        if "swap" in self.kinds and rng.random() < aug.text_swap_prob:
            negatives["swap"] = text_swap(
                positive, clip.tags, rng, absent=clip.absent, evidence=evidence
            )
        view = (
            view_dropout(positive, rng, aug.view_dropout_rate)
            if aug.view_dropout
            else None
        )
        pair = (
            pair_probe(clip, rng, aug.negation, aug.absence_word_prob)
            if self.pair_probes
            else None
        )
        return TextSample(
            positive=positive,
            view=view,
            negatives=negatives,
            pair=pair,
            present=tuple(t for t in clip.tags if t in ATTRIBUTE_TERMS),
            absent=tuple(t for t in clip.absent or () if t in ATTRIBUTE_TERMS),
        )


# The terms the attribute loss ranks by: what "A without B" names.
ATTRIBUTE_TERMS = frozenset((*vocab.STYLES, *vocab.INSTRUMENTS, *vocab.PRESENCE))
# Ties between equally balanced terms go alphabetically.
_ATTRIBUTE_ORDER = {t: i for i, t in enumerate(sorted(ATTRIBUTE_TERMS))}


def attribute_labels(
    samples: Sequence[TextSample], max_terms: int
) -> tuple[list[str], list[list[int]]]:
    """The terms a batch can rank by and, per term, each example's label
    (1 has it, 0 known to lack it, -1 unknown).

    A term needs at least two examples on each side; the most balanced
    terms come first (ties alphabetically), at most `max_terms`.
    """
    counts: dict[str, list[int]] = {}
    for s in samples:
        for t in s.present:
            counts.setdefault(t, [0, 0])[0] += 1
        for t in s.absent:
            counts.setdefault(t, [0, 0])[1] += 1
    usable = [t for t, (p, n) in counts.items() if p >= 2 and n >= 2]
    usable.sort(key=lambda t: (-min(counts[t]), _ATTRIBUTE_ORDER[t]))
    terms = usable[:max_terms]
    labels = [
        [1 if t in s.present else 0 if t in s.absent else -1 for s in samples]
        for t in terms
    ]
    return terms, labels


# --------------------------------------------------------------------------- batching


def tokenize(
    tokenizer: Any, texts: list[str], max_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) int64 [N, T] from the one tokenization
    (`trainer.models.text.tokenize`, the plugin's): padded to the longest
    text, cut at `max_tokens` (the tokenizer's own truncation, so the end
    token survives). Accepts a Hugging Face tokenizer or a
    `tokenizers.Tokenizer`.
    """
    from trainer.models.text import tokenize as text_tokenize

    feed = text_tokenize(tokenizer, texts, max_tokens)
    return feed["input_ids"], feed["attention_mask"]


class Collator:
    """Stacks audio and tokenises every text of a batch in one call.

    Text rows are laid out [positives (B) | views (B, if any) | negatives],
    with `negative_rows`/`negative_cols` saying which example and which kind
    (index into `negative_kinds`) each negative belongs to, so the model
    encodes all texts in one forward pass.
    """

    def __init__(
        self,
        tokenizer: Any,
        max_tokens: int,
        kinds: Sequence[str] = NEGATIVE_KINDS,
        attribute_terms: int = 0,
    ):
        self.tokenizer, self.max_tokens, self.kinds = (
            tokenizer,
            max_tokens,
            tuple(kinds),
        )
        self.attribute_terms = attribute_terms

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        texts_in: list[TextSample] = [
            s["text"] if isinstance(s["text"], TextSample) else TextSample(s["text"])
            for s in samples
        ]
        texts = [t.positive for t in texts_in]
        has_view = any(t.view is not None for t in texts_in)
        if has_view:
            texts += [t.view if t.view is not None else t.positive for t in texts_in]
        rows, cols = [], []
        for col, kind in enumerate(self.kinds):
            for row, t in enumerate(texts_in):
                neg = t.negatives.get(kind)
                if neg:
                    texts.append(neg)
                    rows.append(row)
                    cols.append(col)
        num_negatives = len(rows)
        # Minimal pairs with both renders in this batch: [with row, without
        # row, positive probe text row, negative probe text row or -1].
        members: dict[str, list[tuple[int, PairProbe]]] = {}
        for row, t in enumerate(texts_in):
            if t.pair is not None:
                members.setdefault(t.pair.group, []).append((row, t.pair))
        pairs = []
        for group in members.values():
            if len(group) != 2 or group[0][1].has_term == group[1][1].has_term:
                continue
            (w, probe), (o, _) = group if group[0][1].has_term else group[::-1]
            texts.append(probe.positive)
            pos_row, neg_row = len(texts) - 1, -1
            if probe.negative is not None:
                texts.append(probe.negative)
                neg_row = len(texts) - 1
            pairs.append([w, o, pos_row, neg_row])
        # Attribute loss: the bare terms as text rows, labels [K, B].
        terms, labels = (
            attribute_labels(texts_in, self.attribute_terms)
            if self.attribute_terms > 0
            else ([], [])
        )
        attribute_rows = list(range(len(texts), len(texts) + len(terms)))
        texts.extend(terms)
        ids, mask = tokenize(self.tokenizer, texts, self.max_tokens)
        return {
            "audio": torch.from_numpy(np.stack([s["audio"] for s in samples])),
            "input_ids": ids,
            "attention_mask": mask,
            "num_positive": len(samples),
            "has_view": has_view,
            "negative_kinds": self.kinds,
            "negative_rows": torch.tensor(rows, dtype=torch.long),
            "negative_cols": torch.tensor(cols, dtype=torch.long),
            "num_negatives": num_negatives,
            "pairs": torch.tensor(pairs, dtype=torch.long).reshape(-1, 4),
            "attribute_rows": torch.tensor(attribute_rows, dtype=torch.long),
            "attribute_labels": torch.tensor(labels, dtype=torch.long).reshape(
                len(terms), len(samples)
            ),
            "index": torch.tensor([s["index"] for s in samples], dtype=torch.long),
            "skipped": sum(s["skipped"] for s in samples),
            "skip_reasons": [r for s in samples for r in s.get("skip_reasons", [])],
            "texts": texts,
        }
