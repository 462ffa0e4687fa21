"""Query understanding: split a description into what is wanted and what is not.

A CLAP text tower trained without negation places "jazz without vocals" close
to audio with vocals, because the word "vocals" dominates the sentence. The
search therefore ranks by the whole query *and* subtracts a penalty for each
negated attribute (design.md, layer 2). This module only finds those
attributes; it is pure (stdlib only; numpy is imported inside
`combine_scores`) so it can be tested exhaustively and imported at `beet`
start-up for free.

The parser is deliberately conservative. Song titles and artist names are full
of "no" and "not" ("No Woman No Cry", "No Doubt", "Not Fade Away"), so a cue
only counts when what follows it is a known music attribute (a part such as
vocals or drums, a genre, a mood) and the clause ends where a clause can end.
When unsure, the text is kept whole: a missed negation still ranks well thanks
to the model, a misparsed title ranks badly.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "COMBINE_FORMS",
    "FILLER_WORDS",
    "Clause",
    "ParsedQuery",
    "canonical_attribute",
    "combine_scores",
    "dangling_cue",
    "describe",
    "match_head",
    "match_tags",
    "parse_query",
]

# --------------------------------------------------------------------------
# Vocabulary. Kinds: "part" (something audible that can be absent: voices,
# instruments, sound elements), "genre", "quality" (moods, tempo, texture;
# adjectives that can head a phrase or modify one), "mod" (only modifies:
# "male" vocals, "electric" guitar) and "suffix" (nouns that add nothing to
# the attribute: rock "music", vocal "parts").
# --------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated words: keeps long word lists readable."""
    return tuple(text.split())


def _entries(
    kind: str, table: Mapping[str, Iterable[str]]
) -> dict[str, tuple[str, str]]:
    """{surface form: (canonical, kind)} from {canonical: surface forms}."""
    out: dict[str, tuple[str, str]] = {}
    for canonical, forms in table.items():
        for form in (canonical, *forms):
            out[form] = (canonical, kind)
    return out


_PARTS: dict[str, tuple[str, ...]] = {
    "vocals": (
        "vocal",
        "voice",
        "voices",
        "singing",
        "singer",
        "singers",
        "vocalist",
        "vocalists",
        "vox",
        "lyrics",
        "lyric",
        "sung",
    ),
    "rap": ("rapping", "rapper", "rappers", "raps"),
    "choir": ("choirs", "choral", "chorale", "choruses"),
    "speech": ("talking", "spoken", "narration", "voiceover", "voice-over", "narrator"),
    "whistling": ("whistle", "whistles"),
    "drums": (
        "drum",
        "drumkit",
        "drumkits",
        "drumming",
        "drummer",
        "drummers",
        "beat",
        "beats",
    ),
    "percussion": ("percussive", "percussions"),
    "cymbals": ("cymbal",),
    "hi-hats": ("hi-hat", "hihat", "hihats"),
    "snare": ("snares",),
    "claps": ("handclaps", "handclap", "clap"),
    "tambourine": ("tambourines",),
    "congas": ("conga", "bongos", "bongo"),
    "tabla": ("tablas",),
    "timpani": (),
    "808": ("808s",),
    "bass": ("basses", "bassline", "basslines"),
    "guitar": ("guitars",),
    "riffs": ("riff",),
    "solos": ("solo", "soloing"),
    "piano": ("pianos",),
    "keyboards": ("keyboard", "keys"),
    "organ": ("organs",),
    "synthesizer": (
        "synth",
        "synths",
        "synthesizers",
        "synthesiser",
        "synthesisers",
    ),
    "harpsichord": ("harpsichords",),
    "accordion": ("accordions",),
    "harmonica": ("harmonicas",),
    "strings": ("string",),
    "violin": ("violins", "fiddle", "fiddles"),
    "viola": ("violas",),
    "cello": ("cellos", "celli"),
    "harp": ("harps",),
    "orchestra": ("orchestras", "orchestral"),
    "saxophone": ("saxophones", "sax", "saxes"),
    "trumpet": ("trumpets",),
    "trombone": ("trombones",),
    "horns": ("horn",),
    "brass": (),
    "tuba": ("tubas",),
    "flute": ("flutes",),
    "clarinet": ("clarinets",),
    "oboe": ("oboes",),
    "bassoon": ("bassoons",),
    "bagpipes": ("bagpipe",),
    "banjo": ("banjos",),
    "mandolin": ("mandolins",),
    "ukulele": ("ukuleles", "uke"),
    "sitar": ("sitars",),
    "marimba": ("marimbas",),
    "vibraphone": ("vibraphones", "vibes"),
    "xylophone": ("xylophones",),
    "glockenspiel": (),
    "bells": ("bell",),
    "instruments": ("instrument", "instrumentation"),
    "autotune": ("auto-tune",),
    "distortion": (),
    "reverb": (),
    "samples": ("sample", "sampling"),
    "noise": ("noises",),
    "static": (),
    "crackle": ("crackles",),
    "electronics": (),
    "sfx": (),
}

