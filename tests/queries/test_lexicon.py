"""The concept lexicon: one vocabulary for parser, scoring and trainer; a parse
bounded by the text tower's limit and linear in what it reads."""

from __future__ import annotations

import fnmatch
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from beetsplug.clap import lexicon as lexicon_module
from beetsplug.clap.lexicon import LEXICON_PATH, LexiconError, lexicon, load
from beetsplug.clap.query import parse_query
from beetsplug.clap.taglinks import match_tags, tag_meanings


def test_the_lexicon_is_read_once() -> None:
    assert lexicon() is lexicon()
    assert load().concepts.keys() == lexicon().concepts.keys()


def test_synth_and_synthesizer_are_one_concept() -> None:
    """Queries and training texts name it the same way."""
    from trainer import vocab

    for word in ("synth", "synths", "synthesizer", "synthesiser"):
        assert parse_query(f"ambient without {word}").negated == ["synth"]
    assert vocab.HYPERNYMS["synth lead"] == ("synth",)
    assert lexicon().kinds_of("synth") == ("synth lead", "synth pad")


def test_every_trainer_term_is_a_concept_of_its_kind() -> None:
    from trainer import vocab

    kinds = {
        "style": {"genre"},
        "instrument": {"part"},
        "mood": {"mood"},
        "tempo": {"tempo"},
        "energy": {"energy"},
        "presence": {"part"},
    }
    for kind, terms in vocab.KINDS.items():
        for term in terms:
            assert lexicon().concepts[term].kind in kinds[kind], term
    assert vocab.ABSENCE_WORDS == {"vocals": ("instrumental",)}
    # "sad" covers melancholy, which no corpus label is: never all absent
    # (augment.hypernym_absences), so a clip is never told it is not sad.
    assert vocab.HYPERNYM_MEMBERS == {
        "guitar": ("acoustic guitar", "electric guitar", "distorted guitar"),
        "synth": ("synth lead", "synth pad"),
        "sad": ("melancholic", "melancholy"),
    }
    from trainer.augment import hypernym_absences

    assert "sad" not in hypernym_absences([m for m in vocab.MOODS if m != "sad"])


def test_caption_words_cover_the_corpus_labels() -> None:
    from trainer import vocab
    from trainer.synth import captions

    assert set(captions.ENERGY_WORDS) == set(vocab.ENERGIES)
    assert {"sung", "choir", "spoken"} <= set(captions.VOCAL_WORDS)
    assert all(words for words in captions.KIT_WORDS.values())


def test_kinds_of_a_family_in_file_order() -> None:
    lex = lexicon()
    assert lex.kinds_of("guitar") == (
        "acoustic guitar",
        "electric guitar",
        "distorted guitar",
    )
    assert lex.kinds_of("horns") == ("brass", "trumpet")
    assert lex.kinds_of("keyboards") == ("piano", "organ", "synth lead", "synth pad")
    assert lex.kinds_of("percussion") == ("drums",)
    assert lex.kinds_of("jazz") == ("bebop", "swing", "big band")
    assert lex.kinds_of("reggae") == ()


def test_the_lexicon_holds_the_concepts_a_genre_tagger_speaks_of() -> None:
    """Genres and moods of the MSD tag set are concepts already."""
    lex = lexicon()
    for genre in ("electronic", "techno", "metal", "jazz", "classical", "hip hop"):
        assert lex.concepts[genre].kind == "genre"
    for mood in ("sad", "melancholic", "happy", "chill"):
        assert lex.concepts[mood].kind == "mood"


