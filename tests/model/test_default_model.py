"""The shipped default bundle: loads offline, pinned outputs, sane rankings.

Golden vectors pin the bundle's outputs for generated inputs, so a changed
model file, tokenizer, onnxruntime upgrade or windowing change that moves
results is noticed. Regenerate them (after a deliberate model change) with
`python tests/model/golden.py --write`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beetsplug.clap.model import Bundle, default_bundle_path

HERE = Path(__file__).resolve().parent
GOLDEN = json.loads((HERE / "golden.json").read_text())
# Golden vectors are compared whole. int8 kernels may differ in the last bits
# between CPUs (AVX2 vs AVX-512 VNNI), so a recorded vector is matched with a
# tolerance: cosine >= MIN_COSINE, and no component off by more than ATOL.
# A cosine of 0.999 between unit vectors allows an RMS drift of about 0.003 a
# component; ATOL is about three times that, what a drift spread over all
# components reaches at its largest, so a drift concentrated in a few
# components is caught as well as a small turn of the whole vector.
MIN_COSINE = 0.999
ATOL = 0.01
# What "no drums" must achieve on a pair of renders that differ only in the
# drums: the drumless one ranked first by at least this, on the cosine scale
# the scores live on (the same step the text tower alone must take).
MARGIN = 0.05
# Wordings of a negated drum part: the training texts' own, and ones no
# training text uses ("drumless", "leave out the drums") that the parser
# reads as the same negation, so the query layer's tag evidence for drums
# counts against the drummed render whatever the text tower makes of the
# words. Each is held to MARGIN on every pair.
WORDINGS = (
    "no drums",
    "music without drums",
    "without drums",
    "drumless",
    # cues the parser reads after the part or as verbs, and a caption's way
    "the drums removed",
    "leave out the drums",
    "hardly any drums",
    "No drums are heard.",
    # what a listener says of a part they do not want, and a form's answer
    "i hate drums",
    "fewer drums",
    "drums: none",
)


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return Bundle.load(default_bundle_path(), threads=1)


def _assert_matches_golden(got: np.ndarray, want: list[float], what: str) -> None:
    got = np.asarray(got, dtype=np.float64)
    want_v = np.asarray(want, dtype=np.float64)
    assert got.shape == want_v.shape, what
    cosine = got @ want_v / (np.linalg.norm(got) * np.linalg.norm(want_v))
    assert cosine >= MIN_COSINE, f"{what}: cosine {cosine:.5f}"
    np.testing.assert_allclose(got, want_v, rtol=0, atol=ATOL, err_msg=what)


def test_default_bundle_is_the_golden_one(bundle: Bundle) -> None:
    assert bundle.manifest["name"] == GOLDEN["name"]
    assert bundle.identity == GOLDEN["identity"]
    total = sum(p.stat().st_size for p in bundle.path.iterdir() if p.is_file())
    assert total <= 40 * 2**20  # issue 5: the whole bundle at most 40 MB


def test_text_embeddings_match_golden(bundle: Bundle) -> None:
    from golden import TEXTS

    got = bundle.embed_text(TEXTS)
    for text, row in zip(TEXTS, got, strict=True):
        _assert_matches_golden(row, GOLDEN["text"][text], text)


def test_audio_embeddings_match_golden(bundle: Bundle) -> None:
    from golden import signals

    for name, window in signals(bundle).items():
        emb, tags = bundle.embed_audio(window[None])
        _assert_matches_golden(emb[0], GOLDEN["audio"][name], name)
        if tags is not None:
            _assert_matches_golden(tags[0], GOLDEN["tags"][name], f"{name} tags")


def _assert_no_drums_prefers(
    bundle: Bundle, drumless: np.ndarray, drummed: np.ndarray, what: str
) -> None:
    """Every wording of "no drums" ranks each drumless render above its
    drummed twin by MARGIN."""
    from beetsplug.clap.search import DEFAULT_NEGATION_WEIGHT, embed_query

    audio, tags = bundle.embed_audio(np.concatenate([drumless, drummed]))
    n = len(drumless)
    for text in WORDINGS:
        query = embed_query(bundle, text, DEFAULT_NEGATION_WEIGHT)
        scores = query.score(audio, tags)
        margins = scores[:n] - scores[n:]
        assert (margins > MARGIN).all(), (what, text, margins)


def test_drum_loop_outranks_a_held_chord_for_drums(bundle: Bundle) -> None:
    from golden import signals

    sig = signals(bundle)
    audio, _tags = bundle.embed_audio(np.stack([sig["drum_loop"], sig["chord"]]))
    with_drums, without_drums = bundle.embed_text(
        ["music with drums", "music without drums"]
    )
    # The model alone. These generated signals are far from anything it
    # trained on (noise-burst drums, a sine chord) and the loop is nearer to
    # most texts. What must hold: "with" prefers the loop, and negating it
    # moves the ranking towards the chord by a clear margin.
    loop_minus_chord = audio[0] - audio[1]
    assert loop_minus_chord @ with_drums > 0
    assert loop_minus_chord @ with_drums > loop_minus_chord @ without_drums + MARGIN
    # What `beet clap "no drums"` ranks by: the query layer with the tagger.
    _assert_no_drums_prefers(
        bundle, sig["chord"][None], sig["drum_loop"][None], "chord vs loop"
    )


def test_no_drums_ranks_music_above_itself_with_a_drum_kit(bundle: Bundle) -> None:
    """Minimal pairs (renders.py): a piano, a pad and a bass-and-organ bed,
    each alone and with a drum kit over it. The bundle's drums tag is the
    reference that these are drums to a tagger of real recordings; the text
    query must then rank every bed above its drummed twin, as the tag does."""
    from renders import minimal_pairs

    pairs = minimal_pairs(bundle.sample_rate, bundle.window_seconds)
    drumless = np.stack([bed for bed, _ in pairs.values()])
    drummed = np.stack([mixed for _, mixed in pairs.values()])
    audio, tags = bundle.embed_audio(np.concatenate([drumless, drummed]))
    n = len(pairs)
    if tags is not None:
        drums = bundle.manifest["audio"]["tags"].index("drums")
        assert (tags[n:, drums] > tags[:n, drums]).all(), tags[:, drums]
    with_drums, without_drums = bundle.embed_text(
        ["music with drums", "music without drums"]
    )
    # The text tower alone: on each pair "with" prefers the drums and
    # "without" moves the ranking towards the bed by MARGIN.
    drummed_minus_bed = audio[n:] - audio[:n]
    assert (drummed_minus_bed @ with_drums > 0).all()
    assert (
        drummed_minus_bed @ with_drums > drummed_minus_bed @ without_drums + MARGIN
    ).all()
    _assert_no_drums_prefers(bundle, drumless, drummed, "beds")


def test_a_negated_family_is_embedded_with_its_kinds(bundle: Bundle) -> None:
    """ "rock without guitar" embeds the word and each kind of guitar, as
    the text tower embeds them on their own (remembered after first use)."""
    from beetsplug.clap.scoring import attribute_phrases
    from beetsplug.clap.search import DEFAULT_NEGATION_WEIGHT, embed_query

    query = embed_query(bundle, "rock without guitar", DEFAULT_NEGATION_WEIGHT)
    phrases = list(attribute_phrases("guitar"))
    assert len(phrases) == 4
    assert query.phrase_counts == (4,)
    np.testing.assert_allclose(
        query.negated_vectors, bundle.embed_text(phrases), atol=1e-6
    )


def test_a_concept_no_tag_means_is_linked_by_the_kinds_it_allows(
    bundle: Bundle,
) -> None:
    """A concept the lexicon knows and links to no tag is linked by the
    text encoder, judged by the lexicon's kinds. Negated, never to a tag
    of its own kind ("folk without electric guitar" must not count an
    acoustic guitar against a track, "no k-pop" other pop, "no screaming"
    a singer); wanted, only to tags of its own kind that are not its
    family's other members. A negated compound it does not know
    ("screaming vocals") is judged as its head; a wanted one ("tenor sax")
    keeps only links to concepts it names. Wanted, its families speak for
    it first (lexicon broader)."""
    from beetsplug.clap.lexicon import lexicon
    from beetsplug.clap.taglinks import bundle_tag_meanings, forget_links, link_tags

    forget_links()
    names = list(bundle.tag_names)
    meanings = bundle_tag_meanings(bundle)

    def linked(attribute: str, wanted: bool) -> set[str]:
        match = link_tags(bundle, attribute, wanted)
        return {meanings[i].concept or names[i] for i in match.present}

    guitar = {i for i, m in enumerate(meanings) if m.concept == "guitar"}
    assert guitar
    assert guitar <= set(link_tags(bundle, "electric guitar", wanted=True).present)
    checked = 0
    for concept in lexicon().concepts:
        match = link_tags(bundle, concept)
        if match.by != "text encoder":
            continue
        checked += 1
        kind = lexicon().kind_of(concept)
        same = [
            names[i]
            for i in match.present
            if meanings[i].concept and lexicon().kind_of(meanings[i].concept) == kind
        ]
        assert not same, (concept, same)
    assert checked > 100
    assert not linked("electric guitar", False) & {"guitar", "acoustic guitar"}
    assert not linked("k-pop", False) & {"pop", "indie pop"}
    assert not linked("harsh vocals", False) & {"female vocals", "male vocals"}
    assert "drums" not in linked("drum machine", False)
    assert "acoustic" in linked("acoustic guitar", False)  # another kind: kept
    # A negated compound the lexicon does not know is judged as its head.
    assert not linked("screaming vocals", False) & {"female vocals", "male vocals"}
    assert not linked("twangy guitar", False) & {"guitar", "acoustic guitar"}
    # Wanted: the text encoder's neighbours of another kind or family, left
    # out...
    assert "loud" not in linked("uplifting", True)
    assert "soft" not in linked("moody", True)
    assert not linked("electric", True)  # a modifier alone: no tag's meaning
    assert "flute" not in linked("oboe", True)  # another woodwind
    assert "electro" not in linked("electric piano", True)
    # ...its own kind's kept: a genre's genre, an adjective's genre.
    assert "pop" in linked("k-pop", True)
    assert "jazz" in linked("jazzy", True)
    assert link_tags(bundle, "k-pop", wanted=True).by == "text encoder"
    # A wanted compound the lexicon knows by its head alone: no other
    # instrument's or a loudness's tag (the text encoder put cello beside
    # "tenor saxophone", loud beside "muted trumpet"), but a genre it names.
    assert not linked("tenor saxophone", True)
    assert not linked("bass clarinet", True)
    assert not linked("muted trumpet", True)
    assert "jazz" in linked("jazz ballad", True)
    assert "blues" in linked("blues harmonica", True)
    forget_links()


def _linked(bundle: Bundle, attribute: str, wanted: bool) -> set[str]:
    """The concepts (else the tag names) of the tags `link_tags` gives."""
    from beetsplug.clap.taglinks import bundle_tag_meanings, link_tags

    meanings = bundle_tag_meanings(bundle)
    match = link_tags(bundle, attribute, wanted)
    return {meanings[i].concept or bundle.tag_names[i] for i in match.present}


def test_a_known_compound_no_tag_means_is_heard_as_what_it_names(
    bundle: Bundle,
) -> None:
    """A compound the lexicon knows, that no tag means and no family
    covers, reaches the tags of the concepts its words name when wanted
    ("guitar solos" had no tag at all, so the guitar tags never spoke for
    a guitar solo; "slow tempo" none while "fast tempo" had fast), by the
    lexicon; negated, it is refused alone (a guitar without a solo is not
    what "no guitar solos" refuses)."""
    from beetsplug.clap.lexicon import lexicon
    from beetsplug.clap.taglinks import forget_links, link_tags

    forget_links()

    def linked(attribute: str, wanted: bool) -> set[str]:
        return _linked(bundle, attribute, wanted)

    assert lexicon().concept("guitar solos") is not None
    for phrase in ("guitar solos", "calm guitar solos"):
        match = link_tags(bundle, phrase, wanted=True)
        assert match.by == "lexicon", phrase
        assert linked(phrase, True) == {"guitar"}, phrase
    assert linked("drum solos", True) == {"drums"}
    assert linked("slow tempo", True) == {"slow"}
    assert linked("fast tempo", True) == {"fast"}
    assert "vocals" in linked("explicit lyrics", True)
    assert "strings" in linked("string quartet", True)
    assert "guitar" not in linked("guitar solos", False)
    assert "drums" not in linked("drum solos", False)
    forget_links()


def test_what_a_part_plays_is_that_parts(bundle: Bundle) -> None:
    """A wanted phrase about what a part plays (lexicon grammar
    `played_parts`) reaches the tags of the part named before it, not
    MTT's "solo" (solo performances): "flute solos" had the solo tag
    alone, "guitar riffs" no tag. A part before anything else keeps its
    own reading: "solo piano" is the piano's, "vocal jazz" is jazz."""
    from beetsplug.clap.lexicon import lexicon
    from beetsplug.clap.taglinks import forget_links

    forget_links()

    def linked(attribute: str, wanted: bool = True) -> set[str]:
        return _linked(bundle, attribute, wanted)

    assert {"solos", "riffs"} <= set(lexicon().grammar["played_parts"])
    assert linked("solos") == {"solos"}  # MTT "solo"
    assert linked("flute solos") == {"flute"}
    assert linked("guitar riffs") == {"guitar"}
    assert linked("solo piano") == {"piano"}
    assert linked("vocal jazz") == {"jazz"}
    # Negated, a played part is refused alone: a flute without a solo is
    # not what "no flute solos" refuses.
    assert "flute" not in linked("flute solos", False)
    forget_links()