_GENRES: dict[str, tuple[str, ...]] = {
    "rock": (),
    "metal": (),
    "jazz": (),
    "pop": (),
    "blues": (),
    "classical": (),
    "electronic": ("electronica",),
    "ambient": (),
    "folk": (),
    "country": (),
    "hip hop": ("hip-hop", "hiphop"),
    "r&b": ("rnb",),
    "soul": (),
    "funk": (),
    "disco": (),
    "house": (),
    "techno": (),
    "trance": (),
    "dubstep": (),
    "drum and bass": ("dnb", "d&b", "drum'n'bass", "drumnbass"),
    "jungle": (),
    "edm": (),
    "reggae": (),
    "ska": (),
    "punk": (),
    "emo": (),
    "grunge": (),
    "indie": (),
    "gospel": (),
    "latin": (),
    "salsa": (),
    "samba": (),
    "flamenco": (),
    "tango": (),
    "bossa nova": ("bossa",),
    "opera": ("operatic",),
    "bluegrass": (),
    "bebop": ("bop",),
    "swing": (),
    "ragtime": (),
    "baroque": (),
    "soundtrack": ("soundtracks",),
    "shoegaze": (),
    "post-rock": (),
    "synthwave": (),
    "vaporwave": (),
    "industrial": (),
    "hardcore": (),
    "grindcore": (),
    "screamo": (),
    "trap": (),
    "drill": (),
    "grime": (),
    "garage": (),
    "dub": (),
    "dancehall": (),
    "reggaeton": (),
    "afrobeat": ("afrobeats",),
    "cumbia": (),
    "polka": (),
    "lo-fi": ("lofi",),
    "chillout": ("chill-out",),
    "downtempo": (),
    "trip hop": ("trip-hop", "triphop"),
    "idm": (),
    "glitch": (),
    "drone": (),
    "chiptune": ("8-bit",),
    "new age": (),
    "world music": (),
    "k-pop": ("kpop",),
    "j-pop": ("jpop",),
    "disney": (),
    "christmas": ("xmas",),
    "rock and roll": ("rock'n'roll", "rock-n-roll"),
    "psychedelic": ("psychedelia",),
    "prog": ("progressive",),
    "fusion": (),
    "minimalism": ("minimalist",),
    "experimental": ("avant-garde",),
    "dance": (),
}

_QUALITIES: dict[str, tuple[str, ...]] = dict.fromkeys(
    _words(
        "sad happy angry aggressive melancholic melancholy upbeat energetic calm "
        "relaxing relaxed chill mellow dark gloomy cheerful romantic epic "
        "dramatic intense loud quiet soft noisy harsh distorted fast slow heavy "
        "dreamy spooky scary creepy sentimental cheesy repetitive acoustic "
        "danceable groovy funky jazzy bluesy catchy mainstream commercial atonal "
        "dissonant minimal busy sparse atmospheric uplifting depressing boring "
        "lively peaceful tense eerie bright warm cold raw polished live moody "
        "uptempo medium instrumental"
    ),
    (),
) | {"mid-tempo": ("midtempo",), "up-tempo": ()}

_MODIFIERS: dict[str, tuple[str, ...]] = dict.fromkeys(
    _words(
        "male female lead backing electric clean deep sub upright double high low "
        "big prominent real vintage classic smooth hard modern old old-school "
        "heavy-handed human synthetic processed layered harmonized screamed "
        "growled shouted falsetto operatic-style"
    ),
    (),
)

_SUFFIXES: dict[str, tuple[str, ...]] = dict.fromkeys(
    _words(
        "music songs song tracks track sounds sound stuff parts part sections "
        "section elements element recordings recording style styles influences "
        "influence tunes tune vibes vibe"
    ),
    (),
)