def test_the_msd_taggers_words_reach_their_families() -> None:
    """Subgenres a tagger or a user names reach the family the synthetic
    corpus labels: "techno" is electronic, "heavy metal" is metal and rock."""
    lex = lexicon()
    electronic = lex.kinds_of("electronic")
    for word in (
        "techno",
        "house",
        "electronic dance music",
        "rave",
        "electronica",
        "electro",
        "synthwave",
    ):
        assert word in electronic, word
    assert lex.concepts["heavy metal"].broader == ("metal", "rock")
    assert "heavy metal" in lex.kinds_of("rock")
    assert "indie rock" in lex.kinds_of("indie")  # within: never a training word
    assert "symphonic" in lex.kinds_of("classical")
    # Families are corpus styles: training texts may say them instead.
    from trainer import vocab

    genres = {c.id for c in lex.of_kind("genre")}
    for term, families in vocab.HYPERNYMS.items():
        if term in genres:
            assert set(families) <= set(vocab.STYLES), term
    for word in ("EDM", "Hip-Hop", "electronica", "acapella", "symphonic"):
        assert parse_query(f"jazz without {word}").negated == [
            lex.concept(word.lower()).id
        ]


@pytest.mark.parametrize(
    ("genre", "family"),
    [("bluegrass", "country"), ("swing", "jazz"), ("rock and roll", "rock")],
)
def test_a_style_no_tag_names_reaches_its_familys_tags(genre: str, family: str) -> None:
    """No tagger has a bluegrass, swing or rock and roll tag: wanted, they
    reach their family's (country, jazz, rock), which speak for them;
    refusing one refuses no other member of the family."""
    from beetsplug.clap.taglinks import link_by_lexicon

    names = ("country", "msd:jazz", "msd:rock", "msd:pop")
    meanings = tag_meanings(names)
    match = link_by_lexicon(genre, meanings, wanted=True)
    assert [names[i] for i in match.present] == [n for n in names if n.endswith(family)]
    assert link_by_lexicon(genre, meanings, wanted=False).present == []
    assert family in lexicon().concepts[genre].broader


@pytest.mark.parametrize(
    "spelling",
    [
        "future bass",
        "breakcore",
        "ebm",
        "hardstyle",
        "eurodance",
        "big beat",
        "electroclash",
        "darkwave",
        "gabber",
        "goa trance",
        "chillwave",
        "witch house",
    ],
)
def test_styles_of_electronic_music_reach_its_tags(spelling: str) -> None:
    """No tagger names these styles, and the lexicon did not know them:
    "future bass" and "ebm" ranked the realset's electronic tracks last.
    Wanted, each now reaches the electronic tags; refused, it refuses no
    other electronic music."""
    from beetsplug.clap.taglinks import broader, link_by_lexicon

    (style,) = parse_query(spelling).affirmed
    assert "electronic" in broader(style)
    names = ("electronic", "msd:jazz", "msd:pop")
    meanings = tag_meanings(names)
    assert link_by_lexicon(style, meanings, wanted=True).present == [0]
    assert link_by_lexicon(style, meanings, wanted=False).present == []


@pytest.mark.parametrize("spelling", ["synthpop", "electro-pop", "electro pop"])
def test_a_style_of_two_families_reaches_both(spelling: str) -> None:
    """Synthpop is pop and electronic, and no tagger names it: wanted, it
    reaches both families' tags (it reached pop's alone, the first family
    with tags, and ranked electronic tracks below orchestral music)."""
    from beetsplug.clap.taglinks import link_by_lexicon

    assert parse_query(spelling).affirmed == ["synthpop"]
    names = ("msd:pop", "electronic", "msd:jazz", "techno")
    match = link_by_lexicon("synthpop", tag_meanings(names), wanted=True)
    assert [names[i] for i in match.present] == ["msd:pop", "electronic", "techno"]


def test_an_era_is_an_attribute_of_its_own() -> None:
    """A tagger's "80s" names a concept, as a user's "no 80s" does."""
    lex = lexicon()
    for era, spelling in (("60s", "sixties"), ("80s", "1980s"), ("00s", "2000s")):
        assert lex.concepts[era].kind == "era"
        assert lex.concept(spelling).id == era
        assert parse_query(f"rock, no {spelling}").negated == [era]
    assert parse_query("80s synth pop").affirmative == "80s synth pop"
    assert [m.concept for m in tag_meanings(("80s", "oldies", "weird"))] == [
        "80s",
        "oldies",
        None,
    ]


