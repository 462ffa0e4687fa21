"""Search without audio: filter queries resolved to ids without building
beets objects, and the rescored ranking against exact scoring."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from beets.library import Item, Library
from clap_helpers import bulk_library

from beetsplug.clap.scoring import TextQuery
from beetsplug.clap.search import MIN_POOL, library_scale, matching_ids, rank_items
from beetsplug.clap.store import Embedded, Store

DIM = 64
N_SCORED = 6000
IDENTITY = "c" * 64
TAG_NAMES = ("jazz", "vocals", "rock")
QUERY_DIRECTION = (np.random.default_rng(2).standard_normal(DIM) / np.sqrt(DIM)).astype(
    np.float32
)
QUERY_DIRECTION /= np.linalg.norm(QUERY_DIRECTION)

QUERIES = [
    "year:1990..1999",
    "format:MP3",
    "artist:b",
    "-artist:b",
    "year:1995 , format:FLAC",
    "title:t1",
    "mood:calm",  # a flexible attribute
    "artpath::cover",  # an album field in an item query (joins albums)
    "path::/music/a",
    "^year:1990..2000 format:MP3",
]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Library:
    from beets import config

    config["create_backup_before_migrations"] = False
    root = tmp_path_factory.mktemp("lib")
    lib = Library(str(root / "library.db"), directory=str(root / "music"))
    for i in range(60):
        item = Item(
            path=f"/music/{'ab'[i % 2]}/{i}.flac".encode(),
            title=f"t{i}",
            artist="ab"[i % 3 == 0],
            year=1985 + i % 20,
            format=["MP3", "FLAC", "AAC"][i % 3],
        )
        if i % 4 == 0:
            item.mood = "calm"
        lib.add(item)
    for start in range(0, 60, 10):
        album = lib.add_album(list(lib.items(f"title:t{start}", None))[:1])
        if start % 20 == 0:
            album.artpath = f"/art/cover{start}.jpg".encode()
            album.store()
    return lib


@pytest.mark.parametrize("query", QUERIES)
def test_matching_ids_equal_beets_matching(lib: Library, query: str) -> None:
    expected = {item.id for item in lib.items(query)}
    assert matching_ids(lib, query) == expected
    assert matching_ids(lib, query.split()) == {
        item.id for item in lib.items(query.split())
    }


def test_matching_ids_for_albums_and_no_query(lib: Library) -> None:
    assert matching_ids(lib, None) is None
    assert matching_ids(lib, []) is None
    assert matching_ids(lib, "artpath::cover", albums=True) == {
        a.id for a in lib.albums("artpath::cover")
    }
    assert len(matching_ids(lib, "artpath::cover", albums=True)) == 3
    assert len(matching_ids(lib, "mood:calm")) == 15


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def scored_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Store, np.ndarray, np.ndarray]]:
    """6,000 items (a filter of more than EXACT_MAX fits) spread around one
    query direction, with stored tags: enough for the coarse pass to matter."""
    from beets import config

    config["create_backup_before_migrations"] = False
    db = tmp_path_factory.mktemp("scored") / "library.db"
    bulk_library(db, N_SCORED)
    rng = np.random.default_rng(3)
    lean = rng.exponential(2.0, (N_SCORED, 1))  # few items lean far
    mat = _unit_rows(lean * QUERY_DIRECTION + rng.standard_normal((N_SCORED, DIM)))
    # Mild tag evidence, as a tagger's probabilities mostly are: the exact
    # top 20 then lies inside the pool of the query's nearest, which is
    # what the test needs to compare with scoring every item.
    tags = 0.1 * rng.random((N_SCORED, len(TAG_NAMES)), dtype=np.float32)
    with Store.open(db) as store:
        store.prepare(IDENTITY, DIM, "test")
        store.write_batch(
            IDENTITY,
            [Embedded(i + 1, mat[i], tags[i], 1.0, 1, 1) for i in range(N_SCORED)],
            [],
        )
        yield store, mat, tags


@pytest.mark.parametrize(
    ("text", "filtered"),
    [
        ("jazz without vocals", False),  # negated: penalties and tag evidence
        ("jazz", False),  # affirmed only: the tagger's bonus
        ("jazz without vocals", True),  # a filter larger than EXACT_MAX
    ],
)
def test_rescored_search_equals_exact_scoring(
    scored_store: tuple[Store, np.ndarray, np.ndarray], text: str, filtered: bool
) -> None:
    """The int8 pass picks the pool, whose vectors and tags are read back
    and scored exactly: where the best 20 by the whole score lie among the
    query's nearest, the result is the exact top 20 of every item."""
    from beetsplug.clap.query import parse_query

    store, mat, tags = scored_store
    parsed = parse_query(text)
    rng = np.random.default_rng(4)
    negated = _unit_rows(rng.standard_normal((len(parsed.negated), DIM)))
    vectors = np.concatenate([QUERY_DIRECTION[None, :], negated])
    query = TextQuery.build(parsed, vectors, 0.5, TAG_NAMES, 1.0, 0.3)
    assert query.rescores
    assert query.uses_tags
    candidates = set(range(1, N_SCORED + 1, 2)) if filtered else None
    bundle = SimpleNamespace(identity=IDENTITY)  # all rank_items asks of it
    got = rank_items(store, bundle, query, 20, candidates)  # type: ignore[arg-type]
    # Exact: the whole score of every item (of the filter).
    ids = np.arange(1, N_SCORED + 1)
    if filtered:
        ids = ids[::2]
    rows = mat[ids - 1]
    # Tags count as percentiles over the whole library, not the pool.
    scale = library_scale(store, query.tag_width)
    assert scale is not None
    if len(query.negated_vectors):
        exact = query.score(rows, tags[ids - 1], scale)
    else:
        exact = query.with_bonus(rows @ query.vector, tags[ids - 1], scale)
    order = np.argsort(-exact)[:20]
    nearest = np.argsort(-(rows @ query.vector))[:MIN_POOL]
    assert set(order.tolist()) <= set(nearest.tolist())  # the test's premise
    assert [i for i, _ in got] == ids[order].tolist()
    np.testing.assert_allclose([s for _, s in got], exact[order], atol=1e-5)