# Multi-word attributes, matched before single words. The value is the
# canonical form; the trainer's vocabulary (trainer/vocab.py) maps to itself.
_PHRASES: dict[str, tuple[str, str]] = {
    "drum and bass": ("drum and bass", "genre"),
    "drum n bass": ("drum and bass", "genre"),
    "drum & bass": ("drum and bass", "genre"),
    "rock and roll": ("rock and roll", "genre"),
    "rock n roll": ("rock and roll", "genre"),
    "rock & roll": ("rock and roll", "genre"),
    "rhythm and blues": ("r&b", "genre"),
    "hip hop": ("hip hop", "genre"),
    "trip hop": ("trip hop", "genre"),
    "bossa nova": ("bossa nova", "genre"),
    "new age": ("new age", "genre"),
    "world music": ("world music", "genre"),
    "easy listening": ("easy listening", "genre"),
    "big band": ("big band", "genre"),
    "post rock": ("post-rock", "genre"),
    "lo fi": ("lo-fi", "genre"),
    "drum kit": ("drums", "part"),
    "drum kits": ("drums", "part"),
    "drum set": ("drums", "part"),
    "drum sets": ("drums", "part"),
    "drum machine": ("drum machine", "part"),
    "drum machines": ("drum machine", "part"),
    "drum solo": ("drum solos", "part"),
    "drum solos": ("drum solos", "part"),
    "kick drum": ("kick drum", "part"),
    "kick drums": ("kick drum", "part"),
    "hi hat": ("hi-hats", "part"),
    "hi hats": ("hi-hats", "part"),
    "hand claps": ("claps", "part"),
    "bass line": ("bass", "part"),
    "bass lines": ("bass", "part"),
    "bass guitar": ("bass", "part"),
    "bass guitars": ("bass", "part"),
    "double bass": ("double bass", "part"),
    "upright bass": ("double bass", "part"),
    "sub bass": ("sub bass", "part"),
    "guitar solo": ("guitar solos", "part"),
    "guitar solos": ("guitar solos", "part"),
    "electric guitar": ("electric guitar", "part"),
    "electric guitars": ("electric guitar", "part"),
    "acoustic guitar": ("acoustic guitar", "part"),
    "acoustic guitars": ("acoustic guitar", "part"),
    "distorted guitar": ("distorted guitar", "part"),
    "distorted guitars": ("distorted guitar", "part"),
    "power chords": ("power chords", "part"),
    "electric piano": ("electric piano", "part"),
    "synth lead": ("synth lead", "part"),
    "synth leads": ("synth lead", "part"),
    "synth pad": ("synth pad", "part"),
    "synth pads": ("synth pad", "part"),
    "string section": ("strings", "part"),
    "string sections": ("strings", "part"),
    "string quartet": ("string quartet", "part"),
    "brass section": ("brass", "part"),
    "horn section": ("horns", "part"),
    "spoken word": ("speech", "part"),
    "sound effects": ("sound effects", "part"),
    "auto tune": ("autotune", "part"),
    "vinyl crackle": ("crackle", "part"),
    "slow tempo": ("slow tempo", "quality"),
    "medium tempo": ("medium tempo", "quality"),
    "fast tempo": ("fast tempo", "quality"),
    "medium energy": ("medium energy", "quality"),
}

_WORDS: dict[str, tuple[str, str]] = {
    **_entries("suffix", _SUFFIXES),
    **_entries("mod", _MODIFIERS),
    **_entries("quality", _QUALITIES),
    **_entries("genre", _GENRES),
    **_entries("part", _PARTS),
}
# Multi-word genre spellings from _GENRES ("hip hop", "bossa nova") are
# phrases, not words.
for _form, _value in list(_WORDS.items()):
    if " " in _form:
        del _WORDS[_form]
        _PHRASES.setdefault(_form, _value)
_MAX_PHRASE = max(len(p.split()) for p in _PHRASES)