def test_a_bare_gender_tag_means_the_singer() -> None:
    """MagnaTagATune labels voice genders alone ("female", "woman", "male",
    "man"): they mean female and male vocals, as the MSD tagger's "female
    vocalists" does."""
    names = ("female", "woman", "male", "man", "msd:female vocalists", "weird")
    assert [m.concept for m in tag_meanings(names)] == [
        "female vocals",
        "female vocals",
        "male vocals",
        "male vocals",
        "female vocals",
        None,
    ]
    assert match_tags("female vocals", names).present == [0, 1, 4]
    assert match_tags("male vocals", names).present == [2, 3]


# The two taggers' vocal tags as the default bundle names them.
VOICE_TAGS = (
    "vocals",
    "female vocal",
    "male vocal",
    "msd:female vocalists",
    "msd:male vocalists",
    "no vocals",
    "choir",
)


@pytest.mark.parametrize(
    ("text", "wanted", "present"),
    [
        # a named gender anywhere before the voice keeps its gendered tags
        ("female lead vocals", True, [1, 3]),
        ("songs with a male lead", True, [2, 4]),
        ("a female lead singer", True, [1, 3]),
        # a range is sung in one gender's voice
        ("soprano", True, [1, 3]),
        ("a mezzo-soprano", True, [1, 3]),
        ("contralto", True, [1, 3]),
        ("tenor", True, [2, 4]),
        ("baritone singer", True, [2, 4]),
        ("sung by a soprano", True, [1, 3]),
        ("vocals by a countertenor", True, [2, 4]),
        # refused alike: "no male lead vocals" says nothing of a woman's
        ("jazz without male lead vocals", False, [2, 4]),
        ("rock, no tenor vocals", False, [2, 4]),
        # a choir keeps its own tags; a range before an instrument is no voice
        ("soprano choir", True, [6]),
        ("tenor sax", True, []),
    ],
)
def test_a_voice_keeps_its_gender_in_the_tags_it_reaches(
    text: str, wanted: bool, present: list[int]
) -> None:
    """No tag says "female lead vocals" or "tenor vocals": the gendered
    vocal tags speak for them, not every vocal tag (which hear a man in a
    woman's song as much as in a man's)."""
    from beetsplug.clap.taglinks import link_by_lexicon

    parsed = parse_query(text)
    attributes = parsed.affirmed if wanted else parsed.negated
    assert len(attributes) == 1, parsed
    match = link_by_lexicon(attributes[0], tag_meanings(VOICE_TAGS), wanted)
    assert match.present == present


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("tenor", "male vocals"),
        ("a tenor voice", "a male vocals"),
        ("soprano", "female vocals"),
        ("sung by a contralto", "female vocals"),
        ("soprano choir", "female choir"),
    ],
)
def test_a_voice_range_is_also_read_as_its_gender(text: str, reading: str) -> None:
    """The text tower never saw "tenor" in a caption: the wanted text is
    also read with the range's gender in its place."""
    parsed = parse_query(text)
    assert reading in parsed.whole_texts


@pytest.mark.parametrize(
    ("text", "whole_texts"),
    [
        ("female lead vocals", ("female lead vocals", "female vocals")),
        (
            "music by men",
            ("music by men", "music by male vocals", "male vocals"),
        ),
        ("tenor", ("tenor", "tenor vocals", "male vocals")),
        ("female vocals", ("female vocals",)),  # it is that already
        ("female choir", ("female choir",)),  # a choir stays a choir
        # in a longer description it is one detail among several
        ("jazz by women, no drums", ("jazz by women without drums",)),
    ],
)
def test_a_gendered_voice_is_also_read_alone(
    text: str, whole_texts: tuple[str, ...]
) -> None:
    """A plain description of one voice a gender or range narrows is also
    read as that gender's voice alone: the text tower knows "male vocals"
    far better than "music by male vocals" (chosen on the realset's choose
    part)."""
    assert parse_query(text).whole_texts == whole_texts


