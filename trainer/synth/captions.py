"""Labels -> LP-MusicCaps caption columns: tags, long and short captions, paraphrase.

Captions only say what the labels make true. Negations name only terms in
the clip's `absent` list (true negations); a present attribute is never
negated. Templates are varied with a per-clip seeded rng so that a model
cannot key on one sentence shape.
"""

from __future__ import annotations

import random

from beetsplug.clap.lexicon import lexicon
from trainer import vocab
from trainer.synth.styles import STYLE_SPECS

# How captions phrase the renderer's drum kit, voice and energy, and what
# they call a clip: the lexicon's captions section.
_CAPTIONS = lexicon().captions
KIT_WORDS: dict[str, tuple[str, ...]] = dict(_CAPTIONS["drum_kit"])
VOCAL_WORDS: dict[str, tuple[str, ...]] = dict(_CAPTIONS["vocal_part"])
ENERGY_WORDS: dict[str, tuple[str, ...]] = dict(_CAPTIONS["energy"])
STYLE_NOUNS: tuple[str, ...] = _CAPTIONS["style_nouns"]
_PLURAL = frozenset({"strings", "brass"})


def _with_article(term: str) -> str:
    if term in _PLURAL or term == "bass":
        return term
    return ("an " if term[0] in "aeiou" else "a ") + term


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def clip_tags(attrs: dict) -> list[str]:
    """The `tag` column: style, instruments (lead first), drums, vocals, tempo, mood,
    energy."""
    tags = [attrs["style"], *attrs["instruments"]]
    if attrs["drums"]:
        tags.append("drums")
    if attrs["vocals"]:
        tags.append("vocals")
    tags += [vocab.TEMPO_WORDS[attrs["tempo"]], attrs["mood"], attrs["energy"]]
    if attrs["ensemble"] == "solo":
        tags.append("solo")
    return tags


def _negation_terms(
    attrs: dict, absent: list[str], rng: random.Random, k: int
) -> list[str]:
    """Up to k absent terms worth saying: missing drums/vocals first, then
    instruments the style often has (so "rock, no electric guitar" says something)."""
    absent_set = set(absent)
    presence = [t for t in vocab.PRESENCE if t in absent_set]
    spec = STYLE_SPECS[attrs["style"]]
    typical = [t for t in (*spec.lead, *spec.chords, *spec.pads) if t in absent_set]
    others = [t for t in vocab.INSTRUMENTS if t in absent_set]
    chosen: list[str] = []
    for pool in (presence, typical, others):
        rng.shuffle(pool)
        for term in pool:
            if (
                len(chosen) < k
                and term not in chosen
                and (pool is not presence or rng.random() < 0.8)
            ):
                chosen.append(term)
    return chosen


def _negation_sentence(term: str, rng: random.Random) -> str:
    if term == "vocals":
        return rng.choice(
            (
                "It is instrumental, with no vocals.",
                "There are no vocals.",
                "No one sings or speaks: it is purely instrumental.",
            )
        )
    if term == "drums":
        return rng.choice(
            (
                "There are no drums.",
                "It is played without drums.",
                "No drums or percussion keep time.",
            )
        )
    return rng.choice(
        (
            f"There is no {term}.",
            f"It is played without any {term}.",
            f"No {term} is heard.",
        )
    )


def _negation_clause(term: str, rng: random.Random) -> str:
    if term == "vocals" and rng.random() < 0.5:
        return "no vocals"
    return rng.choice((f"no {term}", f"without {term}", f"without any {term}"))


