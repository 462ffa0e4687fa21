"""Tag meanings and links: which of a bundle's tags a query attribute means.

What each tag means is read once per bundle (`bundle_tag_meanings`: fixed at
export, else read from its name), never at each search. A phrase is linked
to the tags that mean it (`link_tags`): by the lexicon's concepts, its kinds
and families, else by the text encoder; once per bundle and phrase.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .lexicon import Concept, lexicon

if TYPE_CHECKING:
    import numpy as np

    from .query import ParsedQuery

__all__ = [
    "TEXT_LINK_MAX",
    "TEXT_LINK_THRESHOLD",
    "TagMatch",
    "TagMeaning",
    "TextMatch",
    "broader",
    "bundle_tag_meanings",
    "forget_links",
    "link_by_lexicon",
    "link_by_text",
    "link_tags",
    "match_head",
    "match_tags",
    "narrower",
    "tag_meaning_text",
    "tag_meanings",
    "unknown_words",
]


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
    are absent; a tagger's prefix goes first ("msd:80s" reads "80s"). The
    one place that decides what a tag means.
    """
    from .query import parse_query

    labels = [_tag_label(name) for name in tag_names]
    return tuple(
        TagMeaning(_label_concept(label), tuple(parse_query(label).negated))
        for label in labels
    )


def _label_concept(label: str) -> str | None:
    """The concept a tag label names: as a query reads it, or, for a label
    that is a voice gender alone (a form of one), that gender's vocals.
    Music taggers label voice genders alone ("female", "woman", "male",
    "man" in MagnaTagATune), and such a tag fires on the singer, not on
    anything else a woman or man plays; other lone modifiers ("classic",
    "electric") narrow nothing the tag could mean."""
    from .query import VOICE_GENDERS, canonical_attribute

    concept = canonical_attribute(label)
    if concept is not None:
        return concept
    known = lexicon().concept(label.strip().lower())
    if known is None or known.id not in VOICE_GENDERS:
        return None
    return canonical_attribute(f"{known.id} vocals")


def _tag_label(name: str) -> str:
    """A tag name without the prefix that keeps two taggers' names apart."""
    prefix, sep, label = name.partition(":")
    return label if sep and prefix.isalnum() and label.strip() else name


class TagMatch(NamedTuple):
    """Indices of tags that say an attribute is present, and absent."""

    present: list[int]
    absent: list[int]

    by = "lexicon"  # what linked them (TextMatch: the text encoder)


class TextMatch(TagMatch):
    """Tags the text encoder linked to a phrase the lexicon does not link."""

    __slots__ = ()
    by = "text encoder"


def bundle_tag_meanings(bundle: Any) -> tuple[TagMeaning, ...]:
    """What each of a bundle's tags means: fixed at export where the bundle
    says (`bundle.tag_meanings`), else read from its tag names once."""
    meanings = getattr(bundle, "tag_meanings", None)
    if meanings is not None:
        return tuple(meanings)
    return tag_meanings(tuple(getattr(bundle, "tag_names", ()) or ()))


def _endings(attribute: str) -> list[str]:
    """The attribute and its shorter endings, longest first: "calm piano",
    "piano" (what a tag may name when none names the whole phrase)."""
    words = attribute.split()
    return [" ".join(words[i:]) for i in range(len(words))]


@functools.lru_cache(maxsize=1024)
def narrower(concept: str) -> frozenset[str]:
    """The concept and every kind of it, kinds of kinds included ("guitar"
    -> acoustic, electric, distorted guitar; lexicon broader/within)."""
    out, todo = {concept}, [concept]
    while todo:
        for kind in lexicon().kinds_of(todo.pop()):
            if kind not in out:
                out.add(kind)
                todo.append(kind)
    return frozenset(out)


@functools.lru_cache(maxsize=1024)
def broader(concept: str) -> tuple[str, ...]:
    """The families a concept belongs to, nearest first ("distorted guitar"
    -> electric guitar, guitar; lexicon broader)."""
    concepts = lexicon().concepts
    out: list[str] = []
    todo = [concept]
    while todo:
        entry = concepts.get(todo.pop(0))
        for family in entry.broader if entry else ():
            if family not in out and family != concept:
                out.append(family)
                todo.append(family)
    return tuple(out)