@pytest.mark.parametrize(
    ("text", "affirmed"),
    [
        ("female", ["female vocals"]),
        ("songs by women", ["female vocals"]),
        ("songs by female artists", ["female vocals"]),
        ("a female lead", ["female lead vocals"]),
        ("male and female", ["male vocals", "female vocals"]),
        ("soprano", ["soprano vocals"]),
        ("a diva", ["female vocals"]),
        ("jazz by women, no drums", ["jazz", "female vocals"]),
        ("women only", ["female vocals"]),
        # who plays a part, not a voice
        ("a woman playing piano", ["piano"]),
        ("a man on guitar", ["guitar"]),
        ("guitar by a man", ["guitar"]),
        # a title: the negation's cue takes the word
        ("No Woman No Cry", []),
        ("No Woman, No Cry", []),
        ("Everything but the Girl", []),
        # a part after the modifiers: they narrow it
        ("female choir", ["female choir"]),
        ("tenor sax", ["tenor saxophone"]),
        # a way of singing stands for the voice too ("yodeling" ranked
        # instrumentals first)
        ("yodeling", ["yodeling vocals"]),
        ("crooning", ["crooning vocals"]),
        ("gregorian chant", ["chanting vocals"]),
        ("scat singing", ["scat vocals"]),
        ("a woman humming", ["female humming vocals"]),
        ("humming synths", ["humming synth"]),
    ],
)
def test_a_lone_gender_or_range_names_a_voice(text: str, affirmed: list[str]) -> None:
    """A voice's gender or range with no part after it stands for that
    voice in what the description wants ("female": the text tower alone
    ranked instrumentals first), and the wanted text spells it so."""
    parsed = parse_query(text)
    assert parsed.affirmed == affirmed
    assert not any("vocals" in n for n in parsed.negated)
    if not parsed.negated:
        voiced = any(a.endswith("vocals") for a in affirmed)
        assert any("vocals" in t for t in parsed.whole_texts) == voiced


@pytest.mark.parametrize(
    ("text", "affirmed", "negated"),
    [
        ("without women", [], ["female vocals"]),
        ("no men", [], ["male vocals"]),
        ("jazz, no women", ["jazz"], ["female vocals"]),
        ("no songs by men", [], ["male vocals"]),
        ("nothing by female artists", [], ["female vocals"]),
        ("no boy bands", [], ["male vocals"]),
        # lists of them, and with parts
        ("neither male nor female", [], ["male vocals", "female vocals"]),
        ("no men or drums", [], ["male vocals", "drums"]),
        ("no drums or men", [], ["drums", "male vocals"]),
        ("no women, no drums", [], ["female vocals", "drums"]),
        # a way of singing refused is that voice alone, not every voice
        ("no humming", [], ["humming vocals"]),
        ("jazz without scat", ["jazz"], ["scat vocals"]),
    ],
)
def test_a_lone_gender_a_cue_refuses_is_that_voice_refused(
    text: str, affirmed: list[str], negated: list[str]
) -> None:
    """ "no songs by men" asked for a man's voice: the lone voice was read
    where the cue found no part. A cue refuses it now (a refused gender is
    told from the other, scoring.contrasted), but for a weak cue opening a
    text that goes on ("No Woman, No Cry") or one person ("the Girl")."""
    parsed = parse_query(text)
    assert (parsed.affirmed, parsed.negated) == (affirmed, negated)


def test_a_lone_voice_takes_the_filler_nouns_after_it() -> None:
    assert parse_query("songs by female artists").whole_texts == (
        "songs by female artists",
        "songs by female vocals",
        "female vocals",
    )