# Cues. WEAK cues ("no", "not") open a negation only before a known attribute
# that ends where a clause ends; STRONG cues also allow a prepositional tail
# ("without vocals from the 60s"); EXPLICIT cues (search-engine style
# "-drums", "exclude: x") accept any word at all.
_WEAK, _STRONG, _EXPLICIT = 1, 2, 3
_CUES: dict[tuple[str, ...], int] = {
    ("no",): _WEAK,
    ("not",): _WEAK,
    ("without",): _STRONG,
    ("w/o",): _STRONG,
    ("w/out",): _STRONG,
    ("sans",): _STRONG,
    ("minus",): _STRONG,
    ("lacking",): _STRONG,
    ("neither",): _STRONG,
    ("except",): _STRONG,
    ("except", "for"): _STRONG,
    ("free", "of"): _STRONG,
    ("devoid", "of"): _STRONG,
    ("anything", "but"): _STRONG,
    ("anything", "except"): _STRONG,
    ("anything", "other", "than"): _STRONG,
    ("everything", "but"): _STRONG,
    ("everything", "except"): _STRONG,
    ("nothing", "like"): _STRONG,
    ("other", "than"): _STRONG,
    ("rather", "than"): _STRONG,
    ("instead", "of"): _STRONG,
    ("exclude",): _EXPLICIT,
    ("excludes",): _EXPLICIT,
    ("excluding",): _EXPLICIT,
}
for _aux in (
    "doesn't",
    "does not",
    "don't",
    "do not",
    "didn't",
    "did not",
    "shouldn't",
    "should not",
    "won't",
    "will not",
    "mustn't",
    "must not",
):
    for _verb in ("have", "feature", "include", "contain", "want", "need", "use"):
        _CUES[(*_aux.split(), _verb)] = _STRONG
_MAX_CUE = max(len(c) for c in _CUES)

# Dropped between a cue and its attribute: "without *any* percussion".
_DETERMINERS = frozenset(
    _words("the a an any some much many more too very overly so really")
)
# Absorbed into a clause when they stand right before its cue, so that
# "piano but no strings" leaves "piano", not "piano but".
_LEAD_IN = frozenset(
    _words("and but with while though although plus yet having i we please")
)
_LEAD_IN_VERBS = frozenset(_words("has have is are"))
_LEAD_IN_RELATIVES = frozenset(_words("that which who"))
_LEAD_IN_PUNCT = frozenset(",;-–—/")
# May follow a negated attribute: the affirmative text resumes.
_RESUME = frozenset(_words("and but with while though although plus or"))
_PREPOSITIONS = frozenset(
    _words(
        "from in on at by for of like to during before after around about under "
        "over between circa since than"
    )
)
_TAILS: tuple[tuple[str, ...], ...] = (("at", "all"), ("whatsoever",), ("please",))
# Joins negated attributes into one list: "no drums or bass".
_LIST_ALWAYS = frozenset({"or", "nor", "/"})
_LIST_DISTRIBUTIVE = frozenset({"and", "&"})  # only after STRONG cues
# Stripped from the ends of the affirmative text after clauses are cut out.
_EDGE_WORDS = frozenset(_words("and but or with while though although plus"))
_EDGE_PUNCT = ",;:.!?-–—/&"
# Non-vocal, vocal-free, drumless: which kinds each affix may negate.
_AFFIX_KINDS = {"non": {"part", "genre"}, "free": {"part"}, "less": {"part"}}
_AFFIX_RES = (
    ("non", re.compile(r"non-?(?P<stem>.+)")),
    ("free", re.compile(r"(?P<stem>.+?)-?free")),
    ("less", re.compile(r"(?P<stem>.+?)-?less")),
)
# Kept in the affirmative text but imply a negation.
_IMPLIED = {"instrumental": "vocals", "instrumentals": "vocals"}

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
        *_SUFFIXES,
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

COMBINE_FORMS = ("max", "sum", "mean")


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
    `attributes[i]` was read from.
    """

    kind: str  # "cue", "minus", "prefix", "suffix", "implied"
    cue: str
    attributes: tuple[str, ...]
    sources: tuple[str, ...]
    start: int
    end: int
    removed: bool = True


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into the wanted part and the negated attributes."""

    text: str
    affirmative: str
    negated: list[str] = field(default_factory=list)
    clauses: tuple[Clause, ...] = ()
    # Known attributes the affirmative part names ("guitar" in "guitar music
    # without vocals"), so search can ask a tagger about them too.
    affirmed: list[str] = field(default_factory=list)

    @property
    def has_negation(self) -> bool:
        return bool(self.negated)