def test_no_tag_counts_both_for_and_against_a_description(bundle: Bundle) -> None:
    """ "rock but not metal": rock's family takes MSD heavy metal, which
    "not metal" refuses by the lexicon, so it leaves the wanted side; a
    negated attribute's text links near what the description wants leave
    the negated side ("metal without distorted guitar" does not refuse
    the metal tags)."""
    from beetsplug.clap.search import embed_query

    names = list(bundle.tag_names)

    def links(text: str) -> tuple[list[set[str]], list[set[str]]]:
        query = embed_query(bundle, text, 0.5)
        wanted = [{names[i] for i in m.present} for m in query.affirmed_matches]
        refused = [{names[i] for i in m.present} for m in query.tag_matches]
        return wanted, refused

    wanted, refused = links("rock but not metal")
    assert "msd:heavy metal" in refused[0]
    assert "msd:heavy metal" not in wanted[0]
    assert {"rock", "msd:rock", "msd:hard rock"} <= wanted[0]
    wanted, refused = links("electronic music that isn't techno")
    assert refused[0] == {"techno"}
    assert "techno" not in wanted[0]
    assert "msd:electronic" in wanted[0]
    wanted, refused = links("metal without distorted guitar")
    assert {"metal", "msd:metal"} <= wanted[0]
    assert not refused[0] & wanted[0]
    # Without the wanted genre, the same negation keeps its links.
    _, alone = links("music without distorted guitar")
    assert {"metal", "msd:metal"} <= alone[0]