def test_gender_words_narrow_a_voice() -> None:
    """ "a woman singing" asks for female vocals, "no men singing" negates
    male vocals: a gender word narrows the voice as "female" does."""
    assert parse_query("a woman singing").affirmed == ["female vocals"]
    assert parse_query("women choir").affirmed == ["female choir"]
    assert parse_query("jazz, no men singing").negated == ["male vocals"]
    assert parse_query("a man talking").affirmed == ["male speech"]
    assert parse_query("songs sung by a woman").affirmed == ["female vocals"]
    assert parse_query("jazz, no vocals by men").negated == ["male vocals"]
    assert parse_query("guitar by a man").affirmed == ["guitar"]  # not a voice
    assert parse_query("songs by women").affirmed == ["female vocals"]
    assert parse_query("a girl singing").affirmed == ["female vocals"]
    assert parse_query("jazz with ladies singing").affirmed == ["jazz", "female vocals"]
    assert parse_query("a guy singing").affirmed == ["male vocals"]
    assert parse_query("boys choir").affirmed == ["male choir"]
    assert parse_query("a woman sings").affirmed == ["female vocals"]
    assert parse_query("where a man sings").affirmed == ["male vocals"]
    assert parse_query("a woman's voice").affirmed == ["female vocals"]
    assert parse_query("without a woman's voice").negated == ["female vocals"]
    assert parse_query("men's voices").affirmed == ["male vocals"]


def test_everyday_words_are_not_jargon() -> None:
    """ "vibes" is a mood far more often than a vibraphone; styles people name
    are concepts (so they can be negated), inside the family that covers
    them without becoming one the trainer's hypernyms count."""
    assert parse_query("chill vibes").affirmed == ["chill"]
    assert parse_query("vibraphone jazz").affirmed == ["vibraphone jazz"]
    assert parse_query("video game music").affirmed == ["video game music"]
    assert parse_query("no game soundtracks").negated == ["video game music"]
    assert parse_query("elevator music").affirmed == ["easy listening"]
    assert parse_query("show tunes").affirmed == ["musical theatre"]
    assert parse_query("not celtic").negated == ["celtic"]
    assert parse_query("string instruments").affirmed == ["strings"]
    assert parse_query("no brass instruments").negated == ["brass"]
    assert parse_query("no crowd noise").negated == ["crowd noise"]
    assert parse_query("no explicit lyrics").negated == ["explicit lyrics"]
    assert parse_query("no ballads").negated == ["ballad"]
    # kinds the lexicon has no concept for narrow their instrument
    assert parse_query("no grand piano").negated == ["grand piano"]
    assert parse_query("slide guitar").kind_readings == ()
    assert parse_query("no rhodes").negated == ["electric piano"]
    assert "video game music" in lexicon().kinds_of("soundtrack")
    assert lexicon().concepts["video game music"].broader == ()


def test_acronyms_are_spelled_out_for_the_text_tower() -> None:
    """The text tower reads a concept by its id: an acronym it does not know
    ("EDM") is read spelled out, beside the text as typed."""
    assert parse_query("EDM").whole_texts[:2] == ("EDM", "electronic dance music")
    assert parse_query("idm").affirmed == ["intelligent dance music"]
    assert parse_query("some IDM").spelled == "some intelligent dance music"


def test_ways_of_speaking_and_of_saying_no_voice() -> None:
    for text in (
        "someone reading aloud",
        "a radio show",
        "talk shows",
        "a man reading",
        "a woman reading a book",
        "a recorded message",
        "an audio book",
        "voice notes",
        "guided meditation",
        "a bedtime story",
        "a comedian",
        "a radio drama",
        "a news report",
    ):
        assert parse_query(text).affirmed == ["speech"], text
    # music to read to is music
    for text in ("music for reading", "reading music", "Love Story", "Good News"):
        assert parse_query(text).affirmed == [], text
    assert parse_query("songs with words").affirmed == ["vocals"]
    # the longer phrase wins: spoken word is speech, not a voice
    assert parse_query("spoken word").affirmed == ["speech"]
    assert parse_query("unplugged").affirmed == ["acoustic"]
    assert parse_query("a film score").affirmed == ["soundtrack"]
    assert parse_query("chamber music").affirmed == ["chamber music"]
    assert "chamber music" in lexicon().kinds_of("classical")