# --------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<quote>["“”«»])
  | (?P<word>w/out\b|w/o\b|[^\W_]+(?:['’\-&][^\W_]+)*)
  | (?P<minus>(?<![^\s(\[,;:])-(?=[^\W\d_]))
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


def _low(text: str) -> str:
    return text.casefold().replace("’", "'")


def _tokenize(text: str) -> list[_Token]:
    raw = [
        (m.lastgroup or "punct", m.group(), m.start(), m.end())
        for m in _TOKEN_RE.finditer(text)
    ]
    quotes = [i for i, (kind, *_rest) in enumerate(raw) if kind == "quote"]
    protected: set[int] = set()
    # Pair quotes in order; an unpaired last quote protects nothing.
    for a, b in zip(quotes[::2], quotes[1::2], strict=False):
        protected.update(range(a + 1, b))
    return [
        _Token(kind, tok, _low(tok), start, end, i in protected)
        for i, (kind, tok, start, end) in enumerate(raw)
    ]


class _Unit(NamedTuple):
    canonical: str
    kind: str
    length: int  # tokens


_DECADE_RE = re.compile(r"^(?:\d0s|\d{4}s)$")  # "no 80s synths"


def _lookup(words: Sequence[str]) -> tuple[str, str] | None:
    """(canonical, kind) of a word sequence, trying hyphenated spellings too."""
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
    return None


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


class _Attribute(NamedTuple):
    canonical: str
    source_start: int  # token index
    source_end: int  # token index, exclusive


class _Match(NamedTuple):
    kind: str
    cue_end: int  # token index after the cue words (== start for affixes)
    attributes: list[_Attribute]
    end: int  # token index, exclusive


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.n = len(self.toks)

    # -- small helpers -----------------------------------------------------

    def _word(self, i: int) -> str | None:
        """The lowercased word at i if it is a free (unquoted) word."""
        if (
            0 <= i < self.n
            and self.toks[i].kind == "word"
            and not self.toks[i].protected
        ):
            return self.toks[i].low
        return None

    def _punct(self, i: int) -> str | None:
        if 0 <= i < self.n and self.toks[i].kind in ("punct", "quote"):
            return self.toks[i].low
        return None

    def _unit(self, i: int) -> _Unit | None:
        for length in range(min(_MAX_PHRASE, self.n - i), 0, -1):
            words = [self._word(j) for j in range(i, i + length)]
            if None in words:
                continue
            found = _lookup(words)  # type: ignore[arg-type]
            if found is not None:
                return _Unit(found[0], found[1], length)
        return None

    def _cue(self, i: int) -> tuple[int, int] | None:
        """(strength, length) of the longest cue starting at token i."""
        for length in range(min(_MAX_CUE, self.n - i), 0, -1):
            words = tuple(self._word(j) for j in range(i, i + length))
            if None not in words and words in _CUES:
                return _CUES[words], length  # type: ignore[index]
        return None

    def _skip_determiners(self, i: int) -> int:
        while self._word(i) in _DETERMINERS:
            i += 1
        return i

    # -- attributes --------------------------------------------------------

    def _attribute(self, i: int) -> _Attribute | None:
        """The longest run of known words at i that reads as one attribute.

        Modifiers and earlier nouns keep their spelling ("male", "guitar" in
        "guitar solos"); the last meaningful word is canonicalised ("singers"
        -> "vocals"), filler nouns ("music", "parts") are dropped.
        """
        units: list[tuple[_Unit, int]] = []
        j = i
        while j < self.n:
            unit = self._unit(j)
            if unit is None:
                break
            units.append((unit, j))
            j += unit.length
        core = [(u, at) for u, at in units if u.kind != "suffix"]
        if not core or units[0][0].kind == "suffix" or core[-1][0].kind == "mod":
            return None
        # Genres keep their canonical spelling even when they modify
        # ("hip-hop beats" -> "hip hop drums"), other words their own.
        words = [
            u.canonical
            if u.kind == "genre"
            else " ".join(self.toks[k].low for k in range(at, at + u.length))
            for u, at in core[:-1]
        ]
        words.append(core[-1][0].canonical)
        return _Attribute(" ".join(words), i, j)

    def _attribute_list(self, i: int, strength: int) -> list[list[_Attribute]]:
        """Candidate attribute lists at i, longest first.

        "no drums or bass" negates both; "no drums, bass" only drums, because a
        comma list counts only when closed by "or"/"nor" (or "and" after a
        strong cue: "without drums, bass and vocals").
        """
        first = self._attribute(i)
        if first is None:
            return []
        closing = _LIST_ALWAYS | (_LIST_DISTRIBUTIVE if strength >= _STRONG else set())
        items = [first]
        accepted = [1]
        j = first.source_end
        while True:
            k, closed, separated = j, False, False
            while True:
                sep = self._word(k) or self._punct(k)
                if sep == ",":
                    separated = True
                elif sep in closing:
                    separated = closed = True
                else:
                    break
                k += 1
            if not separated:
                break
            # A repeated cue is fine: "no vocals or no drums".
            cue = self._cue(k)
            if cue is not None:
                k += cue[1]
            nxt = self._attribute(self._skip_determiners(k))
            if nxt is None:
                break
            items.append(nxt)
            if closed:
                accepted.append(len(items))
            j = nxt.source_end
        return [items[:count] for count in sorted(set(accepted), reverse=True)]

    # -- where a clause may end --------------------------------------------

    def _after(self, j: int, strength: int, at_start: bool) -> int | None:
        """Token index where the clause ends if it may end at j, else None."""
        for tail in _TAILS:
            if tuple(self._word(j + k) for k in range(len(tail))) == tail:
                j += len(tail)
                break
        if j >= self.n:
            return j
        tok = self.toks[j]
        word = self._word(j)
        if tok.kind in ("punct", "quote", "minus") or tok.protected:
            return j
        if word in _RESUME or self._cue(j) is not None or self._affix(j) is not None:
            return j
        if word in _PREPOSITIONS:
            # "No Country for Old Men": a weak cue opening the text and a
            # prepositional tail reads as a title; keep it whole.
            return None if (strength == _WEAK and at_start) else j
        return None

    # -- matchers ------------------------------------------------------------

    def _affix(self, i: int) -> _Match | None:
        """non-vocal, non vocal, vocal-free, vocal free, drumless, -drums."""
        tok = self.toks[i]
        if tok.protected:
            return None
        if tok.kind == "minus" and self._word(i + 1) is not None:
            word = self.toks[i + 1].low
            found = _lookup([word])
            canonical = found[0] if found else word
            return _Match("minus", i + 1, [_Attribute(canonical, i + 1, i + 2)], i + 2)
        word = self._word(i)
        if word is None:
            return None
        for affix, pattern in _AFFIX_RES:
            m = pattern.fullmatch(word)
            if m is None:
                continue
            found = _lookup([m.group("stem")])
            if found is not None and found[1] in _AFFIX_KINDS[affix]:
                kind = "prefix" if affix == "non" else "suffix"
                return _Match(kind, i, [_Attribute(found[0], i, i + 1)], i + 1)
        # "non vocal" and "vocal free" in two words.
        if word == "non" and self._word(i + 1) is not None:
            unit = self._unit(i + 1)
            if unit is not None and unit.kind in _AFFIX_KINDS["non"]:
                end = i + 1 + unit.length
                return _Match(
                    "prefix", i + 1, [_Attribute(unit.canonical, i + 1, end)], end
                )
        if self._word(i + 1) == "free" and self._word(i + 2) != "of":
            found = _lookup([word])
            if found is not None and found[1] == "part":
                return _Match("suffix", i + 2, [_Attribute(found[0], i, i + 1)], i + 2)
        return None

    def dangling(self) -> str | None:
        """dangling_cue: read with the parser's own cues, the colon and
        determiners `_cue_match` lets a cue take, and free words only."""
        words = [i for i, t in enumerate(self.toks) if t.kind == "word"]
        if not words or self.toks[words[-1]].protected:
            return None
        i = 0
        while i < self.n:
            if self.toks[i].kind != "word":
                i += 1
                continue
            cue = self._cue(i)
            if cue is None:
                break
            i += cue[1]
        else:
            return self.text.strip()
        for i in words:  # the earliest start is the longest cue
            cue = self._cue(i)
            if cue is None:
                continue
            strength, length = cue
            k = i + length
            if self._punct(k) == ":":
                k += 1
            k = self._skip_determiners(k)
            if any(t.kind == "word" for t in self.toks[k:]):
                continue
            # "ambient, no": a weak cue that opens its own clause is unfinished.
            if strength > _WEAK or self._punct(i - 1) in (",", ";", ":"):
                return self.text[self.toks[i].start : self.toks[words[-1]].end]
        return None

    def _cue_match(self, i: int, at_start: bool) -> _Match | None:
        cue = self._cue(i)
        if cue is None:
            return None
        strength, length = cue
        k = i + length
        if self._punct(k) == ":":
            k += 1
        k = self._skip_determiners(k)
        for items in self._attribute_list(k, strength):
            end = self._after(items[-1].source_end, strength, at_start)
            if end is not None:
                return _Match("cue", i + length, items, end)
        if strength == _EXPLICIT:
            # "exclude: kazoo" - the user asked explicitly, take the words.
            j = k
            while self._word(j) is not None and self._word(j) not in _RESUME:
                j += 1
            if j > k:
                words = " ".join(self.toks[x].low for x in range(k, j))
                return _Match("cue", i + length, [_Attribute(words, k, j)], j)
        return None

    # -- the scan -------------------------------------------------------------

    def parse(self) -> ParsedQuery:
        clauses: list[Clause] = []
        spans: list[tuple[int, int]] = []  # token spans removed
        i = 0
        prev_end = 0
        while i < self.n:
            at_start = (
                not any(t.kind == "word" for t in self.toks[prev_end:i]) and not spans
            )
            match = self._affix(i) or self._cue_match(i, at_start)
            if match is None:
                i += 1
                continue
            start = self._lead_in(i, prev_end)
            end = match.end
            if all(t.kind == "punct" for t in self.toks[end:]):
                end = self.n  # "Jazz WITHOUT Vocals!!": the "!!" goes too
            clauses.append(self._clause(match, i, start, end))
            spans.append((start, end))
            i = prev_end = end
        affirmative = self._affirmative(spans)
        clauses.extend(self._implied(spans))
        clauses.sort(key=lambda c: c.start)
        negated: list[str] = []
        for clause in clauses:
            for attribute in clause.attributes:
                if attribute not in negated:
                    negated.append(attribute)
        affirmed = self._affirmed(spans, negated)
        return ParsedQuery(self.text, affirmative, negated, tuple(clauses), affirmed)

    def _lead_in(self, i: int, floor: int) -> int:
        """Index of the first lead-in token before the cue at i ("but", ",")."""
        j = i
        while j > floor:
            tok = self.toks[j - 1]
            if tok.protected:
                break
            if (tok.kind == "punct" and tok.low in _LEAD_IN_PUNCT) or (
                tok.kind == "word" and tok.low in _LEAD_IN
            ):
                j -= 1
            elif tok.kind == "word" and tok.low in _LEAD_IN_VERBS:
                j -= 1
                if j > floor and self._word(j - 1) in _LEAD_IN_RELATIVES:
                    j -= 1
            else:
                break
        return j

    def _clause(self, match: _Match, cue_at: int, start: int, end: int) -> Clause:
        toks = self.toks
        cue = (
            self.text[toks[cue_at].start : toks[match.cue_end - 1].end]
            if (match.cue_end > cue_at)
            else toks[cue_at].text
        )
        sources = tuple(
            self.text[toks[a.source_start].start : toks[a.source_end - 1].end]
            for a in match.attributes
        )
        return Clause(
            kind=match.kind,
            cue=cue,
            attributes=tuple(dict.fromkeys(a.canonical for a in match.attributes)),
            sources=sources,
            start=toks[start].start,
            end=toks[end - 1].end,
        )

    def _implied(self, spans: list[tuple[int, int]]) -> list[Clause]:
        out = []
        for i, tok in enumerate(self.toks):
            if any(a <= i < b for a, b in spans) or tok.protected:
                continue
            if tok.kind == "word" and tok.low in _IMPLIED:
                out.append(
                    Clause(
                        "implied",
                        tok.text,
                        (_IMPLIED[tok.low],),
                        (tok.text,),
                        tok.start,
                        tok.end,
                        removed=False,
                    )
                )
        return out

    def _affirmed(self, spans: list[tuple[int, int]], negated: list[str]) -> list[str]:
        """Attributes named outside the negations, longest reading first.

        Quoted words and implied negations ("instrumental") are not asked
        for, nor is an attribute the query also negates.
        """
        out: list[str] = []
        i = 0
        while i < self.n:
            cut = next((b for a, b in spans if a <= i < b), None)
            if cut is not None:
                i = cut
                continue
            attribute = (
                None
                if self.toks[i].protected or self.toks[i].low in _IMPLIED
                else self._attribute(i)
            )
            if attribute is None:
                i += 1
                continue
            # An attribute may not run into a negation ("guitar" + "-drums").
            end = min([attribute.source_end, *(a for a, _ in spans if a > i)])
            canonical = attribute.canonical
            if end == attribute.source_end and canonical not in (*negated, *out):
                out.append(canonical)
            i = max(end, i + 1)
        return out

    def _affirmative(self, spans: list[tuple[int, int]]) -> str:
        if not spans:
            return self.text  # nothing understood: the text exactly as typed
        pieces = []
        pos = 0
        for a, b in spans:
            pieces.append(self.text[pos : self.toks[a].start])
            pos = self.toks[b - 1].end
        pieces.append(self.text[pos:])
        return _clean(" ".join(pieces))


_EDGE_WORD_RE = "|".join(sorted(_EDGE_WORDS))
# A separator or connector word left dangling at either end of the text.
_EDGE_RE = re.compile(
    rf"^(?:[\s{re.escape(_EDGE_PUNCT)}]+|(?:{_EDGE_WORD_RE})\b)"
    rf"|(?:[\s{re.escape(_EDGE_PUNCT + '([')}]+|\b(?:{_EDGE_WORD_RE}))$",
    re.IGNORECASE,
)


def _clean(text: str) -> str:
    """Tidy what is left once clauses are cut out: no dangling ", but"."""
    text = re.sub(r"\(\s*\)|\[\s*\]", " ", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,;:!?.)\]])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    while True:
        stripped = _EDGE_RE.sub("", text).strip()
        if stripped == text:
            return text
        text = stripped


def parse_query(text: str) -> ParsedQuery:
    """Split `text` into the affirmative part and the negated attributes.

    >>> parse_query("jazz without vocals").negated
    ['vocals']
    >>> parse_query("No Woman No Cry").affirmative
    'No Woman No Cry'
    """
    if not isinstance(text, str):
        raise TypeError(f"query must be a string, not {type(text).__name__}")
    return _Parser(text).parse()


def dangling_cue(text: str) -> str | None:
    """The negation a description leaves unfinished: the cue it ends on
    with nothing after it ("jazz without" -> "without"), or the whole text
    when it is nothing but cues ("no", "without"); None otherwise.

    Such a text would be embedded as it stands, and the model reads "jazz
    without" as jazz: the user meant to leave something out and would get
    no sign that nothing was. "no" and "not" end plenty of titles ("Why
    Not"), so at the end they count only after a comma ("ambient, no").
    """
    return _Parser(text).dangling()


def canonical_attribute(text: str) -> str | None:
    """The canonical name of `text` as one attribute ("singers" -> "vocals").

    None when `text` is not entirely a known attribute. Useful to match the
    negated attributes against a bundle's tag names.
    """
    parser = _Parser(text)
    if not parser.toks:
        return None
    attribute = parser._attribute(0)
    if attribute is None or attribute.source_end != parser.n:
        return None
    return attribute.canonical


# What counts as an X: "without guitar" excludes a distorted guitar too. A
# model learns the words its captions use, and captions name the kind
# ("distorted guitar"), so the broader word's own embedding can miss its
# kinds: on the real-recording check set the text "guitar" ranked the metal
# guitar stems below drum loops and voices (AUC 0.29) where "distorted
# guitar" ranked them first (0.98). A negated attribute listed here is
# penalised by the most similar of itself and its kinds (docs/queries.md).
# Only kinds the default model's captions name (its corpus' instrument
# families); the negated word itself always stays.
KINDS_OF: dict[str, tuple[str, ...]] = {
    "guitar": ("acoustic guitar", "electric guitar", "distorted guitar"),
    "electric guitar": ("distorted guitar",),
    "vocals": ("choir",),
    "strings": ("violin", "cello"),
    "brass": ("trumpet",),
    "horns": ("brass", "trumpet"),
    "synthesizer": ("synth lead", "synth pad"),
    "keyboards": ("piano", "organ", "synth lead", "synth pad"),
    "percussion": ("drums",),
}


def attribute_phrases(attribute: str) -> tuple[str, ...]:
    """The texts whose most similar one measures a negated attribute: the
    attribute, then its kinds (KINDS_OF)."""
    return (attribute, *KINDS_OF.get(attribute, ()))


def negated_phrases(parsed: ParsedQuery) -> list[str]:
    """Every text a query's penalty embeds, attribute by attribute in the
    order of `parsed.negated` (what TextQuery.build expects after the whole
    text)."""
    return [p for a in parsed.negated for p in attribute_phrases(a)]


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
    for index, name in enumerate(tag_names):
        negated, canonical = _tag_reading(name)
        if attribute in negated:
            absent.append(index)
            continue
        if canonical is not None and (
            canonical == attribute or canonical.endswith(" " + attribute)
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


@functools.lru_cache(maxsize=1024)
def _tag_reading(name: str) -> tuple[tuple[str, ...], str | None]:
    """What a tag name says: the attributes it negates, the one it names.

    Cached: a query matches each of its attributes against every tag name
    (and a wanted one also through its head noun), ~1 ms per pass parsed
    afresh, the same few dozen names every time.
    """
    return tuple(parse_query(name).negated), canonical_attribute(name)


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