def test_music_queries_rank_speech_after_music(bundle: Bundle, tmp_path: Path) -> None:
    """Spoken announcements against the minimal pairs' six music renders: a
    plain description of music ranks the speech last, one that asks for
    speech (in the lexicon's words or with one it does not know, "poetry
    reading") ranks it first, and the text tower alone would not have done the
    first (the speech penalty is what moves it)."""
    from renders import minimal_pairs, spoken

    from beetsplug.clap.scoring import SPEECH_MARGIN, SPEECH_TEXT
    from beetsplug.clap.search import DEFAULT_NEGATION_WEIGHT, embed_query

    speech = spoken(tmp_path, bundle.sample_rate, bundle.window_seconds)
    pairs = minimal_pairs(bundle.sample_rate, bundle.window_seconds)
    music = np.stack([x for pair in pairs.values() for x in pair])
    audio, tags = bundle.embed_audio(np.concatenate([speech, music]))
    n = len(speech)
    heard = audio @ bundle.embed_text([SPEECH_TEXT])[0]
    assert (heard[:n] > SPEECH_MARGIN).all()
    assert (heard[n:] < SPEECH_MARGIN).all()
    for text in ("music", "electronic music", "piano", "drums"):
        query = embed_query(bundle, text, DEFAULT_NEGATION_WEIGHT)
        scores = query.score(audio, tags)
        assert scores[:n].max() < scores[n:].min(), (text, scores)
    text_alone = audio @ embed_query(bundle, "electronic music", 0.5).vector
    assert text_alone[:n].max() > text_alone[n:].min()
    for text in ("a man talking", "spoken word", "an interview", "poetry reading"):
        query = embed_query(bundle, text, DEFAULT_NEGATION_WEIGHT)
        scores = query.score(audio, tags)
        assert scores[:n].min() > scores[n:].max(), (text, scores)
    # Refusing speech itself pushes down what is heard as speech too, not
    # only what the word "speech" is near; refusing another part does not.
    for text in ("no talking", "piano, no narration", "music without speech"):
        query = embed_query(bundle, text, DEFAULT_NEGATION_WEIGHT)
        assert query.speech_vector is not None, text
        scores = query.score(audio, tags)
        assert scores[:n].max() < scores[n:].min(), (text, scores)
    # Music refusing an instrument still wants no voice: speech alone, which
    # has no drums either, ranks after the beds without drums (the answers).
    beds = n + np.arange(0, len(music), 2)  # (bed, bed with drums) pairs
    for text in ("music without drums", "calm music, no drums", "drumless jazz"):
        query = embed_query(bundle, text, DEFAULT_NEGATION_WEIGHT)
        assert query.speech_vector is not None, text
        scores = query.score(audio, tags)
        assert scores[:n].max() < scores[beds].min(), (text, scores)
    # Refusing a voice: the vocals penalty decides, no speech term; so does
    # an absence alone, which says nothing of what is wanted.
    for text in ("music without vocals", "no drums", "without drums"):
        assert embed_query(bundle, text, 0.5).speech_vector is None, text