def test_a_part_that_drives_or_leads_is_wanted_on_its_own() -> None:
    """ "sax-driven jazz" asks for saxophone and jazz: the featured part
    modifies no word after it."""
    parsed = parse_query("sax-driven jazz")
    assert parsed.affirmed == ["saxophone", "jazz"]
    assert parsed.whole_texts == ("sax-driven jazz", "saxophone jazz")
    assert parse_query("piano-led ballads").affirmed == ["piano", "ballad"]
    assert parse_query("bass-heavy dubstep").affirmed == ["bass", "dubstep"]
    assert parse_query("smooth sax-driven jazz").affirmed == [
        "smooth saxophone",
        "jazz",
    ]
    assert parse_query("data-driven").affirmed == []  # no part: as typed
    # "piano-only" is "piano only": the part, read alone
    assert parse_query("guitar-only tracks").affirmed == ["guitar"]
    assert parse_query("piano-only").whole_texts == ("piano-only", "piano")
    # a gender that fronts or leads is that gender's voice
    assert parse_query("female-fronted metal").affirmed == ["female vocals", "metal"]
    assert parse_query("no female-fronted bands").negated == ["female vocals"]


def test_woodwinds_cover_their_kinds_wanted_and_negated() -> None:
    assert set(lexicon().kinds_of("woodwinds")) == {
        "saxophone",
        "flute",
        "clarinet",
        "oboe",
        "bassoon",
    }
    assert parse_query("jazz, no wind instruments").negated == ["woodwinds"]
    assert "flute" in parse_query("woodwinds").whole_texts
    assert parse_query("a drumbeat").affirmed == ["drums"]
    assert parse_query("synth lead over a pad").affirmed == ["synth lead", "synth pad"]
    assert parse_query("quick").affirmed == ["fast"]


def test_playlist_descriptors_are_concepts() -> None:
    lex = lexicon()
    assert set(lex.descriptors) == {"genres", "moods", "instruments", "presence"}
    for words in lex.descriptors.values():
        assert all(word in lex.concepts for word in words)


