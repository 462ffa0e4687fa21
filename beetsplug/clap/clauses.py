"""Negation clauses: the scan over a description's tokens that finds them.

The parser behind `query.parse_query`. Each position's reading (known
concept, cue, attribute, list link) is computed once and kept, so a later
step that asks about the same position reads it back instead of rescanning
the tokens after it: the work grows with the tokens read.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

from .lexicon import lexicon
from .query import (
    _AFFIX_KINDS,
    _AFFIX_RES,
    _ALTERNATIVES,
    _ANSWERS,
    _CANCELS,
    _COPULAS,
    _CUES,
    _DETERMINERS,
    _EDGE_PUNCT,
    _EDGE_WORDS,
    _EXPLICIT,
    _FEATURING_RE,
    _FOCUS,
    _FOCUS_AFTER,
    _IMPLIED,
    _LEAD_IN,
    _LEAD_IN_PUNCT,
    _LEAD_IN_RELATIVES,
    _LEAD_IN_VERBS,
    _LIST_ALWAYS,
    _LIST_DISTRIBUTIVE,
    _LONE_VOICE_UNLESS,
    _LONE_VOICES,
    _MAX_CUE,
    _MAX_IMPLIED,
    _MAX_PHRASE,
    _PLAYED_WITH_A_MUTE,
    _POSTFIX,
    _POSTFIX_GLUE,
    _PREPOSITIONS,
    _QUIET,
    _RESUME,
    _STRONG,
    _TAILS,
    _WEAK,
    VOICE_GENDERS,
    VOICE_RANGES,
    Clause,
    ParsedQuery,
    _lookup,
    _Token,
    _tokenize,
    _Unit,
    gendered_voice,
    voice_gender,
    voice_in_gender_words,
    voices,
)


@functools.cache
def _instrument_families() -> frozenset[str]:
    """The parts a wanted description also reads as their kinds: families
    of instruments ("strings", "guitar", "keyboards"), not voices (a choir
    is one way a voice sounds, not what "vocals" asks for)."""
    lex = lexicon()
    return frozenset(
        c.id for c in lex.of_kind("part") if c.id not in voices() and lex.kinds_of(c.id)
    )


@functools.cache
def _sounding_parts() -> frozenset[str]:
    """The instruments, voices and drums of the lexicon's descriptors: parts
    that are heard on their own, not what a part plays ("solos")."""
    words = lexicon().descriptors
    return frozenset((*words.get("instruments", ()), *words.get("presence", ())))


def _kind_spellings(attribute: str) -> tuple[str, ...]:
    """`attribute` with its head (its longest ending that is a concept), where
    that is an instrument family, in turn replaced by each of the family's
    kinds ("calm guitar" -> "calm acoustic guitar", "calm electric
    guitar"...); () for any other ("distorted guitar" is a kind itself), and
    for a family a modifier already narrows ("lead synth", "clean electric
    guitar": the kinds would narrow it again, and clash)."""
    lex = lexicon()
    head = lex.head(attribute)
    if head is None or head not in _instrument_families():
        return ()
    words = attribute.split()
    before = words[: len(words) - len(head.split())]
    if any(lex.kind_of(word) == "modifier" for word in before):
        return ()
    lead = " ".join([*before, ""])
    return tuple(lead + kind for kind in lex.kinds_of(head))


def _range_spellings(attribute: str) -> tuple[str, ...]:
    """A voice narrowed by a range and no gender, in its gender's words
    ("tenor vocals" -> "male vocals", "soprano choir" -> "female choir"):
    the text tower never saw a range named in a caption; () for any other
    attribute."""
    gender = voice_gender(attribute)
    words = attribute.split()
    if gender is None or any(w in VOICE_GENDERS for w in words):
        return ()
    return (" ".join([gender, *(w for w in words if w not in VOICE_RANGES)]),)


def _part_head(attribute: str) -> str | None:
    """The head of `attribute` (its longest ending that is a concept) when
    that is a part one hears ("electric guitar", "male vocals" -> vocals);
    None for a genre, a mood or no concept."""
    lex = lexicon()
    head = lex.head(attribute)
    return head if head is not None and lex.kind_of(head) == "part" else None


def _wider_genres(attribute: str) -> tuple[str, ...]:
    """The genres the genre at the head of `attribute` belongs to
    ("house" -> electronic, "heavy metal" -> metal, rock; lexicon broader);
    () for any other attribute."""
    lex = lexicon()
    head = lex.head(attribute)
    if head is None or lex.kind_of(head) != "genre":
        return ()
    return tuple(g for g in lex.concept(head).broader if lex.kind_of(g) == "genre")


def _voices_in(words: list[str]) -> bool:
    """Whether canonical words name a voice's gender or range ("female",
    "tenor"): "sung by a soprano" is a soprano's voice."""
    return any(w in VOICE_GENDERS or w in VOICE_RANGES for w in words)


def _other_voices(clauses: list[Clause], affirmed: list[str]) -> set[str]:
    """The negated voices of another gender than a voice the description
    wants ("female vocals, no male vocals": the wanted voice says it). The
    text tower and the taggers barely tell a man's voice from a woman's, so
    such a penalty sank every voice (AUC 0.942 -> 0.865 for female vocals on
    the realset's choose part); they are not negated, and a clause that
    refused nothing else is "covered": its words still go from the wanted
    text."""
    wanted = {v for a in affirmed if (v := gendered_voice(a)) is not None}
    if not wanted:
        return set()
    out = set()
    for clause in clauses:
        for attribute in clause.attributes:
            voice = gendered_voice(attribute)
            if voice is not None and any(
                g != voice[0] and h == voice[1] for g, h in wanted
            ):
                out.add(attribute)
    return out


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


_NONE = object()  # "not computed yet" in the memo tables
_T = TypeVar("_T")


# Marks a form's answer follows: "vocals: none", "drums? no", "vocals - no".
_ANSWER_MARKS = frozenset({":", "=", "?", "-", "–", "—", "("})
# Unit kinds that head a phrase, and those that modify the next word: in
# English an adjective after a noun starts the next phrase (Parser._closes).
_NOUN_KINDS = frozenset({"part", "genre"})
_ADJECTIVE_KINDS = frozenset({"quality", "mod"})


class Parser:
    """One parse. Each memo table holds what one position reads as, so a
    later step that asks about the same position reads it back instead of
    rescanning the tokens after it."""

    def __init__(self, text: str, max_tokens: int) -> None:
        self.text, self.toks, self.cut = _tokenize(text, max_tokens)
        self.n = len(self.toks)
        self._units: list[object] = [_NONE] * (self.n + 1)
        self._cues: list[object] = [_NONE] * (self.n + 1)
        self._attributes: list[object] = [_NONE] * (self.n + 1)
        self._links: dict[tuple[int, bool], tuple[_Attribute, bool] | None] = {}
        self._closed: dict[tuple[int, bool], bool] = {}
        self._before: list[_Attribute | None] | None = None
        # Per position, the last core (non-suffix) unit on the chain of
        # known units that starts there: decides in O(1) whether an
        # attribute can start there at all. And where the run of modifiers
        # that starts there ends, and whether one of them is a lone voice's
        # (`_lone_voice` in O(1)).
        self._last_core: list[int | None] = [None] * (self.n + 1)
        self._mods_end = list(range(self.n + 1))
        self._mods_voiced = [False] * (self.n + 1)
        for i in range(self.n - 1, -1, -1):
            unit = self._unit(i)
            if unit is None:
                continue
            nxt = i + unit.length
            after = None if self._closes(i) else self._last_core[nxt]
            core = None if unit.kind == "suffix" else i
            self._last_core[i] = core if after is None else after
            if unit.kind == "mod":
                self._mods_end[i] = self._mods_end[nxt]
                self._mods_voiced[i] = (
                    unit.canonical in _LONE_VOICES or self._mods_voiced[nxt]
                )
        kinds = [t.kind for t in self.toks]
        self._last_word = max(
            (i for i, k in enumerate(kinds) if k == "word"), default=-1
        )
        self._last_non_punct = max(
            (i for i, k in enumerate(kinds) if k != "punct"), default=-1
        )

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

    def _words_at(self, i: int, most: int) -> tuple[str, ...]:
        """The free words from token i on, up to `most` of them."""
        words = []
        for j in range(i, min(i + most, self.n)):
            word = self._word(j)
            if word is None:
                break
            words.append(word)
        return tuple(words)

    def _memo(
        self, table: list[object], i: int, read: Callable[[int], _T | None]
    ) -> _T | None:
        """What token i reads as by `read`, computed once and kept in
        `table`; None outside the tokens."""
        if not 0 <= i < self.n:
            return None
        found = table[i]
        if found is _NONE:
            found = read(i)
            table[i] = found
        return found  # type: ignore[return-value]

    def _longest(
        self, i: int, most: int, find: Callable[[tuple[str, ...]], _T | None]
    ) -> tuple[_T, int] | None:
        """(what `find` says, length) of the longest run of up to `most` free
        words from token i that `find` knows."""
        words = self._words_at(i, most)
        for length in range(len(words), 0, -1):
            hit = find(words[:length])
            if hit is not None:
                return hit, length
        return None

    def _unit(self, i: int) -> _Unit | None:
        """The longest known concept form starting at token i."""
        return self._memo(self._units, i, self._read_unit)

    def _read_unit(self, i: int) -> _Unit | None:
        found = self._longest(i, _MAX_PHRASE, _lookup)
        if found is None:
            return None
        (canonical, kind), length = found
        return _Unit(canonical, kind, length)

    def _closes(self, i: int) -> bool:
        """Whether the unit at i ends an attribute: "sax-driven" names the
        saxophone and says it leads; it modifies no word after it ("sax-driven
        jazz" is saxophone and jazz). Nor does a part or a style that an
        adjective follows: the adjective starts the next phrase ("piano
        without drums calm", "no drums calm piano": drums, then calm)."""
        if self._word(i) is None:
            return False
        if _FEATURING_RE.fullmatch(self.toks[i].low) is not None:
            return True
        unit = self._unit(i)
        if unit is None or unit.kind not in _NOUN_KINDS:
            return False
        nxt = self._unit(i + unit.length)
        if nxt is None:
            return False
        if nxt.kind in _ADJECTIVE_KINDS:
            return True
        # An instrument, voice or drums, then another or a style, are two
        # phrases ("no drums piano", "no vocals jazz"); a style before a part
        # names one ("jazz piano"), as "guitar solos", "solo piano" and a
        # rarer instrument's style ("vibraphone jazz") do.
        sounding = _sounding_parts()
        return unit.canonical in sounding and (
            nxt.kind == "genre" or nxt.canonical in sounding
        )

    def _cue(self, i: int) -> tuple[int, int] | None:
        """(strength, length) of the longest cue starting at token i."""
        return self._memo(self._cues, i, self._read_cue)

    def _read_cue(self, i: int) -> tuple[int, int] | None:
        found = self._longest(i, _MAX_CUE, _CUES.get)
        if found is not None and found[1] == 1 and self._word(i) == "mute":
            # "mute trumpet" is how a trumpet sounds; "mute vocals" refuses
            unit = self._unit(i + 1)
            if unit is not None and unit.canonical in _PLAYED_WITH_A_MUTE:
                return None
        return found

    def _skip_determiners(self, i: int) -> int:
        while self._word(i) in _DETERMINERS:
            i += 1
        return i

    def _back_past_determiners(self, i: int) -> int:
        """Where the determiners right before token i start (i: none)."""
        while self._word(i - 1) in _DETERMINERS:
            i -= 1
        return i

    def _after_cue(self, k: int) -> int:
        """Where the negated words start after a cue ending at k: past a
        colon ("exclude: kazoo"), a copula ("no one is singing", "nothing
        is loud") and determiners."""
        if self._punct(k) in (":", "."):  # "exclude: kazoo", "excl. drums"
            k += 1
        if self._word(k) in _COPULAS:
            k += 1
        return self._era_after(self._skip_determiners(k))

    def _past_filler(self, j: int) -> int:
        """Past the filler nouns at j ("songs", "music", "artists")."""
        while (unit := self._unit(j)) is not None and unit.kind == "suffix":
            j += unit.length
        return j

    def _era_after(self, k: int) -> int:
        """Where an era starts after filler nouns and "from (the)" at k
        ("nothing from the 80s", "no music from the 90s": a decade names
        when the music is from); k itself when none does."""
        j = self._past_filler(k)
        if self._word(j) != "from":
            return k
        j = self._skip_determiners(j + 1)
        unit = self._unit(j)
        if unit is not None and lexicon().kind_of(unit.canonical) == "era":
            return j
        return k

    # -- attributes --------------------------------------------------------

    def attribute(self, i: int) -> _Attribute | None:
        """The longest run of known words at i that reads as one attribute.

        Modifiers and earlier nouns keep their spelling ("male", "guitar" in
        "guitar solos"); the last meaningful word is canonicalised ("singers"
        -> "vocals"), filler nouns ("music", "parts") are dropped.
        """
        return self._memo(self._attributes, i, self._read_attribute)

    def _read_attribute(self, i: int) -> _Attribute | None:
        first = self._unit(i)
        last = self._last_core[i]
        if first is None or first.kind == "suffix" or last is None:
            return None
        if self._unit(last).kind == "mod":  # type: ignore[union-attr]
            return None
        # Genres keep their canonical spelling even when they modify
        # ("hip-hop beats" -> "hip hop drums"), other words their own.
        words = []
        j = i
        closed = False  # only filler may follow a unit that closes
        while (unit := self._unit(j)) is not None:
            if closed and unit.kind != "suffix":
                break
            if unit.kind != "suffix":
                if j == last or unit.kind in ("genre", "mod"):
                    words.append(unit.canonical)
                else:
                    words.append(
                        " ".join(self.toks[k].low for k in range(j, j + unit.length))
                    )
            closed = closed or self._closes(j)
            j += unit.length
        singer, after = self._sung_by(j)
        if singer and words[-1] in voices() and not _voices_in(words):
            # "vocals by a woman", "sung by a tenor": the voice's gender
            # or range
            return _Attribute(" ".join([singer, *words]), i, after)
        return _Attribute(" ".join(words), i, j)

    def _sung_by(self, j: int) -> tuple[str | None, int]:
        """(gender or range, end) of a "by (a) woman" or "by a soprano"
        that follows a voice at token j ("sung by a woman" is that gender's
        voice, "sung by a soprano" a soprano's); (None, j) when none
        does."""
        if self._word(j) != "by":
            return None, j
        k = self._skip_determiners(j + 1)
        unit = self._unit(k)
        if unit is None or unit.kind != "mod" or not _voices_in([unit.canonical]):
            return None, j
        return unit.canonical, k + unit.length

    def _attribute_list(
        self, i: int, strength: int, first: _Attribute | None = None
    ) -> list[list[_Attribute]]:
        """Candidate attribute lists at i, longest first; `first` is the
        item at i when it is no attribute (a refused lone voice).

        "no drums or bass" negates both; "no drums, bass" only drums, because a
        comma list counts only when closed by "or"/"nor" (or "and" after a
        strong cue: "without drums, bass and vocals").
        """
        first = first or self.attribute(i)
        if first is None:
            return []
        strong = strength >= _STRONG
        items = [first]
        accepted = [1]
        # Only a list closed further on can be longer than its first item,
        # so the walk stops where no closing word lies ahead: a run of
        # "no drums, no bass, ..." is walked once, not once per cue.
        while self._closed_ahead(items[-1], strong):
            nxt, closed = self._link(items[-1].source_end, strong)  # type: ignore[misc]
            items.append(nxt)
            if closed:
                accepted.append(len(items))
        return [items[:count] for count in sorted(set(accepted), reverse=True)]

    def _link(self, j: int, strong: bool) -> tuple[_Attribute, bool] | None:
        """The next list item after an attribute ending at j, and whether
        the separator closes the list ("or"), else None."""
        key = (j, strong)
        if key in self._links:
            return self._links[key]
        closing = _LIST_ALWAYS | (_LIST_DISTRIBUTIVE if strong else frozenset())
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
        found = None
        if separated:
            # A repeated cue is fine: "no vocals or no drums".
            cue = self._cue(k)
            if cue is not None:
                k += cue[1]
            k = self._skip_determiners(k)
            # a gender alone is a voice here too: "no drums or men"
            nxt = self.attribute(k) or self._refused_voice(k)
            if nxt is not None:
                found = (nxt, closed)
        self._links[key] = found
        return found

    def _closed_ahead(self, item: _Attribute, strong: bool) -> bool:
        """Whether a closing separator lies on the list chain after `item`."""
        path = []
        result = False
        while True:
            key = (item.source_start, strong)
            if key in self._closed:
                result = self._closed[key]
                break
            path.append(key)
            link = self._link(item.source_end, strong)
            if link is None:
                break
            if link[1]:
                result = True
                break
            item = link[0]
        for key in path:
            self._closed[key] = result
        return result

    # -- where a clause may end --------------------------------------------

    def _after(self, j: int, strength: int, at_start: bool) -> int | None:
        """Token index where the clause ends if it may end at j, else None."""
        j = self._past_tails(j)
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

    def _past_tails(self, j: int) -> int:
        """Past the tails at j, one after another ("no vocals whatsoever
        please", "drums? no thanks")."""
        found = True
        while found:
            found = False
            for tail in _TAILS:
                if tuple(self._word(j + k) for k in range(len(tail))) == tail:
                    j += len(tail)
                    found = True
                    break
        return j

    # -- matchers ------------------------------------------------------------

    def _affix(self, i: int) -> _Match | None:
        """non-vocal, non vocal, no-vocal, vocal-free, vocal free, drumless,
        -drums."""
        tok = self.toks[i]
        if tok.protected:
            return None
        if tok.kind == "minus" and self._word(i + 1) is not None:
            word = self.toks[i + 1].low
            found = _lookup((word,))
            canonical = found[0] if found else word
            return _Match("minus", i + 1, [_Attribute(canonical, i + 1, i + 2)], i + 2)
        word = self._word(i)
        if word is None:
            return None
        for affix, pattern in _AFFIX_RES:
            m = pattern.fullmatch(word)
            if m is None:
                continue
            found = _lookup((m.group("stem"),))
            if found is not None and found[1] in _AFFIX_KINDS[affix]:
                kind = "prefix" if affix in ("non", "no") else "suffix"
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
            found = _lookup((word,))
            if found is not None and found[1] == "part":
                return _Match("suffix", i + 2, [_Attribute(found[0], i, i + 1)], i + 2)
        return None

    def _postfix(self, i: int) -> _Match | None:
        """ "drums removed", "the vocals are missing", "with the guitar taken
        out": one part (after determiners), then words that say it is absent
        (the lexicon's postfix cues)."""
        if self._word(i) is None:
            return None
        found = self.attribute(self._skip_determiners(i))
        if found is None:
            return None
        kind = lexicon().kind_of(found.canonical)
        j = found.source_end
        # A form's answer may refuse what "non-" negates: a part or a genre
        # ("techno: no").
        if (
            kind in _AFFIX_KINDS["non"]
            and self._punct(j) in _ANSWER_MARKS
            and self._word(j + 1) in _ANSWERS
        ):
            end = self._past_tails(j + 2)
            # the answer ends its clause: "jazz (no vocals)" is no answer
            if end >= self.n or self.toks[end].kind in ("punct", "quote"):
                return _Match("suffix", end, [found], end)
        # What can be absent is what "-free" may negate: a part one hears.
        if kind not in _AFFIX_KINDS["free"]:
            return None
        if self._word(j) in _COPULAS:
            j += 1
        while self._word(j) in _POSTFIX_GLUE:
            j += 1
        for cue in _POSTFIX:
            if all(self._word(j + n) == word for n, word in enumerate(cue)):
                end = self._past_tails(j + len(cue))
                if self.attribute(self._skip_determiners(end)) is not None:
                    # "piano don't play vocals": a cue that is a postfix too
                    # ("don't play") negates the part after it
                    return None
                return _Match("suffix", end, [found], end)
        return None

    def _loud_cue(self, i: int) -> tuple[int, int] | None:
        """`_cue`, unless it is a quiet one (an everyday word too: "avoid",
        "zero"), which a text may end with."""
        cue = self._cue(i)
        if cue is None:
            return None
        words = tuple(self.toks[k].low for k in range(i, i + cue[1]))
        return None if words in _QUIET else cue

    def _dangling(self, spans: list[tuple[int, int]]) -> str | None:
        """ParsedQuery.dangling: read with the parser's own cues, what
        `_cue_match` lets a cue take before its words (`_after_cue`), and
        free words only; a cue inside a clause the parser read (`spans`: a
        form's answer, "vocals: no") finishes it. A text cut at max_tokens
        leaves nothing dangling: its words went on past the cut."""
        if self.cut:
            return None
        last = self._last_word
        if last < 0 or self.toks[last].protected:
            return None
        i = 0
        while i < self.n:
            if self.toks[i].kind != "word":
                i += 1
                continue
            cue = self._loud_cue(i)
            if cue is None:
                break
            i += cue[1]
        else:
            return self.text.strip()
        inside = [False] * self.n
        for a, b in spans:
            inside[a:b] = [True] * (b - a)
        for i in range(last + 1):  # the earliest start is the longest cue
            if self.toks[i].kind != "word" or (cue := self._loud_cue(i)) is None:
                continue
            if inside[i]:
                continue
            strength, length = cue
            k = self._after_cue(i + length)
            if k <= last:  # a word follows
                continue
            # "ambient, no": a weak cue that opens its own clause is unfinished.
            if strength > _WEAK or self._punct(i - 1) in (",", ";", ":"):
                return self.text[self.toks[i].start : self.toks[last].end]
        return None

    def _cue_match(self, i: int, at_start: bool) -> _Match | None:
        cue = self._cue(i)
        if cue is None:
            return None
        strength, length = cue
        k = self._after_cue(i + length)
        for items in self._attribute_list(k, strength):
            end = self._after(items[-1].source_end, strength, at_start)
            if end is None:
                j = self._past_tails(items[-1].source_end)
                end = j if self._next_phrase(items, j, strength, at_start) else None
            if end is not None:
                return _Match("cue", i + length, items, end)
        # "jazz, no crazy drums": one word the lexicon does not know
        # narrows the part; without this the cue found nothing and "drums"
        # was read as wanted. After a weak cue only a part ("no background
        # vocals"): "No Doubt ska" is a band and a style, "No Woman No Cry
        # live" a song.
        modified = self._unknown_modifier(k)
        if (
            modified is not None
            and strength == _WEAK
            and _part_head(modified.canonical) is None
        ):
            modified = None
        if modified is None:
            modified = self._modifier_of_previous(i, k)
        if modified is not None:
            end = self._after(modified.source_end, strength, at_start)
            if end is not None:
                return _Match("cue", i + length, [modified], end)
        voice = self._refused_voice(k)
        for items in self._attribute_list(k, strength, voice) if voice else ():
            end = self._after(items[-1].source_end, strength, at_start)
            # A weak cue opening the text refuses a lone voice only when
            # nothing follows, a list does or another negation does ("no
            # women, no drums"): "No Woman No Cry", "No Woman, No Cry" are
            # a song.
            if end is not None and not (
                strength == _WEAK
                and at_start
                and end < self.n
                and len(items) == 1
                and not self._negation_at(end)
            ):
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

    def _next_phrase(
        self, items: list[_Attribute], j: int, strength: int, at_start: bool
    ) -> bool:
        """Whether a refused list may end at j, before a word it cannot take:
        a known word that starts the next phrase ("rock without vocals
        loud", "no drums calm piano"), or, after a strong cue, any word
        ("jazz without vocals gentle"). That word goes back to what is
        wanted; unread, the whole text was wanted, the refused part with it.
        A weak cue keeps idioms whole ("piano with no strings attached"),
        and opening the text it refuses only a part so ("No Country Dance")."""
        unit = self._unit(j)
        if self._word(j) is None or (unit is not None and unit.kind == "suffix"):
            return False
        if strength > _WEAK:
            return True
        return unit is not None and not (
            at_start and _part_head(items[0].canonical) is None
        )

    def _modifier_of_previous(self, i: int, k: int) -> _Attribute | None:
        """A modifier alone at k, after a cue at i, narrows the part named
        last before the cue: "guitar but not electric" negates electric
        guitar. None when k holds no lone modifier or nothing came before."""
        unit = self._unit(k)
        if unit is None or unit.kind != "mod" or self.attribute(k) is not None:
            return None
        before = self._attribute_before(i)
        head = None if before is None else _part_head(before.canonical)
        if head is None:
            return None
        return _Attribute(f"{unit.canonical} {head}", k, k + unit.length)

    def _attribute_before(self, i: int) -> _Attribute | None:
        """The attribute that starts last among those ending by token i;
        all positions worked out once (a text of many cues stays linear)."""
        if self._before is None:
            latest: list[_Attribute | None] = [None] * (self.n + 1)
            for j in range(self.n):
                found = self.attribute(j)
                if found is not None:
                    latest[found.source_end] = found  # j rises: the latest
            before: list[_Attribute | None] = [None] * (self.n + 1)
            for end in range(1, self.n + 1):
                a, b = before[end - 1], latest[end]
                before[end] = (
                    b
                    if a is None or (b is not None and b.source_start > a.source_start)
                    else a
                )
            self._before = before
        return self._before[i]

    def _unknown_modifier(self, k: int) -> _Attribute | None:
        """One free word the lexicon does not know at k, then an attribute
        ("crazy drums"), read as that attribute narrowed; None otherwise."""
        word = self._word(k)
        if (
            word is None
            or self._unit(k) is not None
            or self._cue(k) is not None
            or word in _RESUME
            or word in _PREPOSITIONS
            or word in _COPULAS
        ):
            return None
        found = self.attribute(k + 1)
        if found is None:
            return None
        return _Attribute(f"{word} {found.canonical}", k, found.source_end)

    # -- the scan -------------------------------------------------------------

    def parse(self) -> ParsedQuery:
        clauses: list[Clause] = []
        spans: list[tuple[int, int]] = []  # token spans removed, in order
        i = 0
        prev_end = 0
        word_since = False  # a word among toks[prev_end:i]
        while i < self.n:
            at_start = not word_since and not spans
            match = self._affix(i) or self._cue_match(i, at_start) or self._postfix(i)
            if (
                match is not None
                and match.kind == "cue"
                and self._word(i - 1) in _CANCELS
            ):
                # "not without drums" asks for drums: both words go (a clause
                # that negates nothing), and the words after them are read as
                # wanted.
                cancel = _Match("cancel", match.cue_end, [], match.cue_end)
                clauses.append(self._clause(cancel, i - 1, i - 1, match.cue_end))
                spans.append((i - 1, match.cue_end))
                i = prev_end = match.cue_end
                word_since = False
                continue
            if match is None:
                word_since = word_since or self.toks[i].kind == "word"
                i += 1
                continue
            start = self._lead_in(i, prev_end)
            end = match.end
            if end > self._last_non_punct:
                end = self.n  # "Jazz WITHOUT Vocals!!": the "!!" goes too
            clauses.append(self._clause(match, i, start, end))
            spans.append((start, end))
            i = prev_end = end
            word_since = False
        mended = [tok for tok in self.toks if tok.mended]
        # Words that only stress a part go from the wanted text too.
        affirmative = self._affirmative(sorted(spans + self._focus(spans)), mended)
        clauses.extend(self._implied(spans))
        clauses.sort(key=lambda c: c.start)
        negated: list[str] = []
        for clause in clauses:
            for attribute in clause.attributes:
                if attribute not in negated:
                    negated.append(attribute)
        affirmed = self._affirmed(spans, negated)
        if covered := _other_voices(clauses, affirmed):
            negated = [n for n in negated if n not in covered]
            clauses = [
                dataclasses.replace(c, kind="covered")
                if c.kind != "cancel" and c.attributes and covered >= set(c.attributes)
                else c
                for c in clauses
            ]
        # In a longer description a family is one detail among several, and
        # its kinds would outweigh the rest (docs/benchmarks.md).
        if any(c.kind not in ("cancel", "covered") for c in clauses):
            spelled, kind_readings, family_readings = "", (), ()
        elif affirmative != self.text:
            # only a double negation's words or stressing words went: read
            # the rest as a plain description ("not without strings" as
            # "strings", "only vocals" as "vocals")
            rest = Parser(affirmative, self.n)
            spelled, kind_readings, family_readings = rest._spelled(len(affirmed) == 1)
        else:
            spelled, kind_readings, family_readings = self._spelled(len(affirmed) == 1)
        return ParsedQuery(
            self.text,
            affirmative,
            negated,
            tuple(clauses),
            affirmed,
            self._dangling(spans),
            spelled,
            kind_readings,
            family_readings,
            tuple((tok.text, tok.low) for tok in mended),
            self._offers_alternatives(spans),
        )

    def _focus(self, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The token ranges of words that only stress the attribute they
        stand before ("only", "just the") or after ("alone", "and nothing
        else"), outside the negations' `spans`."""
        out = []
        for a, b in self._free_runs(spans):
            for i in range(a, b):
                found = self._longest(i, 3, lambda w: w if w in _FOCUS else None)
                if found is None or self._word(i - 1) in _DETERMINERS:
                    continue  # "the only": part of a name ("The Only One")
                if self._cue_ends_at(i):
                    continue  # "not only piano": "not piano" is another text
                j = self._skip_determiners(i + found[1])
                if j < b and self._reading(j) is not None:
                    out.append((i, i + found[1]))
            for attribute, whole in self._attributes_in(a, b):
                end = attribute.source_end
                found = self._longest(
                    end, 4, lambda w: w if w in _FOCUS_AFTER else None
                )
                if whole and found is not None and end + found[1] <= b:
                    out.append((end, end + found[1]))
        return out

    def _cue_ends_at(self, i: int) -> bool:
        """Whether a cue's words end right before token i."""
        return any(
            (cue := self._cue(j)) is not None and j + cue[1] == i
            for j in range(max(0, i - _MAX_CUE), i)
        )

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
                # "where there are no drums": every relative before the verb
                while j > floor and self._word(j - 1) in _LEAD_IN_RELATIVES:
                    j -= 1
            elif tok.kind == "word" and tok.low in _LEAD_IN_RELATIVES and j == i:
                j -= 1  # "songs that don't have drums": "that" goes too
                if j > floor and self._word(j - 1) in _PREPOSITIONS:
                    j -= 1  # "songs in which no one sings"
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

    def _offers_alternatives(self, spans: list[tuple[int, int]]) -> bool:
        """Whether a word outside the negations' `spans` (and not quoted)
        offers the wanted attributes as alternatives ("piano or guitar")."""
        return any(
            not tok.protected and tok.kind == "word" and tok.low in _ALTERNATIVES
            for a, b in self._free_runs(spans)
            for tok in self.toks[a:b]
        )

    def _free_runs(self, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The token ranges outside the removed spans, in order."""
        runs, pos = [], 0
        for a, b in spans:
            if a > pos:
                runs.append((pos, a))
            pos = b
        if pos < self.n:
            runs.append((pos, self.n))
        return runs

    def _implied_at(self, i: int) -> tuple[str, int] | None:
        """(the concept it says is absent, its length in tokens) of a form
        at token i that says so on its own ("instrumental", "backing
        track": vocals); None when none starts there."""
        return self._longest(i, _MAX_IMPLIED, _IMPLIED.get)

    def _implied(self, spans: list[tuple[int, int]]) -> list[Clause]:
        out = []
        for a, b in self._free_runs(spans):
            i = a
            while i < b:
                found = self._implied_at(i)
                if found is None or i + found[1] > b:
                    i += 1
                    continue
                concept, length = found
                start, end = self.toks[i].start, self.toks[i + length - 1].end
                words = self.text[start:end]
                out.append(
                    Clause(
                        "implied",
                        words,
                        (concept,),
                        (words,),
                        start,
                        end,
                        removed=False,
                    )
                )
                i += length
        return out

    def _affirmed(self, spans: list[tuple[int, int]], negated: list[str]) -> list[str]:
        """Attributes named outside the negations, longest reading first.

        Quoted words and implied negations ("instrumental") are not asked
        for, nor is an attribute the query also negates.
        """
        out: list[str] = []
        taken = set(negated)
        for a, b in self._free_runs(spans):
            for attribute, whole in self._attributes_in(a, b):
                if whole and attribute.canonical not in taken:
                    out.append(attribute.canonical)
                    taken.add(attribute.canonical)
        return out

    def _attributes_in(self, a: int, b: int) -> Iterator[tuple[_Attribute, bool]]:
        """The attributes read in tokens [a, b), in order, each with whether
        it ends inside them (one may not run into a negation: "guitar" +
        "-drums"). Quoted words and implied negations are not read."""
        i = a
        while i < b:
            implied = self._implied_at(i)
            if implied is not None:
                i += implied[1]
                continue
            attribute = None if self.toks[i].protected else self._reading(i)
            if attribute is None:
                i += 1
                continue
            end = min(attribute.source_end, b)
            yield attribute, end == attribute.source_end
            i = max(end, i + 1)

    def _reading(self, i: int) -> _Attribute | None:
        """What a wanted description names at i: its attribute, else the
        voice a lone gender or range there stands for."""
        return self.attribute(i) or self._lone_voice(i)

    def _lone_voice(self, i: int, refused: bool = False) -> _Attribute | None:
        """The voice that modifiers at i with no part after them stand for
        when one is a gender or range ("female", "a female lead", "women",
        "soprano" -> "female vocals", "female lead vocals", "female vocals",
        "soprano vocals": grammar `lone_voices`); None when they name none,
        a playing verb follows ("a woman playing piano"), they say who plays
        a part ("guitar by a man") or a negation's cue comes right before
        ("No Woman No Cry": `_refused_voice` reads those, `refused`)."""
        if not self._mods_voiced[i]:
            return None
        j = self._mods_end[i]
        after = self._unit(j)
        if after is not None and after.kind != "suffix":
            return None  # a part follows: the modifiers narrow it
        if self._word(j) in _LONE_VOICE_UNLESS:
            return None
        k = self._back_past_determiners(i)
        if self._word(k - 1) == "by" and self._names_a_part_before(k - 1):
            return None
        if not refused and (
            self._cue_ends_at(k)
            or (self._word(k - 1) == "by" and self._cue_before_by(k - 1))
        ):
            return None
        words, k = [], i
        while k < j:
            unit = self._unit(k)
            assert unit is not None
            words.append(unit.canonical)
            k += unit.length
        # filler nouns after them go with them, as after any attribute
        # ("female artists" reads "female vocals")
        j = self._past_filler(j)
        return _Attribute(" ".join([*words, "vocals"]), i, j)

    def _cue_before_by(self, i: int) -> bool:
        """Whether a cue, then determiners and filler nouns only, come
        before the "by" at i ("no songs by men": the voice is refused, not
        wanted)."""
        while (unit := self._unit(i - 1)) is not None and unit.kind == "suffix":
            i -= 1
        return self._cue_ends_at(self._back_past_determiners(i))

    def _refused_voice(self, k: int) -> _Attribute | None:
        """A lone voice a cue refuses at k ("no women", "jazz, no men", "no
        songs by men"): past filler nouns and "by" to the gender or range."""
        j = self._past_filler(k)
        if self._word(j) == "by":
            j = self._skip_determiners(j + 1)
        if self._word(j - 1) == "the":
            return None  # one person: "Everything but the Girl" is a band
        found = self._lone_voice(j, refused=True)
        return (
            None if found is None else _Attribute(found.canonical, k, found.source_end)
        )

    def _negation_at(self, j: int) -> bool:
        """Whether a cue refusing something known comes at j, past
        punctuation and lead-in words ("no women, but no drums")."""
        while j < self.n and (
            self.toks[j].kind == "punct" or self._word(j) in _LEAD_IN
        ):
            j += 1
        return j < self.n and self._cue_match(j, False) is not None

    def _names_a_part_before(self, i: int) -> bool:
        """Whether a part's attribute ends right before token i ("guitar"
        in "guitar by a man": who plays it; "jazz by women" is sung)."""
        found = self._attribute_before(i)
        return (
            found is not None
            and found.source_end == i
            and _part_head(found.canonical) is not None
        )

    def _spelled(
        self, with_kinds: bool
    ) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        """The text with each attribute it names in the lexicon's spelling
        ("with lyrics" -> "with vocals", "a woman singing" -> "a female
        vocals"), every other word as typed; and, `with_kinds`, that text
        once per kind of each instrument family it names, the kind in the
        family's place ("strings" -> "violin", "cello"; "calm guitars" ->
        "calm acoustic guitar"...: ParsedQuery.kind_readings), and once
        with each wider genre of each genre it names after it ("house
        music" -> "house music, electronic": ParsedQuery.family_readings).
        A voice a gender or range narrows is also read alone, in its
        gender's words ("songs by female artists", "a tenor voice" ->
        "female vocals", "male vocals"): the text tower knows those far
        better than the words around them (docs/benchmarks.md, "Voices by
        range and lead")."""
        pieces, pos, families, wider, alone = [], 0, [], [], []
        for attribute, _ in self._attributes_in(0, self.n):
            start = self.toks[attribute.source_start].start
            pieces.append(self.text[pos:start])
            kinds = (
                _kind_spellings(attribute.canonical)
                or _range_spellings(attribute.canonical)
                if with_kinds
                else ()
            )
            if kinds:
                families.append((len(pieces), kinds))
            if with_kinds:
                wider += _wider_genres(attribute.canonical)
                voice = voice_in_gender_words(attribute.canonical)
                alone += [voice] if voice else []
            pieces.append(attribute.canonical)
            pos = self.toks[attribute.source_end - 1].end
        pieces.append(self.text[pos:])
        readings = tuple(
            "".join([*pieces[:i], kind, *pieces[i + 1 :]])
            for i, kinds in families
            for kind in kinds
        )
        spelled = "".join(pieces)
        readings += tuple(
            v for v in dict.fromkeys(alone) if v not in (*readings, spelled.strip())
        )
        stem = spelled.rstrip(_EDGE_PUNCT + " ")
        return spelled, readings, tuple(f"{stem}, {g}" for g in dict.fromkeys(wider))

    def _affirmative(self, spans: list[tuple[int, int]], mended: list[_Token]) -> str:
        if not spans and not mended:
            return self.text  # nothing understood: the text exactly as typed
        pieces = []
        pos = 0
        for a, b in spans:
            pieces.append(self._as_read(pos, self.toks[a].start, mended))
            pos = self.toks[b - 1].end
        pieces.append(self._as_read(pos, len(self.text), mended))
        return _clean(" ".join(pieces))

    def _as_read(self, start: int, end: int, mended: list[_Token]) -> str:
        """text[start:end] with each typo the parser mended ("pinao") in the
        word it read ("piano")."""
        pieces, pos = [], start
        for tok in mended:
            if start <= tok.start and tok.end <= end:
                pieces += [self.text[pos : tok.start], tok.low]
                pos = tok.end
        return "".join([*pieces, self.text[pos:end]])


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
    text = re.sub(r"([.!?])(?:\s*[.!?,;:])+", r"\1", text)  # "vocals. . It"
    while True:
        stripped = _EDGE_RE.sub("", text).strip()
        if stripped == text:
            return text
        text = stripped
