"""Query parsing: a description -> the wanted text and the negated concepts.

A CLAP text tower trained without negation places "jazz without vocals" close
to audio with vocals, because the word "vocals" dominates the sentence. The
search therefore ranks by the whole query *and* subtracts a penalty for each
negated attribute (design.md, layer 2); this module only finds them. It is
pure (the lexicon and the standard library) so it can be tested exhaustively.

The parser is deliberately conservative. Song titles and artist names are full
of "no" and "not" ("No Woman No Cry", "No Doubt", "Not Fade Away"), so a cue
only counts when what follows it is a known concept (a part such as vocals or
drums, a genre, a mood) and the clause ends where a clause can end. When
unsure, the text is kept whole: a missed negation still ranks well thanks to
the model, a misparsed title ranks badly.

One parse reads at most `max_tokens` tokens (words and punctuation), as many
as a text tower reads: the rest of a description can change nothing the
model sees. Every step looks a bounded number of tokens around a position or
reuses what an earlier step found there, so the work grows with the tokens
read, not with their square.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from .lexicon import lexicon

__all__ = [
    "FILLER_WORDS",
    "MAX_TOKENS",
    "Clause",
    "ParsedQuery",
    "canonical_attribute",
    "parse_query",
]

# Tokens one parse reads when the caller names no text tower: no tower here
# reads more (BERT-style position tables end at 512).
MAX_TOKENS = 512


# Cue strengths. WEAK cues ("no", "not") open a negation only before a known
# concept that ends where a clause ends; STRONG cues also allow a
# prepositional tail ("without vocals from the 60s"); EXPLICIT cues
# (search-engine style "-drums", "exclude: x") accept any word at all.
_WEAK, _STRONG, _EXPLICIT = 1, 2, 3

_LEXICON = lexicon()
# Surface form -> (concept id, how the parser reads it); phrases apart.
_WORDS = {f: (c.id, c.role) for f, c in _LEXICON.forms.items() if " " not in f}
_PHRASES = {f: (c.id, c.role) for f, c in _LEXICON.forms.items() if " " in f}
_MAX_PHRASE = max(len(p.split()) for p in _PHRASES)
_STRENGTHS = {"weak": _WEAK, "strong": _STRONG, "explicit": _EXPLICIT}
_CUES = {words: _STRENGTHS[s] for words, s in _LEXICON.cue_phrases().items()}
_MAX_CUE = max(len(c) for c in _CUES)

_GRAMMAR = _LEXICON.grammar
_DETERMINERS = frozenset(_GRAMMAR["determiners"])
_LEAD_IN = frozenset(_GRAMMAR["lead_in"])
_LEAD_IN_VERBS = frozenset(_GRAMMAR["lead_in_verbs"])
_LEAD_IN_RELATIVES = frozenset(_GRAMMAR["lead_in_relatives"])
_LEAD_IN_PUNCT = frozenset(",;-–—/")
_RESUME = frozenset(_GRAMMAR["resume"])
_PREPOSITIONS = frozenset(_GRAMMAR["prepositions"])
_TAILS = tuple(tuple(t.split()) for t in _GRAMMAR["tails"])
_LIST_ALWAYS = frozenset({*_GRAMMAR["list_always"], "/"})
_LIST_DISTRIBUTIVE = frozenset({*_GRAMMAR["list_after_strong"], "&"})
_ALTERNATIVES = frozenset(_GRAMMAR["alternatives"])
_EDGE_WORDS = frozenset(_GRAMMAR["edge_words"])
# "only vocals", "drums alone": words that stress a part.
_FOCUS = frozenset(tuple(f.split()) for f in _GRAMMAR["focus"])
_FOCUS_AFTER = frozenset(tuple(f.split()) for f in _GRAMMAR["focus_after"])
# "female", "songs by women": a gender or range alone names a voice.
_LONE_VOICES = frozenset(_GRAMMAR["lone_voices"])
_LONE_VOICE_UNLESS = frozenset(_GRAMMAR["lone_voice_unless_before"])
_PLAYED_WITH_A_MUTE = frozenset(_GRAMMAR.get("played_with_a_mute", ()))
# "drums removed", "vocals taken out": longest first; a copula may come
# between ("drums are absent").
_POSTFIX = tuple(
    sorted((tuple(p.split()) for p in _LEXICON.cues["postfix"]), key=len, reverse=True)
)
_COPULAS = frozenset(_GRAMMAR["copulas"])
# "the drums have been removed": words between a part and its postfix cue.
_POSTFIX_GLUE = frozenset(_LEXICON.cues["postfix_glue"])
# Kinds a restated description negates with "not" ("not sad music"), as
# the trainer's captions do; parts and styles take "without", which the
# text tower reads better after a noun (docs/benchmarks.md).
_SAID_WITH_NOT = frozenset({"mood", "tempo", "energy", "quality", "era"})
# "not without drums": the two negations cancel.
_CANCELS = frozenset(_GRAMMAR["cancels"])
# "vocals: none", "drums = no": an answer after a colon or equals sign.
_ANSWERS = frozenset(_LEXICON.cues["answers"])
# Cues that are everyday words too: never an unfinished negation.
_QUIET = frozenset(tuple(c.split()) for c in _LEXICON.cues["quiet"])
_EDGE_PUNCT = ",;:.!?-–—/&|+"
_AFFIX_KINDS = _LEXICON.affixes
_AFFIX_RES = (
    ("non", re.compile(r"non-?(?P<stem>.+)")),
    ("no", re.compile(r"no-(?P<stem>.+)")),
    ("free", re.compile(r"(?P<stem>.+?)-?free")),
    ("less", re.compile(r"(?P<stem>.+?)-?less")),
)
# "sax-driven", "piano-led", "bass-heavy": the part is there, and prominent.
_FEATURING_RE = re.compile(
    r"(?P<stem>[^\W_]+(?:-[^\W_]+)*?)-(?:"
    + "|".join(map(re.escape, _GRAMMAR["featuring_suffixes"]))
    + r")"
)
# Kept in the wanted text but imply a negation: instrumental -> vocals,
# "backing track" -> vocals (by their words).
_IMPLIED = {
    tuple(form.split()): concept for form, concept in _LEXICON.implied_absence.items()
}
_MAX_IMPLIED = max(map(len, _IMPLIED), default=1)

FILLER_WORDS: frozenset[str] = frozenset(
    w
    for group in (
        *(" ".join(c) for c in _CUES),
        *_DETERMINERS,
        *_LEAD_IN,
        *_LEAD_IN_VERBS,
        *_LEAD_IN_RELATIVES,
        *_RESUME,
        *(" ".join(t) for t in _TAILS),
        *(" ".join(p) for p in _POSTFIX),
        *_ANSWERS,
        *_POSTFIX_GLUE,
        *_COPULAS,
        *(" ".join(f) for f in _FOCUS | _FOCUS_AFTER),
        *(f for c in _LEXICON.of_kind("filler") for f in c.forms),
        "non",
        "free",
        "less",
        "nor",
        "exclude",
    )
    for w in re.findall(r"[^\W_]+", group)
)
"""Words the parser may drop from the affirmative text without them being part
of a negated attribute: cue words, determiners, connectors, filler nouns."""


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    """One understood negation, with where it sits in the original text.

    `start:end` is the character span cut out of the affirmative text (it
    includes lead-in words such as "but"); for an implied negation
    ("instrumental") the span is the word itself and it stays in the
    affirmative text (`removed` is False). `sources[i]` is the text that
    `attributes[i]` was read from. A double negation ("not without") is a
    "cancel" clause: its words go and it negates nothing. A "covered" one
    refused only another gender's voice than the wanted one ("female
    vocals, no male vocals"): its words go, and its attributes are not
    negated.
    """

    kind: str  # "cue", "minus", "prefix", "suffix", "implied", "cancel", "covered"
    cue: str
    attributes: tuple[str, ...]
    sources: tuple[str, ...]
    start: int
    end: int
    removed: bool = True


# The voice concepts: what speaks or sings. A description that asks for one
# of them (or their kinds: choir) wants what speech sounds like
# (scoring.wants_voice), and "by a woman" after one narrows it
# (clauses._sung_by).
VOICE_CONCEPTS = ("speech", "vocals", "rap")
# The modifiers that narrow a voice by gender: "sung by men", and a tagger's
# tag labelled by one alone (taglinks: MagnaTagATune's "female", "man").
VOICE_GENDERS = ("female", "male")
# The voice ranges sung in one gender's voice ("tenor" -> male; grammar
# `female_voice_ranges`, `male_voice_ranges`).
VOICE_RANGES = {
    word: gender
    for gender in VOICE_GENDERS
    for word in _GRAMMAR.get(f"{gender}_voice_ranges", ())
}


@functools.cache
def voices() -> frozenset[str]:
    """VOICE_CONCEPTS and their kinds (the lexicon is fixed per process)."""
    kinds = (k for c in VOICE_CONCEPTS for k in lexicon().kinds_of(c))
    return frozenset((*VOICE_CONCEPTS, *kinds))


def gendered_voice(attribute: str) -> tuple[str, str] | None:
    """(gender, head) of a voice narrowed by gender ("female lead vocals"
    -> female, vocals); None for any other attribute."""
    words = attribute.split()
    head = lexicon().head(attribute)
    if len(words) < 2 or words[0] not in VOICE_GENDERS or head not in voices():
        return None
    return words[0], head


def voice_gender(attribute: str) -> str | None:
    """The gender a voice is sung in, named by a modifier anywhere before
    its part ("female lead vocals") or implied by its range ("tenor vocals",
    "soprano choir"; VOICE_RANGES); a named gender wins. None for any other
    attribute, or a voice no gender or range narrows."""
    head = lexicon().head(attribute)
    if head is None or head not in voices():
        return None
    modifiers = attribute.split()[: -len(head.split())]
    for word in modifiers:
        if word in VOICE_GENDERS:
            return word
    return next((VOICE_RANGES[w] for w in modifiers if w in VOICE_RANGES), None)


def voice_in_gender_words(attribute: str) -> str | None:
    """A voice a gender or range narrows, in its gender's words alone
    ("female lead vocals", "tenor vocals" -> "female vocals", "male
    vocals"; `voice_gender`); None for any other attribute."""
    gender = voice_gender(attribute)
    return None if gender is None else f"{gender} {lexicon().head(attribute)}"


def other_voice(attribute: str) -> str | None:
    """The same voice sung by the other gender ("male lead vocals" ->
    "female lead vocals"); None for an attribute no gender narrows."""
    if gendered_voice(attribute) is None:
        return None
    gender, *rest = attribute.split()
    other = next(g for g in VOICE_GENDERS if g != gender)
    return " ".join([other, *rest])


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into the wanted part and the negated attributes."""

    text: str  # as read: at most max_tokens tokens of the description
    affirmative: str
    negated: list[str] = field(default_factory=list)
    clauses: tuple[Clause, ...] = ()
    # Known attributes the affirmative part names ("guitar" in "guitar music
    # without vocals"), so search can ask a tagger about them too.
    affirmed: list[str] = field(default_factory=list)
    # The negation the text leaves unfinished ("jazz without" -> "without";
    # the whole text when it is nothing but cues), else None. Such a text
    # would be embedded as it stands, and the model reads "jazz without" as
    # jazz: the user meant to leave something out and would get no sign that
    # nothing was. "no" and "not" end plenty of titles ("Why Not"), so at
    # the end they count only after a comma ("ambient, no").
    dangling: str | None = None
    # A description that negates nothing, with each attribute it names in
    # the lexicon's spelling ("with lyrics" -> "with vocals"); "" otherwise.
    spelled: str = ""
    # For a plain description of one attribute that is an instrument family,
    # `spelled` once per kind of the family, the kind in its place ("calm
    # guitars" -> "calm acoustic guitar", "calm electric guitar"...).
    kind_readings: tuple[str, ...] = ()
    # For a plain description of one attribute that is a genre of a wider
    # one, `spelled` with each wider genre after it ("house music" ->
    # "house music, electronic").
    family_readings: tuple[str, ...] = ()
    # (as typed, as read) for each word read through a typo ("witout" ->
    # "without": grammar `typo_tolerant`).
    mended: tuple[tuple[str, str], ...] = ()
    # True when the wanted part offers its attributes as alternatives
    # ("piano or guitar", "either rock or metal": grammar `alternatives`,
    # quoted words aside), so either is enough.
    alternatives: bool = False

    @property
    def has_negation(self) -> bool:
        return bool(self.negated)

    @property
    def restated(self) -> str:
        """The text the whole-description similarity reads: the description
        as typed when it negates nothing (less a double negation's words:
        "not without drums" reads "drums"), else restated as the model learnt
        negation: the wanted part, then "without" and the negated
        attributes ("drumless jazz" -> "jazz without drums"), and "music"
        where nothing else is wanted ("no drums, no bass" -> "music without
        drums or bass": the text tower learnt captions that describe music,
        not fragments); qualities (moods, tempo, energy, eras) with "not", as
        the trainer negates them ("not sad" -> "not sad music", "no drums,
        not sad" -> "music without drums, not sad"). The parser knows more
        ways to say "without" (drumless, w/o, doesn't have) than the text
        tower was trained on;
        chosen on the realset's choose part (docs/benchmarks.md, "Other
        wordings", "More words, and instrument families read as their
        kinds")."""
        if not self.negated:
            # as typed, but for a double negation's words ("not without")
            return self.affirmative or self.text
        wanted = self.affirmative.rstrip(" .!?;:,")
        # qualities the way the trainer negates them ("not sad"), the rest
        # with "without"
        said_not = [n for n in self.negated if lexicon().kind_of(n) in _SAID_WITH_NOT]
        parts = [n for n in self.negated if n not in said_not]
        qualities = "not " + " or ".join(said_not)
        if not parts:
            return f"{wanted}, {qualities}" if wanted else f"{qualities} music"
        text = f"{wanted or 'music'} without " + " or ".join(parts)
        return f"{text}, {qualities}" if said_not else text

    @property
    def whole_texts(self) -> tuple[str, ...]:
        """The texts whose mean direction is the whole-description vector:
        `restated`; for a plain description whose attributes the lexicon
        spells otherwise, that spelling too ("with lyrics" and "with
        vocals"); and its `kind_readings` ("strings" is also "violin" and
        "cello") and `family_readings` ("house" is also "house,
        electronic"). The text tower learnt the lexicon's spellings, knows
        a family's members on real recordings better than the family word,
        and a wide genre better than the narrow ones it holds; the words as
        typed keep what the lexicon does not read. Chosen on the realset's
        choose part (docs/benchmarks.md, "Other wordings", "Instrument
        families read as their kinds", "Narrow genres")."""
        spelled = " ".join(self.spelled.split())
        texts = [self.restated]
        if spelled and spelled.lower() != " ".join(self.restated.split()).lower():
            texts.append(spelled)
        texts += (" ".join(k.split()) for k in self.kind_readings)
        texts += (" ".join(f.split()) for f in self.family_readings)
        return tuple(texts)


# --------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<quote>["“”«»])
  | (?P<word>w/out\b|w/o\b|[^\W_]+(?:['’\-&][^\W_]+)*)
  | (?P<minus>(?<![^\s(\[,;:])[-!](?=[^\W\d_]))
  | (?P<punct>[^\w\s])
    """,
    re.VERBOSE | re.IGNORECASE,
)


class _Token(NamedTuple):
    kind: str  # word, minus, punct, quote
    text: str
    low: str
    start: int
    end: int
    protected: bool  # inside "double quotes": taken literally

    @property
    def mended(self) -> bool:
        """Whether the word was read through a typo (`low` is not the text)."""
        return self.kind == "word" and self.low != _low(self.text)


def _low(text: str) -> str:
    return text.casefold().replace("’", "'")


def _one_slip(typed: str, word: str) -> bool:
    """Whether `typed` is `word` with one letter missing, extra or wrong, or
    two neighbours swapped."""
    if typed == word or abs(len(typed) - len(word)) > 1:
        return False
    if len(typed) == len(word):
        diff = [i for i, (a, b) in enumerate(zip(typed, word, strict=True)) if a != b]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and typed[diff[0]] == word[diff[1]]
            and typed[diff[1]] == word[diff[0]]
        )
    short, long = sorted((typed, word), key=len)
    i = next(
        (k for k, (a, b) in enumerate(zip(short, long, strict=False)) if a != b),
        len(short),
    )
    return short[i:] == long[i + 1 :]


# Every single word the lexicon knows: a typo is mended only into a word
# when it is none of these itself.
_KNOWN_WORDS = frozenset(
    w
    for phrase in (*_LEXICON.forms, *(" ".join(c) for c in _CUES), *FILLER_WORDS)
    for w in phrase.split()
)
_TYPO_TOLERANT = tuple(_GRAMMAR["typo_tolerant"])
_TYPO_KEEP = frozenset(_GRAMMAR["typo_keep"])


@functools.lru_cache(maxsize=4096)
def _mend(low: str) -> str:
    """A word as the parser reads it: one of the typo-tolerant words when it
    is one slip from it and no word the lexicon knows nor a word of its own
    (grammar `typo_keep`: "drugs"): "witout" -> without, "drms" -> drums."""
    if len(low) < 3 or low in _KNOWN_WORDS or low in _TYPO_KEEP:
        return low
    return next((w for w in _TYPO_TOLERANT if _one_slip(low, w)), low)


def _tokenize(text: str, limit: int) -> tuple[str, list[_Token], bool]:
    """The text as read (cut before token `limit`), its tokens, and whether
    it was cut (more followed)."""
    raw = []
    cut = False
    for m in _TOKEN_RE.finditer(text):
        if len(raw) == limit:
            text = text[: m.start()].rstrip()
            cut = True
            break
        raw.append((m.lastgroup or "punct", m.group(), m.start(), m.end()))
    quotes = [i for i, (kind, *_rest) in enumerate(raw) if kind == "quote"]
    protected: set[int] = set()
    # Pair quotes in order; an unpaired last quote protects nothing.
    for a, b in zip(quotes[::2], quotes[1::2], strict=False):
        protected.update(range(a + 1, b))
    tokens = [
        _Token(
            kind,
            tok,
            _mend(_low(tok)) if kind == "word" and i not in protected else _low(tok),
            start,
            end,
            i in protected,
        )
        for i, (kind, tok, start, end) in enumerate(raw)
    ]
    return text, tokens, cut


class _Unit(NamedTuple):
    canonical: str
    kind: str  # the parser role: part, genre, quality, mod, suffix
    length: int  # tokens


_DECADE_RE = re.compile(r"^(?:\d0s|\d{4}s)$")  # "no 80s synths"


def _lookup(words: tuple[str, ...]) -> tuple[str, str] | None:
    """(canonical, role) of a word sequence, trying hyphenated spellings too."""
    key = " ".join(words)
    if len(words) == 1:
        if key in _WORDS:
            return _WORDS[key]
        if _DECADE_RE.match(key):
            return key, "mod"
    if key in _PHRASES:
        return _PHRASES[key]
    spaced = key.replace("-", " ")
    if spaced != key and spaced in _PHRASES:
        return _PHRASES[spaced]
    if len(words) == 1 and (m := _FEATURING_RE.fullmatch(key)):
        found = _lookup((m.group("stem"),))
        if found is not None and _LEXICON.kind_of(found[0]) == "part":
            return found
        if found is not None and found[0] in VOICE_GENDERS:
            return f"{found[0]} vocals", "part"  # "female-fronted": her voice
    return None


def parse_query(text: str, max_tokens: int = MAX_TOKENS) -> ParsedQuery:
    """Split `text` into the affirmative part and the negated attributes,
    reading at most `max_tokens` tokens of it (a text tower's limit).

    >>> parse_query("jazz without vocals").negated
    ['vocals']
    >>> parse_query("No Woman No Cry").affirmative
    'No Woman No Cry'
    >>> parse_query("jazz without").dangling
    'without'
    """
    if not isinstance(text, str):
        raise TypeError(f"query must be a string, not {type(text).__name__}")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    from .clauses import Parser

    return Parser(text, max_tokens).parse()


def canonical_attribute(text: str) -> str | None:
    """The canonical name of `text` as one attribute ("singers" -> "vocals").

    None when `text` is not entirely a known attribute. Useful to match the
    negated attributes against a bundle's tag names.
    """
    from .clauses import Parser

    parser = Parser(text, MAX_TOKENS)
    if not parser.toks:
        return None
    attribute = parser.attribute(0)
    if attribute is None or attribute.source_end != parser.n:
        return None
    return attribute.canonical