def test_tag_meanings_are_read_once_per_tag_set() -> None:
    names = ("vocal", "male vocal", "no vocals", "instrumental", "synth", "weird")
    tag_meanings.cache_clear()
    first = tag_meanings(names)
    assert first == tag_meanings(names)
    assert tag_meanings.cache_info().hits == 1
    assert [m.concept for m in first] == [
        "vocals",
        "male vocals",
        None,
        "instrumental",
        "synth",
        None,
    ]
    assert [m.absent for m in first] == [(), (), ("vocals",), ("vocals",), (), ()]
    assert match_tags("vocals", names) == ([0, 1], [2, 3])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "concepts:\n  noise: {a: []}\n",
            "concepts.noise: unknown kind; choose one of part, genre",
        ),
        (
            "concepts:\n  part:\n    drums: [drum]\n    snare: [drum]\n",
            "concepts.part.snare: form 'drum' already names 'drums'",
        ),
        (
            "concepts:\n  part:\n    violin: {broader: [strings]}\n",
            "concepts.part.violin: 'strings' is no concept",
        ),
        (
            "concepts:\n  part:\n    drums: [no]\n",
            "concepts.part.drums.forms: expected a list of words, got [False]",
        ),
        ("concepts: [\n", "cannot read lexicon"),
    ],
)
def test_a_broken_lexicon_is_one_clear_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LexiconError) as info:
        load(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_quiet_cue_must_be_a_cue(tmp_path: Path) -> None:
    """A cue the parser may see a text end with must be one it reads."""
    text = LEXICON_PATH.read_text(encoding="utf-8").replace(
        "  quiet: [zero,", "  quiet: [kazoo, zero,"
    )
    assert "quiet: [kazoo" in text
    path = tmp_path / "lexicon.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LexiconError, match=r"cues\.quiet: 'kazoo' is no cue"):
        load(path)


@pytest.mark.parametrize("word", ["kazooo", "drum kit", "sax"])
def test_a_typo_tolerant_word_is_one_word_the_lexicon_reads(
    tmp_path: Path, word: str
) -> None:
    """A typo is read as one of these words: unknown words, phrases and short
    words (one slip from too much) are refused when the lexicon is read."""
    text = LEXICON_PATH.read_text(encoding="utf-8").replace(
        "  typo_tolerant: [without,", f"  typo_tolerant: [{word}, without,"
    )
    assert f"typo_tolerant: [{word}," in text
    path = tmp_path / "lexicon.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LexiconError, match=r"grammar\.typo_tolerant: .* is no single"):
        load(path)


@pytest.mark.parametrize(
    ("name", "word", "reason"),
    [
        ("female_voice_ranges", "trumpet", "is no modifier"),
        ("male_voice_ranges", "trumpet", "is no modifier"),
        ("played_parts", "jazz", "is no part"),
        ("played_with_a_mute", "jazz", "is no part"),
    ],
)
def test_a_grammar_list_holds_words_of_its_kind(
    tmp_path: Path, name: str, word: str, reason: str
) -> None:
    """A voice range narrows a voice as a gender does (a modifier);
    `played_parts` names what an instrument plays ("solos") and
    `played_with_a_mute` the instruments a mute is played with (parts): a
    word the lexicon reads as anything else is refused when it is read."""
    text = LEXICON_PATH.read_text(encoding="utf-8").replace(
        f"  {name}: [", f"  {name}: [{word}, "
    )
    assert f"{name}: [{word}," in text
    path = tmp_path / "lexicon.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LexiconError, match=rf"grammar\.{name}: '{word}' {reason}"):
        load(path)


def test_the_shipped_file_is_the_package_data() -> None:
    assert LEXICON_PATH.parent == Path(lexicon_module.__file__).parent
    assert LEXICON_PATH.name == "lexicon.yaml"
    pyproject = tomllib.loads(
        (Path(__file__).parents[2] / "pyproject.toml").read_text()
    )
    globs = pyproject["tool"]["setuptools"]["package-data"]["beetsplug.clap"]
    assert any(fnmatch.fnmatch(LEXICON_PATH.name, g) for g in globs), globs


# --------------------------------------------------------------------------
# Bounded, linear parsing
# --------------------------------------------------------------------------


def test_a_parse_reads_at_most_max_tokens() -> None:
    text = ("high " * 2000)[:10_000]
    parsed = parse_query(text, max_tokens=128)
    assert parsed.text == " ".join(["high"] * 128)
    assert parsed.affirmative == parsed.text
    # A negation within the limit counts, one past it cannot reach the model.
    near = "jazz without vocals, " + "la " * 200 + "and no drums"
    assert parse_query(near, max_tokens=64).negated == ["vocals"]
    assert parse_query(near, max_tokens=1000).negated == ["vocals", "drums"]
    # A short text is read whole.
    assert parse_query("jazz without vocals", max_tokens=3).negated == ["vocals"]
    # A cut that lands right after a cue leaves nothing dangling: the words
    # went on past it ("names nothing to leave out" blamed the user's text).
    cut = parse_query("jazz without vocals, without drums", max_tokens=5)
    assert cut.text == "jazz without vocals, without"
    assert cut.dangling is None
    assert cut.negated == ["vocals"]
    assert parse_query("jazz without vocals, without", max_tokens=5).dangling == (
        "without"
    )
    with pytest.raises(ValueError, match="max_tokens must be at least 1"):
        parse_query("jazz", max_tokens=0)


def _work(text: str) -> int:
    """Python and C function calls one parse makes: its work, counted
    rather than timed."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        parse_query(text, max_tokens=100_000)
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize(
    "unit",
    [
        "high ",  # a run of modifiers: no attribute can start anywhere
        "female lead ",  # one run of modifiers that names a voice
        "no women ",
        "no drums, ",  # a cue per item, a comma list never closed
        ", no drums",
        "no drums or ",  # one list through every cue
        "no drums nor bass, ",
        "without high ",
        "no ",
        "- ",
        "drum-free non vocal jazz ",
        '"no drums" ',
        "calm piano with guitar ",
    ],
)
def test_parsing_work_grows_linearly(unit: str) -> None:
    small, large = _work(unit * 100), _work(unit * 400)
    assert large <= 4.4 * small, (small, large)


def test_the_parser_finds_every_clause_of_a_long_text() -> None:
    text = ", ".join(f"piece {i} without drums" for i in range(100))
    parsed = parse_query(text)
    assert parsed.negated == ["drums"]
    assert Counter(c.kind for c in parsed.clauses) == {"cue": 100}


@pytest.mark.parametrize(
    ("text", "affirmed", "negated"),
    [
        ("a guitarist playing", ["guitar"], []),
        ("solo pianist", ["solo piano"], []),
        ("jazz without a saxophonist", ["jazz"], ["saxophone"]),
        ("no drummer", [], ["drums"]),
        ("someone speaking", ["speech"], []),
        ("a podcast", ["speech"], []),
        ("no talking", [], ["speech"]),
    ],
)
def test_players_and_speakers_name_what_is_heard(
    text: str, affirmed: list[str], negated: list[str]
) -> None:
    """Who plays names the instrument, and ways of speaking name speech, so
    tags and the speech rule read them (a description that asks for speech
    is not pushed below music)."""
    from beetsplug.clap.scoring import wants_voice

    parsed = parse_query(text)
    assert (parsed.affirmed, parsed.negated) == (affirmed, negated)
    assert wants_voice(parsed) == ("speech" in affirmed)


def test_typo_tolerant_words_are_no_slip_from_another_word() -> None:
    """A word one slip from a typo-tolerant one is read as it: the words of
    their own among those are exactly the grammar's `typo_keep`, read as
    typed. The shipped text encoder's vocabulary stands for the words people
    type ("drugs" stays drugs)."""
    import json

    from queries_helpers import ROOT

    from beetsplug.clap.query import _KNOWN_WORDS, _one_slip

    tokenizer = json.loads((ROOT / "models/clap-default/tokenizer.json").read_text())
    words = {w for w in tokenizer["model"]["vocab"] if w.isalpha()} - _KNOWN_WORDS
    assert len(words) > 10_000
    tolerant = lexicon().grammar["typo_tolerant"]
    clashes = {w for w in words for t in tolerant if _one_slip(w, t)}
    assert clashes == set(lexicon().grammar["typo_keep"])
    assert [w for w in words if _one_slip(w, "drums")] == ["drugs"]


@pytest.mark.parametrize(
    ("typed", "word"),
    [
        ("witout", "without"),  # a letter missing
        ("whithout", "without"),  # one extra
        ("wothout", "without"),  # one wrong
        ("wihtout", "without"),  # two swapped
        ("pinao", "piano"),
        ("guitr", "guitar"),
        ("jaz", "jazz"),
        ("without", "without"),
        ("whitout", "whitout"),  # two slips
        ("drugs", "drugs"),  # a word of its own
        ("drms", "drums"),
        ("vocsls", "vocals"),
        ("femal", "female"),
        ("sigers", "singers"),
        ("guitars", "guitars"),  # a word the lexicon knows
    ],
)
def test_one_slip_from_a_tolerant_word_is_read_as_it(typed: str, word: str) -> None:
    from beetsplug.clap.query import _mend

    assert _mend(typed) == word