def write_captions(
    attrs: dict, absent: list[str], rng: random.Random
) -> dict[str, str]:
    """The four caption columns for one clip."""
    style, tempo, mood, energy = (
        attrs["style"],
        attrs["tempo"],
        attrs["mood"],
        attrs["energy"],
    )
    instruments = [t for t in attrs["instruments"] if t != "choir"]
    lead = attrs["lead"] if attrs["lead"] in instruments else None
    others = [t for t in instruments if t != lead]
    solo = attrs["ensemble"] == "solo"
    bpm = round(attrs["tempo_bpm"])
    noun = rng.choice(STYLE_NOUNS)
    energy_word = rng.choice(ENERGY_WORDS[energy])
    drums_phrase = rng.choice(KIT_WORDS[attrs["drum_kit"]]) if attrs["drums"] else None
    vocal_phrase = (
        rng.choice(VOCAL_WORDS[attrs["vocal_kind"]]) if attrs["vocals"] else None
    )
    style_adj = f"{style} music" if rng.random() < 0.2 else style
    instrumental = "vocals" in absent and rng.random() < 0.4

    # caption_writing: several sentences, every present attribute named.
    opening = (
        f"This is {'an' if energy_word[0] in 'aeiou' else 'a'} {energy_word}, {mood} "
        f"{'instrumental ' if instrumental else ''}{style} {noun}"
        f" in {attrs['key']} {attrs['mode']}"
        f" at a {tempo} tempo of about {bpm} BPM."
    )
    if solo:
        body = f"It is a solo {lead} performance."
    elif lead:
        # Under a sung melody the lead instrument plays held counter-lines.
        role = (
            "plays counter-lines"
            if attrs["vocal_kind"] == "sung"
            else "carries the melody"
        )
        body = f"{_with_article(lead).capitalize()} {role}"
        if others:
            body += f" over {_join([_with_article(o) for o in others])}"
        body += "."
    else:
        body = (
            f"{_join([_with_article(o) for o in others]).capitalize()} play the music."
        )
    extras = []
    if drums_phrase:
        extras.append(
            f"The {rng.choice(('beat', 'rhythm', 'groove'))} is played on "
            f"{drums_phrase}."
        )
    if vocal_phrase:
        extras.append(f"It features {vocal_phrase}.")
        if attrs["vocal_kind"] == "choir":
            extras.append("A choir sings sustained harmonies.")
    neg_terms = (
        _negation_terms(attrs, absent, rng, rng.choice((1, 2)))
        if rng.random() < 0.6
        else []
    )
    if instrumental and "vocals" not in neg_terms:
        neg_terms = ["vocals", *neg_terms[:1]]
    writing = " ".join(
        [opening, body, *extras, *(_negation_sentence(t, rng) for t in neg_terms)]
    )

    # caption_summary: one short sentence naming style and instruments.
    parts = (
        instruments
        + (["drums"] if attrs["drums"] else [])
        + (["vocals"] if attrs["vocals"] else [])
    )
    article = "An" if mood[0] in "aeiou" else "A"
    summary = f"{article} {mood} {style} {noun} with {_join(parts)}"
    if rng.random() < 0.35:
        terms = _negation_terms(attrs, absent, rng, 1)
        summary += f", but {_negation_clause(terms[0], rng)}" if terms else ""
    summary += "."

    # caption_paraphrase: another ordering and wording.
    feel = f"{energy_word.capitalize()} and {mood}"
    what = (
        f"{style_adj}, solo {lead}"
        if solo
        else f"{style_adj} with {_join(instruments)}"
    )
    para = f"{feel} {what}"
    if drums_phrase:
        para += f", backed by {drums_phrase}"
    if vocal_phrase:
        para += f", featuring {vocal_phrase}"
    para += f"; {vocab.TEMPO_WORDS[tempo]}, around {bpm} BPM"
    if rng.random() < 0.35:
        terms = _negation_terms(attrs, absent, rng, 1)
        para += f", {_negation_clause(terms[0], rng)}" if terms else ""
    para += "."

    # caption_attribute_prediction: a tag list, sometimes with true negations.
    negated = (
        _negation_terms(attrs, absent, rng, rng.choice((1, 2)))
        if rng.random() < 0.5
        else []
    )
    attribute = vocab.compose_caption(clip_tags(attrs), negated, rng)
    return {
        "caption_writing": writing,
        "caption_summary": summary,
        "caption_paraphrase": para,
        "caption_attribute_prediction": attribute,
    }