def _tags_meaning(meanings: Sequence[TagMeaning], concepts: frozenset[str]) -> TagMatch:
    """The tags whose meaning is one of `concepts` (or a narrowed form of
    one: a "male vocals" tag speaks about vocals), and those that say one
    is absent."""
    present, absent = [], []
    for index, meaning in enumerate(meanings):
        if concepts.intersection(meaning.absent):
            absent.append(index)
            continue
        concept = meaning.concept
        if concept is not None and (
            concept in concepts or lexicon().head(concept) in concepts
        ):
            present.append(index)
    return TagMatch(present, absent)


def link_by_lexicon(
    attribute: str, meanings: Sequence[TagMeaning], wanted: bool = False
) -> TagMatch:
    """The tags that mean `attribute`, by the lexicon's concepts.

    The attribute itself or one of its kinds; a wanted one else the same
    for its shorter endings down to its head concept (no tag says "calm
    piano", "piano" does), then its broader families, all of them ("techno"
    -> electronic, synthpop -> pop and electronic): evidence for the
    family is evidence for it, while leaving out a member says nothing of
    the family. A wanted genre with tags of its own takes its wider
    genres' tags too ("house": House, and the electronic tags). A wanted
    phrase about what a part plays is that part's ("flute solos": the
    flute's tags, not MTT's solo, which hears solo performances). Empty
    when the lexicon links nothing.
    """
    players = _players(attribute) if wanted else ()
    if not players:
        return _link_own(attribute, meanings, wanted)
    return _union(link_by_lexicon(part, meanings, True) for part in players)


def _union(matches: Iterable[TagMatch]) -> TagMatch:
    """The tags of several matches, each once, in the order they come."""
    present: list[int] = []
    absent: list[int] = []
    for match in matches:
        present += match.present
        absent += match.absent
    return TagMatch(list(dict.fromkeys(present)), list(dict.fromkeys(absent)))


def _families_tags(meanings: Sequence[TagMeaning], concept: str) -> TagMatch:
    """The tags of every family `concept` belongs to, nearest first
    (synthpop: pop's and electronic's; lexicon broader)."""
    return _union(_tags_meaning(meanings, narrower(f)) for f in broader(concept))


def _players(attribute: str) -> list[str]:
    """The parts a wanted phrase names before its head, where that head is
    what a part plays (lexicon grammar `played_parts`) or no concept: what
    plays the thing the phrase asks for ("flute" in "flute solos", "violin"
    in "violin concerto"). Not before anything else: "solo piano" is the
    piano's, "vocal jazz" jazz (not any song with a voice)."""
    lex = lexicon()
    head = lex.head(attribute)
    if head is not None and head not in lex.grammar.get("played_parts", ()):
        return []
    words = attribute.split()
    before = words[: len(words) - len(head.split())] if head else words
    named = _concepts_named(" ".join(before))
    return sorted(c for c in named if lex.concepts[c].kind == "part")


def _link_own(attribute: str, meanings: Sequence[TagMeaning], wanted: bool) -> TagMatch:
    """link_by_lexicon's tags of the phrase itself, its endings, families
    and, for a compound it knows, the concepts that compound names."""
    from .query import voice_in_gender_words

    head = lexicon().head(attribute)
    # The phrase down to its head concept when wanted; a negated phrase is
    # itself alone ("no male vocals" says nothing against a female voice).
    endings = _endings(attribute) if wanted else [attribute]
    if head in endings:
        endings = endings[: endings.index(head) + 1]
    # A voice keeps its gender before any shorter ending: no tag says
    # "female lead vocals" or "tenor vocals", the gendered vocal tags do
    # (and the plain vocal tags would hear a man in a woman's song).
    gendered = voice_in_gender_words(attribute)
    if gendered is not None and gendered not in endings:
        endings.insert(1, gendered)
    for ending in endings:
        match = _tags_meaning(meanings, narrower(ending))
        if match.present or match.absent:
            if wanted and lexicon().kind_of(ending) == "genre":
                # a wider genre's tags speak for a narrow one too ("house"
                # is electronic): the tagger's own narrow tag is seldom sure
                wider = _families_tags(meanings, ending).present
                present = list(dict.fromkeys([*match.present, *wider]))
                return TagMatch(present, match.absent)
            return match
    if wanted:
        for ending in endings:
            match = _families_tags(meanings, ending)
            if match.present or match.absent:
                return match
        if head is not None:
            # A compound the lexicon knows, no tag means and no family
            # covers is heard as the concepts its words name: "explicit
            # lyrics" is vocals, "slow tempo" slow, and "guitar solos" the
            # guitar's, as "flute solos" is the flute's (_players).
            named = _concepts_named(head) - {head}
            played = set(lexicon().grammar.get("played_parts", ()))
            if named - played:
                named -= played
            present = {
                i
                for part in named
                for i in link_by_lexicon(part, meanings, True).present
            }
            return TagMatch(sorted(present), [])
    return TagMatch([], [])


