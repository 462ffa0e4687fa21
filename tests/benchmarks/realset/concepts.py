"""The concepts the realset judges: each one's text query, its labels, its tagger tags.

A concept's label for a clip is 1 (present), 0 (absent) or -1 (unknown),
read only from the clip's labels in labels.json (which cite their
sources); an unknown clip is left out of that concept's figures. Each
concept names the text a user would type, and for each pretrained tagger
the one tag that means the same thing ("tag parity"): `1-NAME` means the
tag's absence (1 - p), as MSD_musicnn's "instrumental" is for vocals.
Concepts no tagger names ("outside the tags") have no tag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Labels = dict[str, Any]

# Instruments of a family: a clip whose complete instrument list holds none
# of them has none of the family; "strings" is the bowed string section.
FAMILIES: dict[str, tuple[str, ...]] = {
    "strings": ("violin", "cello"),
    "brass": ("trumpet", "horn", "tuba", "trombone"),
}
# Instruments that could pass for a family member without being one (a
# plucked string is not the string section, but nor is it clearly absent).
NEAR: dict[str, tuple[str, ...]] = {
    "strings": ("harp", "banjo", "electric guitar"),
    "brass": ("saxophone",),
}


def presence(attr: str) -> Callable[[Labels], int]:
    """vocals / drums / guitar / piano straight from the labels."""

    def read(lab: Labels) -> int:
        value = lab.get(attr)
        return -1 if value is None else int(bool(value))

    return read


def instrument(name: str) -> Callable[[Labels], int]:
    """Present where the clip's instrument list names it (or, for a family,
    one of its members); absent where the list is complete and names none."""
    members = FAMILIES.get(name, (name,))
    near = NEAR.get(name, ())

    def read(lab: Labels) -> int:
        listed = set(lab.get("instruments") or ())
        if name == "piano" and lab.get("piano") is not None:
            return int(bool(lab["piano"]))
        if listed & set(members):
            return 1
        if not lab.get("instruments_complete"):
            return -1
        if listed & set(near):
            return -1
        if "guitar" in name and lab.get("guitar"):
            return -1  # a guitar of unstated kind
        if name in ("strings", "brass") and lab.get("guitar"):
            return -1 if name == "strings" else 0
        return 0

    return read


def gender(which: str) -> Callable[[Labels], int]:
    """A voice of this gender: absent where there is no voice or the other one."""

    def read(lab: Labels) -> int:
        if lab.get("vocals") is False:
            return 0
        if lab.get("vocals") is None:
            return -1
        g = lab.get("vocal_gender")
        return -1 if g is None else int(g == which)

    return read


def sung(lab: Labels) -> int:
    """A singing voice (1) against no voice or a speaking one (0)."""
    if lab.get("vocal_kind") == "sung":
        return 1
    if lab.get("vocals") is False or lab.get("speech") is True:
        return 0
    return -1


def spoken(lab: Labels) -> int:
    """Speech and nothing else (1) against music with no stated speech (0)."""
    if lab.get("speech") is True and lab.get("music") is False:
        return 1
    if lab.get("music") is True and lab.get("speech") is not True:
        return 0
    return -1


def music(lab: Labels) -> int:
    """Music (1) against speech alone (0); music mixed with speech is left out."""
    if lab.get("music") is False:
        return 0
    if lab.get("music") is True and lab.get("speech") is not True:
        return 1
    return -1


def genre(*names: str) -> Callable[[Labels], int]:
    """A stated genre family; absent where another genre is stated, or where
    the clip is speech alone (no music at all)."""

    def read(lab: Labels) -> int:
        stated = set(lab.get("genres") or ())
        if stated & set(names):
            return 1
        if stated or lab.get("music") is False:
            return 0
        return -1

    return read


def absent(read: Callable[[Labels], int]) -> Callable[[Labels], int]:
    """The negated concept: "music without X" is right for clips without X."""

    def flipped(lab: Labels) -> int:
        if lab.get("music") is False:
            return -1  # speech alone is not "music without X"
        v = read(lab)
        return -1 if v < 0 else 1 - v

    return flipped


@dataclass(frozen=True)
class Concept:
    """One thing a user may ask for, with how the set and the taggers know it."""

    id: str
    kind: str  # part, gender, instrument, genre, speech, outside
    query: str
    label: Callable[[Labels], int] = field(compare=False)
    tags: dict[str, str] = field(default_factory=dict, compare=False)

    def labels(self, clips: list[dict[str, Any]]) -> list[int]:
        return [self.label(c["labels"]) for c in clips]


CONCEPTS: list[Concept] = [
    Concept("vocals", "part", "vocals", presence("vocals"),
            {"MTT_musicnn": "vocals", "MSD_musicnn": "1-instrumental"}),
    Concept("female voice", "gender", "female vocals", gender("female"),
            {"MTT_musicnn": "female", "MSD_musicnn": "female vocalists"}),
    Concept("male voice", "gender", "male vocals", gender("male"),
            {"MTT_musicnn": "male", "MSD_musicnn": "male vocalists"}),
    Concept("singing", "part", "singing", sung, {"MTT_musicnn": "singing"}),
    Concept("drums", "part", "drums", presence("drums"), {"MTT_musicnn": "drums"}),
    Concept("guitar", "instrument", "guitar", presence("guitar"),
            {"MTT_musicnn": "guitar", "MSD_musicnn": "guitar"}),
    Concept("piano", "instrument", "piano", instrument("piano"),
            {"MTT_musicnn": "piano"}),
    Concept("violin", "instrument", "violin", instrument("violin"),
            {"MTT_musicnn": "violin"}),
    Concept("cello", "instrument", "cello", instrument("cello"),
            {"MTT_musicnn": "cello"}),
    Concept("strings", "instrument", "strings", instrument("strings"),
            {"MTT_musicnn": "strings"}),
    Concept("flute", "instrument", "flute", instrument("flute"),
            {"MTT_musicnn": "flute"}),
    Concept("harp", "instrument", "harp", instrument("harp"), {"MTT_musicnn": "harp"}),
    Concept("choir", "instrument", "choir", instrument("choir"),
            {"MTT_musicnn": "choir"}),
    Concept("electronic", "genre", "electronic music", genre("electronic"),
            {"MTT_musicnn": "electronic", "MSD_musicnn": "electronic"}),
    Concept("classical", "genre", "classical music", genre("classical"),
            {"MTT_musicnn": "classical"}),
    Concept("rock/metal", "genre", "metal", genre("metal", "rock"),
            {"MTT_musicnn": "metal", "MSD_musicnn": "metal"}),
    Concept("spoken word", "speech", "spoken word", spoken),
    Concept("music", "speech", "music", music),
    # outside the taggers' vocabularies
    Concept("electric guitar", "outside", "electric guitar",
            instrument("electric guitar")),
    Concept("saxophone", "outside", "saxophone", instrument("saxophone")),
    Concept("trumpet", "outside", "trumpet", instrument("trumpet")),
    Concept("brass", "outside", "brass", instrument("brass")),
    Concept("clarinet", "outside", "clarinet", instrument("clarinet")),
    Concept("organ", "outside", "organ", instrument("organ")),
    Concept("accordion", "outside", "accordion", instrument("accordion")),
]  # fmt: skip

# "music without X" against the tagger's absence of X (1 - p of the same tag).
NEGATED: list[Concept] = [
    Concept("without vocals", "negated", "music without vocals",
            absent(presence("vocals")),
            {"MTT_musicnn": "1-vocals", "MSD_musicnn": "instrumental"}),
    Concept("without drums", "negated", "music without drums",
            absent(presence("drums")), {"MTT_musicnn": "1-drums"}),
    Concept("without guitar", "negated", "music without guitar",
            absent(presence("guitar")),
            {"MTT_musicnn": "1-guitar", "MSD_musicnn": "1-guitar"}),
    Concept("without piano", "negated", "music without piano",
            absent(instrument("piano")), {"MTT_musicnn": "1-piano"}),
    Concept("without strings", "negated", "music without strings",
            absent(instrument("strings")), {"MTT_musicnn": "1-strings"}),
]  # fmt: skip

# Music queries under which speech alone should rank below every music clip.
MUSIC_QUERIES: tuple[str, ...] = (
    "music",
    "instrumental music",
    "electronic music",
    "classical music",
    "metal",
    "piano",
    "guitar",
    "drums",
)

# Music queries that negate an instrument, each with the NEGATED concept
# whose clips answer it: the music without it should rank above speech
# alone, which lacks the instrument too (docs/benchmarks.md, "Speech under
# negated music queries"; written on the choose part).
NEGATED_MUSIC_QUERIES: tuple[tuple[str, str], ...] = (
    ("music without piano", "without piano"),
    ("music without drums", "without drums"),
    ("music without guitar", "without guitar"),
    ("music without strings", "without strings"),
    ("calm music, no piano", "without piano"),
    ("jazz without drums", "without drums"),
    ("ambient, no drums", "without drums"),
    ("piano music without strings", "without strings"),
    ("electronic music without guitar", "without guitar"),
    ("classical music, no drums", "without drums"),
    ("guitar music without drums", "without drums"),
    ("rock without piano", "without piano"),
)

MIN_POSITIVES = 3  # a concept is scored in a part with at least 3 of each class


def tag_column(name: str, tag_names: list[str], probs: Any) -> Any | None:
    """The scores a tag spec means: p(tag), or 1 - p for `1-tag`; None if absent."""
    flip = name.startswith("1-")
    tag = name[2:] if flip else name
    if tag not in tag_names:
        return None
    col = probs[:, tag_names.index(tag)]
    return 1.0 - col if flip else col