@pytest.mark.parametrize("weight", [0.5, 0.0])
def test_each_results_terms_add_up_to_its_score(
    scored_store: tuple[Store, np.ndarray, np.ndarray], weight: float
) -> None:
    """item_terms (what --explain prints under a result) reads each ranked
    item back and spells its score out: the most present of two negated
    attributes as max(...), the tag evidence; with a negation weight of 0
    no penalty term. The terms add up to the ranked score."""
    import re

    from beetsplug.clap.query import parse_query
    from beetsplug.clap.search import item_terms

    store, _, _ = scored_store
    parsed = parse_query("jazz without vocals or rock")
    assert parsed.negated == ["vocals", "rock"]
    rng = np.random.default_rng(5)
    negated = _unit_rows(rng.standard_normal((2, DIM)))
    vectors = np.concatenate([QUERY_DIRECTION[None, :], negated])
    query = TextQuery.build(parsed, vectors, weight, TAG_NAMES, 1.0, 0.3)
    bundle = SimpleNamespace(identity=IDENTITY)
    ranked = rank_items(store, bundle, query, 10)  # type: ignore[arg-type]
    lines = item_terms(store, query, [i for i, _ in ranked])
    number = r"(-?\d+\.\d{4})"
    penalty = rf" - 0\.5 \* max\(vocals {number}, rock {number}\)" if weight else ""
    pattern = re.compile(
        rf"{number} = sim {number}{penalty} \+ 0\.3 \* evidence {number}"
    )
    for item_id, score in ranked:
        found = pattern.fullmatch(lines[item_id])
        assert found is not None, lines[item_id]
        values = [float(v) for v in found.groups()]
        assert values[0] == pytest.approx(score, abs=1e-4)
        total = values[1] + 0.3 * values[-1]
        if weight:
            total -= weight * max(values[2], values[3])
        assert total == pytest.approx(score, abs=3e-4)