def match_tags(attribute: str, tag_names: Sequence[str]) -> TagMatch:
    """Which of a bundle's tags speak about `attribute`, by what they mean
    (tag_meanings): *present* evidence when a tag names the attribute or a
    kind of it ("vocal", "male vocal" for "vocals"), *absent* evidence when
    it says the attribute is absent ("no vocals", "instrumental")."""
    meanings = tag_meanings(tuple(tag_names))
    return _tags_meaning(meanings, narrower(attribute))


def match_head(attribute: str, tag_names: Sequence[str]) -> TagMatch:
    """The tags that speak about `attribute`, else about one of its endings
    ("calm piano" -> piano, "hip hop drums" -> drums); empty when none."""
    return link_by_lexicon(attribute, tag_meanings(tuple(tag_names)), wanted=True)


# A phrase the lexicon links to no tag is linked by the text encoder to the
# tags whose meaning stands out as closest to it: a cosine this many
# standard deviations above the phrase's mean cosine to all the bundle's tag
# meanings. Relative, because a text tower puts every word it does not know
# close to the same few meanings (high cosine, nothing distinctive). Chosen
# on the choose part of the real-recording check set as the lowest that
# links none of a list of words no tag means ("kazoo", "latin", "happy";
# tests/benchmarks/tag_links.py, docs/benchmarks.md "Query phrases linked
# to tags"): lower ones link more synonyms there, and wrong tags as often.
TEXT_LINK_THRESHOLD = 2.6
# Linked meanings per attribute at most (the closest): a word outside the
# lexicon means one or two concepts, not a family of tags.
TEXT_LINK_MAX = 2
_MAX_LINKS = 4096
_links: dict[tuple[str, str, bool], TagMatch] = {}
_meaning_vectors: dict[str, tuple[list[int], np.ndarray]] = {}


def tag_meaning_text(name: str, meaning: TagMeaning) -> str:
    """The text that stands for a tag's meaning when phrases are compared
    with it by the text encoder: its concept, else its name."""
    text = meaning.concept or _tag_label(name)
    return f"{text} music"


def _meaning_vectors_of(bundle: Any) -> tuple[list[int], np.ndarray]:
    """(tag indices, unit embeddings) of the tags that name something,
    embedded once per bundle identity."""
    import numpy as np

    key = str(bundle.identity)
    found = _meaning_vectors.get(key)
    if found is None:
        meanings = bundle_tag_meanings(bundle)
        names = list(bundle.tag_names)
        texts: dict[str, list[int]] = {}
        for index, meaning in enumerate(meanings):
            if not meaning.absent:
                texts.setdefault(tag_meaning_text(names[index], meaning), []).append(
                    index
                )
        vectors = bundle.embed_text(list(texts)) if texts else np.zeros((0, 1))
        rows = [i for members in texts.values() for i in members]
        repeat = [len(members) for members in texts.values()]
        found = (rows, np.repeat(vectors, repeat, axis=0))
        if len(_meaning_vectors) >= 8:
            _meaning_vectors.clear()
        _meaning_vectors[key] = found
    return found


