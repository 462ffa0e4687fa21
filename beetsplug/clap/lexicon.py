"""The concept lexicon: lexicon.yaml read once, with the lookups its readers need.

Every word list of the project lives in lexicon.yaml: the concepts of music
(an id, a kind, surface forms, broader families), the cue words of a
negation, the playlist namer's descriptors and the trainer's corpus labels.
The query parser, scoring, the trainer, the export and the playlist namer
read them through `lexicon()`, so a word added there is known everywhere at
once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "KINDS",
    "Concept",
    "Lexicon",
    "LexiconError",
    "lexicon",
    "load",
]

LEXICON_PATH = Path(__file__).with_name("lexicon.yaml")

# How the query parser reads each kind: a "part" can be absent, a "genre"
# keeps its own spelling when it narrows a part ("hip hop drums"), a
# "quality" names what is wanted (an era too: a tagger's "80s"), a "mod"
# only narrows ("male vocals") and a "suffix" adds nothing ("rock music").
KINDS: dict[str, str] = {
    "part": "part",
    "genre": "genre",
    "mood": "quality",
    "tempo": "quality",
    "energy": "quality",
    "quality": "quality",
    "era": "quality",
    "modifier": "mod",
    "filler": "suffix",
}
_FIELDS = frozenset({"forms", "broader", "within", "mentions", "absence_of"})
_CUE_STRENGTHS = ("weak", "strong", "explicit")
# The affixes that negate the word they join: non-vocal, no-drums,
# vocal-free, drumless (the parser's patterns are in query.py).
AFFIXES = ("non", "no", "free", "less")
_DESCRIPTOR_FACETS = ("genres", "moods", "instruments", "presence")


class LexiconError(ValueError):
    """lexicon.yaml does not hold what its readers rely on; one line."""


@dataclass(frozen=True)
class Concept:
    """One concept: its id (also its first surface form), kind and words."""

    id: str
    kind: str
    forms: tuple[str, ...]  # the id first
    broader: tuple[str, ...] = ()
    within: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    absence_of: str | None = None

    @property
    def role(self) -> str:
        """How the query parser reads it (KINDS)."""
        return KINDS[self.kind]


@dataclass(frozen=True)
class Lexicon:
    """The concepts in file order, their surface forms, cues and word sets."""

    concepts: Mapping[str, Concept]
    forms: Mapping[str, Concept]  # surface form -> its concept
    cues: Mapping[str, tuple[str, ...]]  # strength -> cue phrases
    affixes: Mapping[str, frozenset[str]]  # AFFIXES -> roles each negates
    grammar: Mapping[str, tuple[str, ...]]
    training: Mapping[str, tuple[str, ...]]
    corpus: Mapping[str, tuple[str, ...]]
    # Caption phrasings: a word list, or a mapping of label -> word list.
    captions: Mapping[str, Any]
    # Playlist-name words: genres, moods, instruments, presence -> concept ids.
    descriptors: Mapping[str, tuple[str, ...]]

    def concept(self, form: str) -> Concept | None:
        """The concept a surface form names, case and spacing as stored."""
        return self.forms.get(form)

    def of_kind(self, *kinds: str) -> tuple[Concept, ...]:
        return tuple(c for c in self.concepts.values() if c.kind in kinds)

    @functools.cached_property
    def _kinds_of(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for concept in self.concepts.values():
            for family in dict.fromkeys((*concept.broader, *concept.within)):
                out.setdefault(family, []).append(concept.id)
        return {family: tuple(kinds) for family, kinds in out.items()}

    def head(self, attribute: str) -> str | None:
        """The longest ending of `attribute` that is a concept ("male vocals"
        -> "vocals", "calm acoustic guitar" -> "acoustic guitar"); None when
        no ending of it is one."""
        words = attribute.split()
        for start in range(len(words)):
            ending = " ".join(words[start:])
            if ending in self.concepts:
                return ending
        return None

    def kind_of(self, attribute: str) -> str | None:
        """The kind of a concept, or of a compound attribute's head
        ("female vocals" -> part, "classic rock" -> genre); None when no
        ending of it is a concept."""
        head = self.head(attribute)
        return None if head is None else self.concepts[head].kind

    def kinds_of(self, concept_id: str) -> tuple[str, ...]:
        """What counts as one: "guitar" -> acoustic, electric, distorted
        guitar (the concepts naming it under broader or within)."""
        return self._kinds_of.get(concept_id, ())

    @functools.cached_property
    def implied_absence(self) -> dict[str, str]:
        """Surface forms that say a concept is absent on their own:
        {"instrumental": "vocals", "instrumentals": "vocals"}."""
        return {
            form: concept.absence_of
            for concept in self.concepts.values()
            if concept.absence_of
            for form in concept.forms
        }

    def cue_phrases(self) -> dict[tuple[str, ...], str]:
        """{cue words: strength}, auxiliary + verb cues spelt out as strong."""
        out = {
            tuple(phrase.split()): strength
            for strength in _CUE_STRENGTHS
            for phrase in self.cues[strength]
        }
        for aux in self.cues["negative_auxiliaries"]:
            for verb in self.cues["auxiliary_verbs"]:
                out[(*aux.split(), verb)] = "strong"
        return out


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.strip() == v and v for v in value
    ):
        raise LexiconError(f"{where}: expected a list of words, got {value!r}")
    return tuple(value)


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = data.get(name)
    if not isinstance(section, dict):
        raise LexiconError(f"lexicon: section {name!r} missing or not a mapping")
    return section


def _concept(kind: str, cid: Any, entry: Any) -> Concept:
    where = f"concepts.{kind}.{cid}"
    if not isinstance(cid, str) or not cid:
        raise LexiconError(f"{where}: a concept id must be a word")
    if entry is None or isinstance(entry, list):
        entry = {"forms": entry or []}
    if not isinstance(entry, dict) or set(entry) - _FIELDS:
        raise LexiconError(
            f"{where}: expected forms or a mapping of {', '.join(sorted(_FIELDS))}"
        )
    absence_of = entry.get("absence_of")
    if absence_of is not None and not isinstance(absence_of, str):
        raise LexiconError(f"{where}.absence_of: expected a concept id")
    return Concept(
        cid,
        kind,
        (cid, *_strings(entry.get("forms", []), f"{where}.forms")),
        _strings(entry.get("broader", []), f"{where}.broader"),
        _strings(entry.get("within", []), f"{where}.within"),
        _strings(entry.get("mentions", []), f"{where}.mentions"),
        absence_of,
    )


def _build(data: Any) -> Lexicon:
    if not isinstance(data, dict):
        raise LexiconError("lexicon: expected a mapping at the top")
    concepts: dict[str, Concept] = {}
    forms: dict[str, Concept] = {}
    for kind, table in _section(data, "concepts").items():
        if kind not in KINDS:
            raise LexiconError(
                f"concepts.{kind}: unknown kind; choose one of {', '.join(KINDS)}"
            )
        if not isinstance(table, dict):
            raise LexiconError(f"concepts.{kind}: expected a mapping of concepts")
        for cid, entry in table.items():
            concept = _concept(kind, cid, entry)
            if cid in concepts:
                raise LexiconError(f"concepts.{kind}.{cid}: concept listed twice")
            concepts[cid] = concept
            for form in concept.forms:
                if form in forms and forms[form] is not concept:
                    raise LexiconError(
                        f"concepts.{kind}.{cid}: form {form!r} already names "
                        f"{forms[form].id!r}"
                    )
                forms[form] = concept
    for concept in concepts.values():
        for ref in (*concept.broader, *concept.within, concept.absence_of):
            if ref is not None and ref not in concepts:
                raise LexiconError(
                    f"concepts.{concept.kind}.{concept.id}: {ref!r} is no concept"
                )
    cues_raw = _section(data, "cues")
    cues = {
        name: _strings(cues_raw.get(name), f"cues.{name}")
        for name in (
            *_CUE_STRENGTHS,
            "negative_auxiliaries",
            "auxiliary_verbs",
            "postfix",
            "answers",
            "postfix_glue",
            "quiet",
        )
    }
    known_cues = {c for strength in _CUE_STRENGTHS for c in cues[strength]}
    for quiet in cues["quiet"]:
        if quiet not in known_cues:
            raise LexiconError(f"cues.quiet: {quiet!r} is no cue")
    affix_raw = cues_raw.get("affixes")
    if not isinstance(affix_raw, dict) or set(affix_raw) != set(AFFIXES):
        raise LexiconError(f"cues.affixes: expected the kinds for {', '.join(AFFIXES)}")
    affixes = {
        affix: frozenset(
            KINDS.get(k, k) for k in _strings(kinds, f"cues.affixes.{affix}")
        )
        for affix, kinds in affix_raw.items()
    }
    grammar = {
        name: _strings(words, f"grammar.{name}")
        for name, words in _section(data, "grammar").items()
    }
    # A typo is read as one of these (query._mend): each must be one word
    # the lexicon reads, a concept's form or a cue's.
    cue_words = {w for phrases in cues.values() for p in phrases for w in p.split()}
    for word in grammar.get("typo_tolerant", ()):
        if not (word.isalpha() and len(word) >= 4) or not (
            word in forms or word in cue_words
        ):
            raise LexiconError(
                f"grammar.typo_tolerant: {word!r} is no single word the lexicon knows"
            )
    for name in ("lone_voices", "female_voice_ranges", "male_voice_ranges"):
        for word in grammar.get(name, ()):
            if word not in concepts or concepts[word].kind != "modifier":
                raise LexiconError(f"grammar.{name}: {word!r} is no modifier")
    for name in ("played_parts", "played_with_a_mute"):
        for word in grammar.get(name, ()):
            if word not in concepts or concepts[word].kind != "part":
                raise LexiconError(f"grammar.{name}: {word!r} is no part")
    training = {
        name: _strings(words, f"training.{name}")
        for name, words in _section(data, "training").items()
    }
    corpus = {
        name: _strings(words, f"corpus.{name}")
        for name, words in _section(data, "corpus").items()
    }
    for name, words in corpus.items():
        for word in words:
            if word not in concepts:
                raise LexiconError(f"corpus.{name}: {word!r} is no concept")
    captions = {
        name: (
            {
                str(label): _strings(words, f"captions.{name}.{label}")
                for label, words in value.items()
            }
            if isinstance(value, dict)
            else _strings(value, f"captions.{name}")
        )
        for name, value in _section(data, "captions").items()
    }
    descriptors = {
        name: _strings(words, f"descriptors.{name}")
        for name, words in _section(data, "descriptors").items()
    }
    if set(descriptors) != set(_DESCRIPTOR_FACETS):
        raise LexiconError(
            f"descriptors: expected {', '.join(_DESCRIPTOR_FACETS)}, "
            f"got {', '.join(descriptors) or 'nothing'}"
        )
    for name, words in descriptors.items():
        for word in words:
            if word not in concepts:
                raise LexiconError(f"descriptors.{name}: {word!r} is no concept")
    return Lexicon(
        concepts,
        forms,
        cues,
        affixes,
        grammar,
        training,
        corpus,
        captions,
        descriptors,
    )


def load(path: Path | str = LEXICON_PATH) -> Lexicon:
    """Read and check a lexicon file; LexiconError says what is wrong."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=loader)  # a safe loader: plain data only
    except (OSError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())  # YAML's messages span lines
        raise LexiconError(f"cannot read lexicon {path}: {reason}") from exc
    return _build(data)


@functools.cache
def lexicon() -> Lexicon:
    """The package's lexicon, read once per process."""
    return load()
