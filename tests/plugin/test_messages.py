"""One-line messages: invalid settings, invalid queries, empty results,
tracks that failed to index, dropped vectors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from beets.dbcore.query import InvalidQueryError
from beets.ui import UserError
from clap_helpers import ClapEnv, beet, make_beetsdir, write_audio

from beetsplug.clap.store import STATE

COMMANDS = (
    ("clap-index",),
    ("clap", "low"),
    ("ls", "clap:low"),
    ("clap-similar", "title:low"),
    ("clap-playlists",),
)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"batch_size": 0}, "clap.batch_size must be a whole number >= 1, not 0"),
        ({"clusters": -2}, "clap.clusters must be a whole number >= 0, not -2"),
        ({"auto": "maybe"}, "clap.auto must be yes or no, not 'maybe'"),
        ({"max_windows": "3"}, "clap.max_windows must be a whole number >= 0, not '3'"),
        ({"max_windows": 2.5}, "clap.max_windows must be a whole number >= 0, not 2.5"),
        ({"threads": "many"}, "clap.threads must be a whole number >= 0, not 'many'"),
        ({"jobs": True}, "clap.jobs must be a whole number >= 0, not True"),
        ({"playlist_dir": 3}, "clap.playlist_dir must be a folder path, not 3"),
    ],
)
def test_an_invalid_setting_is_the_same_line_for_every_command(
    indexed: ClapEnv, setting: dict, message: str
) -> None:
    indexed.reload(**setting)
    for args in COMMANDS:
        with pytest.raises(UserError) as info:
            indexed.run(*args)
        assert str(info.value) == message, args


def test_a_whole_float_is_a_whole_number(indexed: ClapEnv) -> None:
    indexed.reload(max_windows=2.0, batch_size=4.0)
    assert indexed.lines("clap-index", "--force") == [
        "clap-index: embedded 5, unchanged 0, failed 0"
    ]


def test_a_search_that_matches_nothing_says_so(
    indexed: ClapEnv, corpus: dict[str, Path]
) -> None:
    assert indexed.outputs("clap", "low", "year:2000") == (
        [],
        ["clap: no tracks match year:2000"],
    )
    assert indexed.outputs("clap", "-a", "low", "album:nothing") == (
        [],
        ["clap: no albums match album:nothing"],
    )
    # clap-index says it as the searches do, not "embedded 0, unchanged 0".
    for args in (("year:1800",), ("year:1800", "--pretend")):
        assert indexed.outputs("clap-index", *args) == (
            [],
            ["clap: no tracks match year:1800"],
        )
    indexed.add(corpus["mid"], title="fresh", album="fresh")  # not indexed
    assert indexed.outputs("clap", "low", "title:fresh") == (
        [],
        [
            "clap: the one track matching title:fresh is not indexed yet: "
            "run `beet clap-index`"
        ],
    )
    indexed.add(corpus["high"], title="fresh too")
    assert indexed.outputs("clap", "low", "title:fresh")[1] == [
        "clap: none of the 2 tracks matching title:fresh is indexed yet: "
        "run `beet clap-index`"
    ]
    # Bare words that match nothing may be the description's rest, typed
    # without quotes: the line says how to search for the whole.
    assert indexed.outputs("clap", "jazz", "without", "vocals") == (
        [],
        [
            "clap: no tracks match without vocals (the words after the "
            'description are a beets query; to search for "jazz without '
            'vocals", put it in quotes)'
        ],
    )
    assert indexed.outputs("clap", "-a", "jazz", "no", "drums")[1] == [
        "clap: no albums match no drums (the words after the description are "
        'a beets query; to search for "jazz no drums", put it in quotes)'
    ]
    # A match prints results and nothing else.
    assert indexed.outputs("clap", "low", "title:mid", "-f", "$title") == (
        ["mid"],
        [],
    )


def test_a_new_bundle_reports_the_vectors_it_dropped(
    env: ClapEnv, corpus: dict[str, Path], other_bundle: Path, tmp_path: Path
) -> None:
    for kind in ("low", "mid", "high"):
        env.add(corpus[kind], title=kind)
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    notes = tmp_path / "notes.mp3"
    notes.write_text("not audio at all\n" * 200)
    env.add(empty, read_tags=False, title="empty")
    env.add(notes, read_tags=False, title="notes")
    assert env.lines("clap-index")[-1] == (
        "clap-index: embedded 3, unchanged 0, failed 2"
    )
    env.reload(model=str(other_bundle))
    out, err = env.outputs("clap-index")
    assert err == ["clap: dropped 3 vectors of a previous model bundle"]
    assert out[-1] == "clap-index: embedded 3, unchanged 0, failed 2"


@pytest.mark.parametrize(
    ("query", "album_field"),
    [("year:abc..", True), ("title::[", True), ("length:..abc", False)],
    ids=["number", "regexp", "duration"],
)
def test_an_invalid_beets_query_is_the_line_beets_gives_for_every_command(
    indexed: ClapEnv, query: str, album_field: bool
) -> None:
    """What `beet ls` raises for it, beets' InvalidQueryError (printed as
    `invalid query: ...`), whichever clap command the query reaches; with
    -a, what `beet ls -a` does (`length` is no album field: there it is a
    flexible attribute's text, which no album has)."""
    with pytest.raises(InvalidQueryError) as listed:
        indexed.run("ls", query)
    for args in (
        ("clap", "low", query),
        ("clap", "--like", query),
        ("clap", "low", "--like", "title:high", query),
        ("clap", "low", "--unlike", query),
        ("clap-similar", query),
        ("clap-similar", query, "--without", "noise"),
        ("clap-path", "title:low", "title:high", query),
        ("clap-index", query),
        *([("ls", "-a", query), ("clap", "-a", "low", query)] if album_field else []),
    ):
        with pytest.raises(InvalidQueryError) as info:
            indexed.run(*args)
        assert str(info.value) == str(listed.value), args
    if not album_field:
        assert indexed.outputs("ls", "-a", query) == ([], [])
        assert indexed.outputs("clap", "-a", "low", query) == (
            [],
            [f"clap: no albums match {query}"],
        )


def test_an_invalid_playlist_filter_is_named_before_any_list(
    indexed: ClapEnv, tmp_path: Path
) -> None:
    out = tmp_path / "lists"
    indexed.reload(
        playlist_dir=str(out),
        playlists=[
            {"name": "Lows", "query": "low bass"},
            {"name": "Highs", "query": "high", "filter": "year:abc.."},
        ],
    )
    with pytest.raises(UserError) as info:
        indexed.run("clap-playlists")
    assert str(info.value) == (
        "clap.playlists[1] (Highs): invalid query: 'year:abc..': "
        "'abc' is not an int or a float"
    )
    assert not out.exists()  # not even the valid first playlist


def test_an_invalid_query_prints_one_line_and_fails(
    tmp_path: Path, tiny_bundle: Path, corpus: dict[str, Path]
) -> None:
    """The real `beet`: beets' own line on stderr, no traceback, status 1."""
    beetsdir = make_beetsdir(tmp_path, tiny_bundle, [corpus["low"]])
    assert beet(beetsdir, "clap-index").returncode == 0
    for args in (("clap", "calm", "year:abc.."), ("clap", "--like", "year:abc..")):
        done = beet(beetsdir, *args)
        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert done.stderr == (
            "invalid query: 'year:abc..': 'abc' is not an int or a float\n"
        )


def _reason(env: ClapEnv, path: Path) -> str:
    """The reason the index recorded for the file's failure."""
    ((status, error),) = env.sql(
        f"SELECT s.status, s.error FROM {STATE} s JOIN items i ON i.id = s.item_id "
        "WHERE i.path = ?",
        str(path).encode(),
    )
    assert status == "failed"
    assert error
    return error


def test_tracks_that_failed_to_index_are_said_to_have_failed_and_why(
    indexed: ClapEnv, corpus: dict[str, Path], tmp_path: Path
) -> None:
    """Not "not indexed yet: run clap-index", which would only fail again."""
    whole = write_audio(tmp_path / "whole.flac", "mid", seconds=12.0)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 8])
    short = write_audio(tmp_path / "short.wav", "mid", seconds=0.5)
    # No tags: the track is named by its file, as on the map.
    indexed.add(cut, read_tags=False, artist="", title="", album="bad")
    indexed.add(short, read_tags=False, title="short", album="bad")
    assert indexed.lines("clap-index")[-1] == (
        "clap-index: embedded 0, unchanged 5, failed 2"
    )
    why = _reason(indexed, cut)
    at = f"path:{cut}"
    drawn = tmp_path / "map.html"
    for args, message in (
        (("clap-similar", at), f"the one matched track failed to index: {why}"),
        (
            ("clap", "--like", at),
            f"--like {at}: the one track it matches failed to index: {why}",
        ),
        (("clap-path", at, "title:high"), f"FROM (cut.flac) failed to index: {why}"),
        (("clap-path", "title:high", at), f"TO (cut.flac) failed to index: {why}"),
        (
            ("clap-similar", "album:bad"),
            "none of the 2 matched tracks is indexed: both failed to index "
            f"(cut.flac: {why}; and 1 more)",
        ),
        (
            ("clap-map", at, "-o", str(drawn)),
            f"the one track matching {at} failed to index: {why}",
        ),
        (
            ("clap-map", "album:bad", "-o", str(drawn)),
            "none of the 2 tracks matching album:bad is indexed: both failed to "
            f"index (cut.flac: {why}; and 1 more)",
        ),
    ):
        with pytest.raises(UserError) as info:
            indexed.run(*args)
        assert str(info.value) == message, args
    assert not drawn.exists()
    said = f"clap: the one track matching {at} failed to index: {why}"
    assert indexed.outputs("clap", "low", at) == ([], [said])
    # The seeds left out, what is left failed: that, not "a seed".
    assert indexed.outputs("clap", "--like", "title:high", at) == ([], [said])
    # Failed and not yet indexed among the matches: each said as it is.
    indexed.add(corpus["high"], title="fresh", album="bad")
    assert indexed.outputs("clap", "low", "album:bad") == (
        [],
        [
            "clap: none of the 3 tracks matching album:bad is indexed yet: "
            f"2 failed to index (cut.flac: {why}; and 1 more); "
            "run `beet clap-index` for the other 1"
        ],
    )
    with pytest.raises(UserError) as info:
        indexed.run("clap-map", "album:bad", "-o", str(drawn))
    assert str(info.value) == (
        "none of the 3 tracks matching album:bad is indexed yet: "
        f"2 failed to index (cut.flac: {why}; and 1 more); "
        "run `beet clap-index` for the other 1"
    )
    # --explain counts seeds of each kind apart, as the errors name them.
    seeds = ("album:bad", ",", "title:high")
    explained = indexed.lines("clap-similar", *seeds, "-e", "-f", "$title")
    assert explained[0] == (
        "seeds:       'album:bad , title:high': 1 track, "
        "2 failed to index, 1 not indexed yet"
    )
    explained = indexed.lines("clap", "--like", " ".join(seeds), "-e", "-f", "$title")
    assert (
        "like:        'album:bad , title:high': 1 track, "
        "2 failed to index, 1 not indexed yet"
    ) in explained