def link_by_text(
    bundle: Any, attribute: str, threshold: float | None = None
) -> TagMatch:
    """The tags whose meaning the text encoder puts closest to the attribute,
    where that cosine stands `threshold` (TEXT_LINK_THRESHOLD) standard
    deviations above the phrase's mean cosine to the bundle's tag meanings;
    closest first, at most TEXT_LINK_MAX meanings."""
    import numpy as np

    if threshold is None:
        threshold = TEXT_LINK_THRESHOLD
    rows, vectors = _meaning_vectors_of(bundle)
    if len(rows) < 2:
        return TextMatch([], [])
    phrase = bundle.embed_attributes([f"{attribute} music"])[0]
    sims = vectors @ phrase
    # One value per meaning: tags that share a meaning share its cosine.
    distinct = np.unique(sims)
    spread = float(distinct.std())
    if spread <= 0:
        return TextMatch([], [])
    linked = distinct[(distinct - distinct.mean()) / spread >= threshold]
    floor = linked[-TEXT_LINK_MAX:][0] if len(linked) else np.inf
    order = np.argsort(-sims, kind="stable")
    return TextMatch([rows[i] for i in order if sims[i] >= floor], [])


# A word as unknown_words reads it (hyphens and apostrophes inside), and
# the parts of a phrase it compares (hyphens read as spaces, other signs
# dropped: "rock & roll", "hip-hop").
_WORD_RE = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_PART_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def unknown_words(parsed: ParsedQuery) -> str:
    """The words of the affirmative part the lexicon does not know (no
    concept's form, alone or within a phrase it knows, no filler or cue
    word), in order: what only the text encoder can link to tags. "hip
    hop" and "bossa nova" are known as phrases though "hop" and "nova"
    alone are not. Quoted text is the user's literal words."""
    from .query import FILLER_WORDS

    if '"' in parsed.affirmative:
        return ""
    forms = lexicon().forms
    words = _WORD_RE.findall(parsed.affirmative.casefold())
    known = _in_known_phrases(words)
    return " ".join(
        w
        for i, w in enumerate(words)
        if i not in known
        and w not in forms
        and w not in FILLER_WORDS
        and not w.isdigit()
    )


@functools.lru_cache(maxsize=1)
def _phrase_parts() -> tuple[frozenset[tuple[str, ...]], int]:
    """The lexicon's forms of several parts, as parts, and the most parts
    in one."""
    phrases = frozenset(
        parts
        for form in lexicon().forms
        if len(parts := tuple(_PART_RE.findall(form.replace("-", " ")))) > 1
    )
    return phrases, max(map(len, phrases), default=1)


def _in_known_phrases(words: Sequence[str]) -> set[int]:
    """Positions of the words wholly inside a form of several words ("hip
    hop", "rhythm and blues", "rock & roll"), the longest form at each
    position first."""
    phrases, longest = _phrase_parts()
    parts: list[str] = []
    owner: list[int] = []  # the word each part is of
    for index, word in enumerate(words):
        for part in _PART_RE.findall(word.replace("-", " ")):
            parts.append(part)
            owner.append(index)
    covered: set[int] = set()
    start = 0
    while start < len(parts):
        for size in range(min(longest, len(parts) - start), 1, -1):
            if tuple(parts[start : start + size]) in phrases:
                covered.update(range(start, start + size))
                start += size
                break
        else:
            start += 1
    partly = {index for p, index in enumerate(owner) if p not in covered}
    return set(owner) - partly


def forget_links() -> None:
    """Drop the remembered links and tag-meaning embeddings (a benchmark
    that changes TEXT_LINK_THRESHOLD resolves them again)."""
    _links.clear()
    _meaning_vectors.clear()