def test_a_plain_description_pushes_speech_down_and_stays_exact(
    scored_store: tuple[Store, np.ndarray, np.ndarray],
) -> None:
    """A plain description that wants no voice reads the pool's vectors for
    the speech penalty: the query's nearest item, made to sound like speech
    (SPEECH_TEXT's vector is its own), leaves the top 20, and the result is
    the exact top 20 of the whole score. A description that wants a voice,
    or one that refuses one, gets no penalty; one that negates instruments
    only gets it too; one that asks for speech alone gets it as a lift."""
    from beetsplug.clap.query import parse_query
    from beetsplug.clap.scoring import SPEECH_MARGIN, wants_voice

    store, mat, _tags = scored_store
    nearest = int(np.argmax(mat @ QUERY_DIRECTION))
    speech = mat[nearest].copy()
    assert float(speech @ speech) > SPEECH_MARGIN
    vectors = QUERY_DIRECTION[None, :]
    bundle = SimpleNamespace(identity=IDENTITY)  # all rank_items asks of it
    plain = TextQuery.build(
        parse_query("calm"), vectors, 0.5, speech_vector=speech, speech_weight=8.0
    )
    assert plain.rescores
    assert plain.reads_vectors
    got = rank_items(store, bundle, plain, 20)  # type: ignore[arg-type]
    exact = plain.score(mat)
    order = np.argsort(-exact)[:20]
    assert nearest + 1 not in [i for i, _ in got]
    assert [i for i, _ in got] == (order + 1).tolist()
    np.testing.assert_allclose([s for _, s in got], exact[order], atol=1e-5)
    without = TextQuery.build(parse_query("calm"), vectors, 0.5)
    assert rank_items(store, bundle, without, 1)[0][0] == nearest + 1  # type: ignore[arg-type]
    for text in ("female vocals", "vocal jazz", "choir", "a man talking over piano"):
        assert wants_voice(parse_query(text)), text
        voice = TextQuery.build(
            parse_query(text), vectors, 0.5, speech_vector=speech, speech_weight=8.0
        )
        assert not voice.rescores
    # Speech alone asked for: the same term lifts what sounds like speech.
    for text in ("a man talking", "an interview"):
        wanted = TextQuery.build(
            parse_query(text), vectors, 0.5, speech_vector=speech, speech_weight=8.0
        )
        assert wanted.speech_wanted
        assert wanted.reads_vectors
        lifted = mat @ QUERY_DIRECTION + 8.0 * np.maximum(mat @ speech - 0.6, 0.0)
        np.testing.assert_allclose(wanted.score(mat), lifted, atol=1e-5)
        got = rank_items(store, bundle, wanted, 20)  # type: ignore[arg-type]
        assert got[0][0] == nearest + 1
        assert [i for i, _ in got] == (np.argsort(-lifted)[:20] + 1).tolist()
    assert not wants_voice(parse_query("calm piano"))
    # music asked for with speech named: neither pushed down nor lifted
    for text in ("music for a podcast", "speech with music in the background"):
        both = TextQuery.build(
            parse_query(text), vectors, 0.5, speech_vector=speech, speech_weight=8.0
        )
        assert not both.speech_wanted, text
        assert not both.reads_vectors, text
    # A negated voice: its penalty decides, no speech term. A negated
    # instrument still wants no voice: the speech term too.
    sim = mat @ QUERY_DIRECTION
    heard = 8.0 * np.maximum(mat @ speech - 0.6, 0.0)
    for text, expected in (
        ("calm, no vocals", sim - 0.5 * (mat @ speech)),
        ("calm, no singing", sim - 0.5 * (mat @ speech)),
        ("calm, no drums", sim - 0.5 * (mat @ speech) - heard),
        ("calm music without piano or guitar", sim - 0.5 * (mat @ speech) - heard),
        # an absence alone says nothing of what is wanted: no speech term
        ("no drums", sim - 0.5 * (mat @ speech)),
    ):
        negated = parse_query(text)
        query = TextQuery.build(
            negated,
            np.concatenate([vectors, *[speech[None, :]] * len(negated.negated)]),
            0.5,
            speech_vector=speech,
            speech_weight=8.0,
        )
        np.testing.assert_allclose(query.score(mat), expected, atol=1e-5, err_msg=text)