def test_a_library_whose_every_track_failed_says_why_not_that_it_is_empty(
    env: ClapEnv, tmp_path: Path
) -> None:
    """Not "the clap index is empty: run clap-index", which only fails
    again: every search command names the failure and its reason."""
    whole = write_audio(tmp_path / "whole.flac", "mid", seconds=12.0)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 8])
    env.add(cut, read_tags=False, artist="", title="")
    empty = "the clap index is empty: run `beet clap-index` first"
    with pytest.raises(UserError, match=f"^{re.escape(empty)}$"):
        env.run("clap", "low")
    assert (
        env.lines("clap-index")[-1] == "clap-index: embedded 0, unchanged 0, failed 1"
    )
    why = _reason(env, cut)
    one = (
        f"the one track in the library (cut.flac) failed to index: {why}; "
        "fix or replace its file, then run `beet clap-index`"
    )
    drawn = tmp_path / "map.html"
    at = f"path:{cut}"
    commands = (
        ("clap", "low"),
        ("ls", "clap:low"),
        ("clap", "--like", at),
        ("clap-similar", at),
        ("clap-path", at, at),
        ("clap-map", "-o", str(drawn)),
        ("clap-playlists", "--pretend"),
    )
    for args in commands:
        with pytest.raises(UserError) as info:
            env.run(*args)
        assert str(info.value) == one, args
    notes = tmp_path / "notes.mp3"
    notes.write_text("not audio at all\n" * 200)
    env.add(notes, read_tags=False, artist="x", title="notes")
    assert (
        env.lines("clap-index")[-1] == "clap-index: embedded 0, unchanged 0, failed 2"
    )
    every = (
        "none of the 2 tracks in the library is indexed: both failed to index "
        f"(cut.flac: {why}; and 1 more); fix or replace their files, then run "
        "`beet clap-index`"
    )
    for args in commands:
        with pytest.raises(UserError) as info:
            env.run(*args)
        assert str(info.value) == every, args
    # A track not tried yet is still worth a clap-index run.
    env.add(write_audio(tmp_path / "new.flac", "low"), title="new")
    with pytest.raises(UserError) as info:
        env.run("clap", "low")
    assert str(info.value) == (
        "none of the 3 tracks in the library is indexed yet: 2 failed to index "
        f"(cut.flac: {why}; and 1 more); run `beet clap-index` for the other 1"
    )
    assert not drawn.exists()


def test_one_is_counted_in_the_singular(
    env: ClapEnv, corpus: dict[str, Path], other_bundle: Path, tmp_path: Path
) -> None:
    env.add(corpus["low"], title="low")
    env.run("clap-index")
    drawn = tmp_path / "map.html"
    assert env.outputs("clap-map", "title:low", "-o", str(drawn)) == (
        [f"clap-map: wrote {drawn} (1 track, 1 region)"],
        [],
    )
    assert "<title>beets library, title:low: 1 track</title>" in drawn.read_text()
    lists = tmp_path / "lists"
    env.reload(playlist_dir=str(lists), playlists=[{"name": "Lows", "query": "low"}])
    assert env.outputs("clap-playlists", "--pretend") == (
        [f"would write Lows: {lists / 'Lows.m3u'} (1 track)"],
        [
            "clap: no automatic playlist: the one indexed track is fewer than "
            "cluster_min_size 5"
        ],
    )
    env.reload(model=str(other_bundle))
    assert env.outputs("clap-index")[1] == [
        "clap: dropped 1 vector of a previous model bundle"
    ]