def link_tags(bundle: Any, attribute: str, wanted: bool = False) -> TagMatch:
    """The tags of `bundle` that mean `attribute`: by the lexicon, else by
    the text encoder; resolved once per (bundle, attribute) and remembered.

    A concept the lexicon knows but links to no tag is one no tag means,
    and the text encoder finds its neighbours, which the lexicon judges
    by their kinds (`_by_kind`); a negated compound it does not know as a
    whole ("screaming vocals", "twangy guitar") is judged as its head, and
    a wanted one ("tenor sax", "jazz ballads") keeps only the text
    encoder's links that mean a concept it names: narrowing a saxophone
    does not make a cello of it. Phrases the lexicon does not know at all
    ("EDM", "treble") are the text encoder's alone."""
    key = (str(bundle.identity), attribute, wanted)
    found = _links.get(key)
    if found is None:
        meanings = bundle_tag_meanings(bundle)
        found = link_by_lexicon(attribute, meanings, wanted)
        if not (found.present or found.absent) and hasattr(bundle, "embed_text"):
            found = link_by_text(bundle, attribute)
            known = lexicon().concept(attribute)
            head = lexicon().head(attribute)
            if known is None and head is not None and wanted:
                # A wanted compound ("tenor sax") narrows its head.
                found = _as_narrowed(found, meanings, attribute)
            elif known is None and head is not None:
                # A negated compound ("screaming vocals") is a narrowed
                # form of its head, judged as the head's kind.
                known = lexicon().concepts[head]
            if known is not None:
                found = _by_kind(found, meanings, known, wanted)
        if len(_links) >= _MAX_LINKS:
            _links.clear()
        _links[key] = found
    return found


def _as_narrowed(
    match: TagMatch, meanings: Sequence[TagMeaning], attribute: str
) -> TagMatch:
    """The text encoder's links of a wanted compound the lexicon knows only
    by its head ("tenor sax", "jazz ballads", "muted trumpet"; the lexicon
    links neither it nor its head to a tag): those whose meaning is a
    concept the compound names ("jazz ballads" -> jazz), not its other
    neighbours (cello for "tenor sax", loud for "muted trumpet")."""
    named = _concepts_named(attribute)
    kept = [i for i in match.present if meanings[i].concept in named]
    return type(match)(kept, match.absent)


def _concepts_named(attribute: str) -> frozenset[str]:
    """The concepts the words of `attribute` name, alone or as phrases
    ("jazz ballad" -> jazz, ballad)."""
    words = attribute.split()
    lex = lexicon()
    return frozenset(
        known.id
        for start in range(len(words))
        for end in range(start + 1, len(words) + 1)
        if (known := lex.concept(" ".join(words[start:end]))) is not None
    )


# The kinds a wanted concept's text-encoder links may mean besides its own:
# an adjective may name a genre's manner ("jazzy", "bluesy").
_ALSO_OF_KIND = {"quality": frozenset({"genre"})}


def _by_kind(
    match: TagMatch, meanings: Sequence[TagMeaning], known: Concept, wanted: bool
) -> TagMatch:
    """The text encoder's links of the lexicon's concept `known`, judged
    by the kinds of the tags' meanings (lexicon kinds).

    Wanted, a tag must mean a concept of its own kind and no other member
    of one of its families: the text encoder puts "uplifting" beside
    "loud", "electric" beside "electro" and "oboe" beside "flute" (a mood
    beside a loudness, a modifier beside a genre, one woodwind beside
    another); a modifier alone names no tag's meaning. Negated, a tag of
    its own kind is left out: another concept of that kind, which leaving
    this one out says nothing against ("no k-pop" keeps other pop, "no
    screaming" sung vocals, "no drum machine" drums, "no electric guitar"
    the other guitars, as the lexicon's own links keep a family). A tag
    of another kind stays, as evidence that comes with it ("acoustic
    guitar" -> MSD acoustic; docs/benchmarks.md measures dropping it)."""
    kind = known.kind
    if wanted:
        allowed = {kind, *_ALSO_OF_KIND.get(kind, ())}
        others = _siblings(known.id)
        kept = [
            i
            for i in match.present
            if (concept := meanings[i].concept) is not None
            and concept not in others
            and lexicon().kind_of(concept) in allowed
        ]
    else:
        kept = [
            i
            for i in match.present
            if (concept := meanings[i].concept) is None
            or lexicon().kind_of(concept) != kind
        ]
    return type(match)(kept, match.absent)


@functools.lru_cache(maxsize=1024)
def _siblings(concept: str) -> frozenset[str]:
    """The other members of the families `concept` belongs to (broader and
    within): "oboe" -> flute, clarinet... (woodwinds), less the families."""
    entry = lexicon().concepts[concept]
    families = {*entry.broader, *entry.within}
    members = {kind for family in families for kind in lexicon().kinds_of(family)}
    return frozenset(members - families - {concept})
