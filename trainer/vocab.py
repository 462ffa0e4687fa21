"""The trainer's view of the lexicon: corpus labels, their kinds, how absence is said.

The words themselves live in the plugin's lexicon (beetsplug/clap/
lexicon.yaml), so a term the corpus can label is a term augmentation can
negate or swap, a term the benchmark can judge, and a term the plugin's
query parser reads as the same concept.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from beetsplug.clap.lexicon import lexicon

_LEXICON = lexicon()
_CORPUS = _LEXICON.corpus

STYLES: tuple[str, ...] = _CORPUS["style"]
# Instrument families the corpus renders and the benchmark judges one by one.
INSTRUMENTS: tuple[str, ...] = _CORPUS["instrument"]
MOODS_MAJOR: tuple[str, ...] = _CORPUS["mood_major"]
MOODS_MINOR: tuple[str, ...] = _CORPUS["mood_minor"]
MOODS: tuple[str, ...] = MOODS_MAJOR + MOODS_MINOR
# The corpus' tempo labels ("slow") and the concept each one names.
TEMPO_WORDS: dict[str, str] = {t.split()[0]: t for t in _CORPUS["tempo"]}
TEMPOS: tuple[str, ...] = tuple(TEMPO_WORDS)
ENERGIES: tuple[str, ...] = _CORPUS["energy"]

# Presence attributes: the ones a listener negates ("without vocals").
PRESENCE: tuple[str, ...] = _CORPUS["presence"]

# Kind of each term, so TextSwap can replace a genre with a genre and an
# instrument with an instrument, never a genre with a tempo.
KINDS: dict[str, tuple[str, ...]] = {
    "style": STYLES,
    "instrument": INSTRUMENTS,
    "mood": MOODS,
    "tempo": tuple(TEMPO_WORDS.values()),
    "energy": ENERGIES,
    "presence": PRESENCE,
}

TERM_KIND: dict[str, str] = {
    term: kind for kind, terms in KINDS.items() for term in terms
}

# Terms whose negation is meaningful as "absent from the audio".
NEGATABLE: tuple[str, ...] = STYLES + INSTRUMENTS + PRESENCE

_NEGATION_TEMPLATES: dict[str, tuple[str, ...]] = {
    # "no jazz" reads oddly; styles are negated with "not".
    "style": ("not {}", "not {} music", "nothing like {}"),
    "instrument": ("no {}", "without {}", "without any {}"),
    "presence": ("no {}", "without {}", "without any {}"),
    "mood": ("not {}",),
    "tempo": ("not {}",),
    "energy": ("not {}",),
    "other": ("no {}", "without {}"),
}


# Broader words people use for a family (the lexicon's `broader`): a
# distorted guitar is an electric guitar and a guitar, a violin is strings.
# The corpus labels the family ("distorted guitar") and its captions name
# only that, so a model trained on them alone learns "electric guitar" as
# the clean patch and "guitar" as neither (docs/benchmarks.md). Training
# texts sometimes say the broader word instead (augment.hypernym_prob).
HYPERNYMS: dict[str, tuple[str, ...]] = {
    concept.id: concept.broader
    for concept in _LEXICON.concepts.values()
    if concept.broader
}

# A broader word that is no corpus label of its own is absent only when
# every family it covers is: "no guitar" is true of a clip without
# acoustic, electric and distorted guitar.
HYPERNYM_MEMBERS: dict[str, tuple[str, ...]] = {
    word: tuple(t for t, words in HYPERNYMS.items() if word in words)
    for word in dict.fromkeys(w for words in HYPERNYMS.values() for w in words)
    if word not in NEGATABLE
}


def _absence_words() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for concept in _LEXICON.concepts.values():
        if concept.absence_of:
            out.setdefault(concept.absence_of, []).append(concept.id)
    return {term: tuple(words) for term, words in out.items()}


# Words that say a presence term is absent without a negation word (the
# lexicon's `absence_of`): an "instrumental" is music without vocals, and
# that is how captions, tags and queries say it ("instrumental jazz"). A
# term missing here has none.
ABSENCE_WORDS: dict[str, tuple[str, ...]] = _absence_words()


def kind_of(term: str) -> str:
    return TERM_KIND.get(term, "other")


def negation_phrase(term: str, rng: random.Random | None = None) -> str:
    """Phrase the absence of `term`; deterministic (first template) without rng."""
    templates = _NEGATION_TEMPLATES[kind_of(term)]
    template = templates[0] if rng is None else rng.choice(templates)
    return template.format(term)


def absence_phrase(term: str, rng: random.Random, word_prob: float) -> str:
    """Phrase the absence of `term`: with probability `word_prob` as one of its
    ABSENCE_WORDS (where it has any), else as a negation phrase. Training texts
    use it so the model learns both ways people say it."""
    words = ABSENCE_WORDS.get(term, ())
    if words and rng.random() < word_prob:
        return rng.choice(words)
    return negation_phrase(term, rng)


def compose_caption(
    present: Sequence[str],
    negated: Sequence[str] = (),
    rng: random.Random | None = None,
) -> str:
    """A tag-list caption: present terms, then negation phrases of `negated`."""
    parts = list(present) + [negation_phrase(t, rng) for t in negated]
    return ", ".join(parts)


def negated_variants(
    tags: Sequence[str], rng: random.Random | None = None
) -> tuple[str, str, str]:
    """The (original, half-negated, fully-negated) captions of the negation protocols.

    "Half" negates the second half of the negatable tags (ceil(n/2) of them
    when there are several) and keeps the rest; "full" negates every
    negatable tag. Non-negatable tags (tempo, mood) stay as they are in all
    three, so the captions differ only in negation.
    """
    tags = list(tags)
    negatable = [t for t in tags if t in NEGATABLE]
    keep = [t for t in tags if t not in NEGATABLE]
    n_half = max(1, (len(negatable) + 1) // 2) if negatable else 0
    half_neg = negatable[len(negatable) - n_half :]
    half_pos = negatable[: len(negatable) - n_half]
    original = compose_caption(tags, (), rng)
    half = compose_caption(half_pos + keep, half_neg, rng)
    full = compose_caption(keep, negatable, rng)
    return original, half, full