def test_a_description_is_parsed_once_as_far_as_the_model_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One parse per search (it also finds a dangling cue), reading as many
    tokens as the bundle's text tower."""
    from bundle_factory import build_tiny_bundle

    from beetsplug.clap import query
    from beetsplug.clap.model import Bundle
    from beetsplug.clap.search import SearchError, embed_query

    bundle = Bundle.load(build_tiny_bundle(tmp_path / "bundle", max_tokens=16))
    limits: list[int] = []
    parse = query.parse_query

    def counted(text: str, max_tokens: int = query.MAX_TOKENS) -> query.ParsedQuery:
        limits.append(max_tokens)
        return parse(text, max_tokens)

    monkeypatch.setattr(query, "parse_query", counted)
    text = "jazz without vocals, " + "la " * 40 + "and no drums"
    found = embed_query(bundle, text, 0.5)
    assert limits == [16]
    assert found.negated == ["vocals"]  # "no drums" lies past what the model reads
    with pytest.raises(SearchError, match="ends with 'without' and names nothing"):
        embed_query(bundle, "jazz without", 0.5)
    assert limits == [16, 16]


def test_a_negating_description_embeds_its_restatement(tmp_path: Path) -> None:
    """The whole-description vector of "drumless jazz" is the text tower's
    "jazz without drums" (a real session on a tiny bundle), and a plain
    description is embedded as typed."""
    from bundle_factory import build_tiny_bundle

    from beetsplug.clap.model import Bundle
    from beetsplug.clap.search import embed_query

    bundle = Bundle.load(build_tiny_bundle(tmp_path / "bundle"))
    [restated, typed, plain] = bundle.embed_text(
        ["jazz without drums", "drumless jazz", "calm jazz"]
    )
    assert not np.allclose(restated, typed, atol=1e-4)  # the two texts differ
    np.testing.assert_allclose(
        embed_query(bundle, "drumless  jazz", 0.5).vector, restated, atol=1e-6
    )
    np.testing.assert_allclose(
        embed_query(bundle, "calm jazz", 0.5).vector, plain, atol=1e-6
    )
    assert (
        "sim('jazz without drums')"
        in embed_query(bundle, "drumless jazz", 0.5).explain()
    )


def test_a_plain_description_blends_its_lexicon_spelling(tmp_path: Path) -> None:
    """ "with lyrics" is the mean direction of "with lyrics" and "with
    vocals" (a real session on a tiny bundle); a description the lexicon
    spells as typed is embedded alone."""
    from bundle_factory import build_tiny_bundle

    from beetsplug.clap.model import Bundle
    from beetsplug.clap.search import embed_query

    bundle = Bundle.load(build_tiny_bundle(tmp_path / "bundle"))
    typed, spelled, calm = bundle.embed_text(["with lyrics", "with vocals", "calm"])
    mean = (typed + spelled) / np.linalg.norm(typed + spelled)
    found = embed_query(bundle, "with lyrics", 0.5)
    np.testing.assert_allclose(found.vector, mean, atol=1e-6)
    assert abs(float(np.linalg.norm(found.vector)) - 1.0) < 1e-5
    np.testing.assert_allclose(embed_query(bundle, "calm", 0.5).vector, calm, atol=1e-6)
    assert "sim(mean('with lyrics', 'with vocals'))" in found.explain()


def test_a_family_is_the_mean_of_itself_and_its_kinds(tmp_path: Path) -> None:
    """ "strings" is the mean direction of "strings", "violin" and "cello"
    (a real session on a tiny bundle); the concept names come from the
    bundle's memory of attribute phrases, so asking again runs no text."""
    from bundle_factory import build_tiny_bundle

    from beetsplug.clap.model import Bundle
    from beetsplug.clap.search import embed_query

    bundle = Bundle.load(build_tiny_bundle(tmp_path / "bundle"))
    texts = bundle.embed_text(["strings", "violin", "cello"])
    mean = texts.sum(axis=0) / np.linalg.norm(texts.sum(axis=0))
    found = embed_query(bundle, "strings", 0.5)
    np.testing.assert_allclose(found.vector, mean, atol=1e-6)
    assert {"strings", "violin", "cello"} <= set(bundle._attributes)
    assert "sim(mean('strings', 'violin', 'cello'))" in found.explain()
    bundle._text = None  # type: ignore[assignment]  # any graph run would fail
    np.testing.assert_allclose(
        embed_query(bundle, "strings", 0.5).vector, mean, atol=1e-6
    )
