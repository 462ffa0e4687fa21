"""Composed queries (`clap --like`, `clap-similar --without`) and `clap-path`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from beets.ui import UserError
from clap_helpers import ClapEnv, write_audio

from beetsplug.clap import compose, web
from beetsplug.clap.search import query_fields
from beetsplug.clap.settings import DEFAULTS

LOW = "title::^low$"
# A description, like seeds and unlike seeds, explained.
EXPLAINED = ("clap", "without noise", "--like", LOW, "--unlike", "title:high", "-e")


def test_like_alone_ranks_by_the_seeds_and_never_lists_them(indexed: ClapEnv) -> None:
    lines = indexed.lines("clap", "--like", LOW, "-f", "$title")
    assert lines[0] == "low2"
    assert "low" not in lines
    assert len(lines) == 4
    # The same ranking as clap-similar: the like part alone is its cosine,
    # weighted.
    similar = indexed.lines("clap-similar", LOW, "-s", "-f", "$title")
    composed = indexed.lines("clap", "--like", LOW, "-s", "-f", "$title")
    assert [s.split()[1] for s in composed] == [s.split()[1] for s in similar]
    weight = DEFAULTS["like_weight"]
    for c, s in zip(composed, similar, strict=True):
        assert float(c.split()[0]) == pytest.approx(
            weight * float(s.split()[0]), abs=2e-3
        )


def test_description_and_like_add_up(indexed: ClapEnv) -> None:
    """ "noise" alone ranks the noise first; like the high tone with a heavy
    like weight, the high tone's nearest (not the seed) comes first."""
    assert indexed.lines("clap", "noise", "-n", "1", "-f", "$title") == ["noise"]
    scores = {
        line.split()[1]: float(line.split()[0])
        for line in indexed.lines(
            "clap", "noise", "--like", "title:high", "-s", "-f", "$title"
        )
    }
    assert "high" not in scores
    text = {
        line.split()[1]: float(line.split()[0])
        for line in indexed.lines("clap", "noise", "-s", "-f", "$title")
    }
    similar = {
        line.split()[1]: float(line.split()[0])
        for line in indexed.lines("clap-similar", "title:high", "-s", "-f", "$title")
    }
    weight = DEFAULTS["like_weight"]
    for title, score in scores.items():
        assert score == pytest.approx(text[title] + weight * similar[title], abs=3e-3)


def test_unlike_subtracts_and_filters_combine(indexed: ClapEnv) -> None:
    like = indexed.lines("clap", "--like", "title:noise", "-s", "-f", "$title")
    both = indexed.lines(
        "clap", "--like", "title:noise", "--unlike", "title:high", "-s", "-f", "$title"
    )
    assert {b.split()[1] for b in both} == {"low", "low2", "mid"}  # seeds left out
    like_scores = {x.split()[1]: float(x.split()[0]) for x in like}
    high = {
        x.split()[1]: float(x.split()[0])
        for x in indexed.lines("clap-similar", "title:high", "-s", "-f", "$title")
    }
    weight = DEFAULTS["unlike_weight"]
    for line in both:
        score, title = line.split()
        expected = like_scores[title] - weight * high[title]
        assert float(score) == pytest.approx(expected, abs=3e-3)
    # A beets query limits the candidates; "" says there is no description.
    assert indexed.lines(
        "clap", "", "--like", "title:noise", "title:low", "-f", "$title"
    ) in (["low", "low2"], ["low2", "low"])
    assert indexed.lines(
        "clap", "--like", "title:noise", "title::^mid$", "-f", "$title"
    ) == ["mid"]


def test_repeated_like_options_count_equally(indexed: ClapEnv) -> None:
    lines = indexed.lines(
        "clap", "--like", "title:high", "--like", "title:noise", "-f", "$title"
    )
    assert set(lines) == {"low", "low2", "mid"}


def test_similar_without_is_the_composed_search(indexed: ClapEnv) -> None:
    short = indexed.lines(
        "clap-similar", LOW, "--without", "noise", "-s", "-f", "$title"
    )
    long = indexed.lines("clap", "without noise", "--like", LOW, "-s", "-f", "$title")
    assert short == long
    assert "low" not in [s.split()[1] for s in short]
    # Already a negation: taken as it is, not as "without no noise", which
    # would want the word "without".
    for negation in ("no noise", "without noise", "minus the noise"):
        said = indexed.lines(
            "clap-similar", LOW, "--without", negation, "-s", "-f", "$title"
        )
        assert said == indexed.lines(
            "clap", negation, "--like", LOW, "-s", "-f", "$title"
        ), negation
        explained = indexed.lines("clap-similar", LOW, "--without", negation, "-e")
        assert f"query:       '{negation}'" in explained, explained[:3]


def test_explain_shows_seeds_and_weights(indexed: ClapEnv) -> None:
    out = indexed.run(*EXPLAINED, "-n", "1")
    assert "like:        'title::^low$': 1 track\n  tester - low\n" in out
    assert "unlike:      'title:high': 1 track\n  tester - high\n" in out
    weights = DEFAULTS["like_weight"], DEFAULTS["unlike_weight"]
    assert (
        f"composed:    description + {weights[0]:g} * sim(like seeds) "
        f"- {weights[1]:g} * sim(unlike seeds)\n"
    ) in out
    assert "negated:     noise" in out


def test_explain_spells_out_each_composed_score(indexed: ClapEnv) -> None:
    """Under each result: its composed score as the formula adds it up (the
    description's score, then each seed direction's cosine and weight),
    then the description's own terms; the numbers add up to --score's."""
    import re

    out = indexed.lines(*EXPLAINED, "-s", "-f", "$title")
    end = next(i for i, line in enumerate(out) if line.startswith("composed:")) + 1
    results, notes = out[end::2], out[end + 1 :: 2]
    assert len(results) == len(notes) >= 2
    like, unlike = DEFAULTS["like_weight"], DEFAULTS["unlike_weight"]
    terms = re.compile(
        rf"    (?P<score>-?\d\.\d{{4}}) = description (?P<d>-?\d\.\d{{4}}) "
        rf"\+ {like:g} \* like (?P<like>-?\d\.\d{{4}}) "
        rf"- {unlike:g} \* unlike (?P<unlike>-?\d\.\d{{4}}); "
        r"description (?P=d) = sim (?P<sim>-?\d\.\d{4}) "
        r"- 0\.5 \* noise (?P<noise>-?\d\.\d{4})"
    )
    for result, note in zip(results, notes, strict=True):
        found = terms.fullmatch(note)
        assert found is not None, note
        assert found["score"] == result.split()[0]
        total = float(found["d"]) + like * float(found["like"])
        total -= unlike * float(found["unlike"])
        assert total == pytest.approx(float(found["score"]), abs=5e-4)
        description = float(found["sim"]) - 0.5 * float(found["noise"])
        assert description == pytest.approx(float(found["d"]), abs=2e-4)


def test_like_weight_is_a_setting(indexed: ClapEnv) -> None:
    indexed.reload(like_weight=3.0)
    out = indexed.run("clap", "noise", "--like", "title:high", "-e", "-n", "1")
    assert "composed:    description + 3 * sim(like seeds)" in out
    indexed.reload(like_weight="heavy")
    with pytest.raises(UserError, match=r"^clap.like_weight must be a number in 0..10"):
        indexed.run("clap", "noise", "--like", "title:high")


def test_album_ranking_leaves_out_the_seeds_albums(
    env: ClapEnv, corpus: dict[str, Path]
) -> None:
    for kind in ("low", "low2", "mid", "high", "noise"):
        item = env.add(corpus[kind], title=kind, album=f"album {kind}")
        env.lib.add_album([item])
    env.run("clap-index")
    lines = env.lines("clap", "--like", LOW, "-a", "-f", "$album")
    assert lines[0] == "album low2"
    assert "album low" not in lines
    # Albums that all hold a seed: said so, not taken for a missing index.
    assert env.outputs("clap", "--like", LOW, "-a", "album::^album low$") == (
        [],
        [
            "clap: every album matching album::^album low$ holds a seed: "
            "nothing is left to rank"
        ],
    )
    assert env.outputs("clap", "--like", "album:", "-a")[1] == [
        "clap: every album holds a seed: nothing is left to rank"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--like", "title:nothing"), r"^--like title:nothing matches no track$"),
        (
            ("x", "--unlike", "title:nothing"),
            r"^--unlike title:nothing matches no track$",
        ),
        (
            ("--like", "title:"),
            r"^--like title: matches every indexed track: nothing is left to rank; "
            r"narrow it down$",
        ),
        (
            ("--like", ""),
            r"^--like '' matches every track: nothing is left to rank; narrow it down$",
        ),
        (("--unlike", "title:high"), r"^give a description or --like QUERY"),
        (("jazz without", "--like", LOW), r"names nothing to leave out"),
    ],
)
def test_composed_bad_input_is_one_line(
    indexed: ClapEnv, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        indexed.run("clap", *args)


def test_a_query_of_seeds_only_says_so(indexed: ClapEnv) -> None:
    out, err = indexed.outputs("clap", "--like", "title:low", "title:low")
    assert out == []
    assert err == [
        "clap: every track matching title:low is a seed: nothing is left to rank"
    ]
    # Bare words after the description that match nothing: the same hint as
    # without --like.
    assert indexed.outputs("clap", "calm", "--like", LOW, "nomatchword")[1] == [
        "clap: no tracks match nomatchword (the words after the description are "
        'a beets query; to search for "calm nomatchword", put it in quotes)'
    ]


def test_similar_explain_explains_the_ranking_and_changes_nothing(
    indexed: ClapEnv, corpus: dict[str, Path]
) -> None:
    plain = indexed.run("clap-similar", LOW, "-s", "-f", "$clap_score $title")
    out = indexed.run("clap-similar", LOW, "-e", "-s", "-f", "$clap_score $title")
    assert out == (
        "seeds:       'title::^low$': 1 track\n  tester - low\n"
        "ranking:     sim(seeds), the cosine to their mean direction\n" + plain
    )
    # Seeds without a vector are counted, as --like counts them.
    indexed.add(corpus["mid"], title="low, new")
    plain = indexed.run("clap-similar", "title:low", "-s", "-f", "$title")
    out = indexed.run("clap-similar", "title:low", "-e", "-s", "-f", "$title")
    assert out == (
        "seeds:       'title:low': 2 tracks, 1 not indexed yet\n"
        "  tester - low\n  tester - low2\n"
        "ranking:     sim(seeds), the cosine to their mean direction\n" + plain
    )


def test_tracks_without_tags_are_named_by_their_file(
    env: ClapEnv, corpus: dict[str, Path]
) -> None:
    env.add(corpus["low"], artist="", title="")
    env.add(corpus["high"], title="")
    env.add(corpus["mid"], artist="", title="mid")
    env.add(corpus["noise"], title="noise")
    # no artist but an album artist: shown with it, as beets' $artist is
    env.add(corpus["low2"], artist="", albumartist="The Band", title="ramp")
    env.run("clap-index")
    with pytest.raises(
        UserError,
        match=r"^FROM and TO are the same track \(low\.flac\): a path needs two$",
    ):
        env.run("clap-path", "path::/low.flac$", "path::/low.flac$")
    out = env.run(
        "clap", "--like", "path::/(low|high).flac$", "--like", "title:mid", "-e"
    )
    assert (
        "'path::/(low|high).flac$': 2 tracks\n  low.flac\n  tester - high.flac\n" in out
    )
    assert "'title:mid': 1 track\n  mid\n" in out
    out = env.run("clap", "--like", "title:ramp", "-e", "-n", "1")
    assert "'title:ramp': 1 track\n  The Band - ramp\n" in out
    out = env.run("clap-similar", "path::/low.flac$", "-e", "-n", "1")
    assert out.startswith("seeds:       'path::/low.flac$': 1 track\n  low.flac\n")


def test_like_seeds_without_vectors(indexed: ClapEnv, corpus: dict[str, Path]) -> None:
    indexed.add(corpus["mid"], title="new")
    with pytest.raises(
        UserError,
        match=r"^--like title:new: the one track it matches is not indexed yet: "
        r"run `beet clap-index`$",
    ):
        indexed.run("clap", "--like", "title:new")


def test_description_and_query_split(env: ClapEnv, corpus: dict[str, Path]) -> None:
    env.add(corpus["low"], title="low", mood="calm")  # a flexible attribute
    fields = query_fields(env.lib)

    def split(args: list[str]) -> tuple[str | None, list[str]]:
        return compose.description_and_query(args, fields)

    assert split(["calm", "year:1990.."]) == ("calm", ["year:1990.."])
    assert split(["year:1990..", "genre:jazz"]) == (None, ["year:1990..", "genre:jazz"])
    assert split(["", "genre:jazz"]) == (None, ["genre:jazz"])
    assert split(["-genre:jazz"]) == (None, ["-genre:jazz"])
    assert split(["^Title::^So"]) == (None, ["^Title::^So"])
    assert split(["mood:calm"]) == (None, ["mood:calm"])
    assert split(["clap:low", "year:1990.."]) == (None, ["clap:low", "year:1990.."])
    assert split([]) == (None, [])
    # A form's answer names no field: it is the description, as without
    # --like and on the search page.
    for answer in ("vocals: none", "exclude: choir", "techno: no", "drums:off"):
        assert split([answer, "year:1990.."]) == (answer, ["year:1990.."])
        assert web.split_query(f"{answer} year:1990..", fields) == (
            answer,
            ["year:1990.."],
        )


def test_a_form_answer_with_like_is_the_description(indexed: ClapEnv) -> None:
    """ "noise: none" negates noise, --like or not; beets would read it as
    a flexible attribute no track has, and rank nothing."""
    for answer in ("noise: none", "exclude: noise", "noise:off"):
        out = indexed.run("clap", answer, "--like", "title:high", "-e", "-n", "1")
        assert f"query:       {answer!r}\n" in out
        assert "negated:     noise\n" in out
        assert "composed:    description + " in out
    # Ranked as the same negation said in words is.
    said = indexed.lines(
        "clap", "without noise", "--like", "title:high", "-s", "-f", "$title"
    )
    assert len(said) == 4
    for answer in ("noise: none", "exclude: noise", "noise:off"):
        ranked = indexed.lines(
            "clap", answer, "--like", "title:high", "-s", "-f", "$title"
        )
        assert ranked == said, answer


def test_settings_defaults_are_the_calibrated_weights() -> None:
    assert DEFAULTS["like_weight"] == compose.DEFAULT_LIKE_WEIGHT
    assert DEFAULTS["unlike_weight"] == compose.DEFAULT_UNLIKE_WEIGHT


# Paths -----------------------------------------------------------------------


def _mix(share: float, rate: int = 22050, seconds: float = 4.0) -> np.ndarray:
    """A low and a high tone at `share` : 1 - `share` of the energy: the tiny
    bundle's log band energies move linearly from the low tone to the high."""
    t = np.arange(round(seconds * rate)) / rate
    low = np.sin(2 * np.pi * 150.0 * t)
    high = np.sin(2 * np.pi * 3000.0 * t)
    x = np.sqrt(share) * low + np.sqrt(1 - share) * high
    return (0.4 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture
def ramp(env: ClapEnv, tmp_path: Path) -> ClapEnv:
    """Tracks on the way from a low tone to a high one, in a shuffled order
    of ids, plus noise off the way."""
    shares = [0.3, 0.9, 0.1, 0.7, 0.5]
    write = tmp_path / "ramp"
    env.add(write_audio(write / "low.flac", "low"), title="low")
    for share in shares:
        path = write_audio(write / f"mix{share}.flac", data=_mix(share))
        env.add(path, title=f"mix{share}")
    env.add(write_audio(write / "high.flac", "high"), title="high")
    env.add(write_audio(write / "noise.flac", "noise"), title="noise")
    env.run("clap-index")
    return env


def test_path_moves_step_by_step_from_one_end_to_the_other(ramp: ClapEnv) -> None:
    lines = ramp.lines(
        "clap-path", "title:low", "title:high", "-n", "7", "-f", "$title"
    )
    assert lines == ["low", "mix0.9", "mix0.7", "mix0.5", "mix0.3", "mix0.1", "high"]
    short = ramp.lines(
        "clap-path", "title:low", "title:high", "-n", "3", "-f", "$title"
    )
    assert short[0] == "low"
    assert short[2] == "high"
    assert short[1].startswith("mix")
    two = ramp.lines("clap-path", "title:low", "title:high", "-n", "2", "-f", "$title")
    assert two == ["low", "high"]


def test_path_query_limits_the_way_and_m3u(ramp: ClapEnv, tmp_path: Path) -> None:
    target = tmp_path / "lists" / "way.m3u"
    target.parent.mkdir()
    lines = ramp.lines(
        "clap-path",
        "title:low",
        "title:high",
        "-n",
        "4",
        "--m3u",
        str(target),
        "title::^mix0\\.[13579]$",
        "-f",
        "$title",
    )
    assert lines[0] == "low"
    assert lines[-1] == "high"
    assert len(lines) == 4
    assert set(lines[1:3]) <= {
        "mix0.1",
        "mix0.3",
        "mix0.7",
        "mix0.9",
    }
    written = target.read_text().splitlines()
    assert [Path(p).stem for p in written] == lines


def test_path_m3u_follows_the_playlist_settings(ramp: ClapEnv, tmp_path: Path) -> None:
    folder = tmp_path / "playlists"
    ramp.reload(playlist_dir=str(folder), relative_to=str(tmp_path), extended=True)
    ramp.run("clap-path", "title:low", "title:high", "-n", "3", "--m3u", "way.m3u")
    text = (folder / "way.m3u").read_text().splitlines()
    assert text[0] == "#EXTM3U"
    assert text[1].startswith("#EXTINF:4,tester - low")
    assert text[2] == "ramp/low.flac"
    assert len(text) == 7


def _path_of_6(ramp: ClapEnv, between: str) -> tuple[list[str], list[str]]:
    """clap-path from low to high asking 6 tracks among those `between` matches."""
    args = ("title:low", "title:high", "-n", "6", between, "-f", "$title")
    return ramp.outputs("clap-path", *args)


def test_path_shorter_when_the_way_runs_out(ramp: ClapEnv) -> None:
    out, err = _path_of_6(ramp, "title::^mix0\\.[15]$")
    assert out in (["low", "mix0.5", "mix0.1", "high"],)
    assert err == [
        "clap: only 2 tracks lie between FROM and TO among those matching "
        "title::^mix0\\.[15]$: the path is shorter"
    ]


def test_a_huge_path_length_is_the_tracks_there_are(ramp: ClapEnv) -> None:
    # (numpy refused to lay out 10**20 waypoints: a traceback)
    huge = "99999999999999999999"
    out, err = ramp.outputs(
        "clap-path",
        "title:low",
        "title:high",
        "-n",
        huge,
        "title:mix0.5",
        "-f",
        "$title",
    )
    assert out == ["low", "mix0.5", "high"]
    assert err == [
        "clap: only 1 track lies between FROM and TO among those matching "
        "title:mix0.5: the path is shorter"
    ]
    out, err = ramp.outputs("clap-path", "title:low", "title:high", "-n", huge)
    assert 2 < len(out) <= len(ramp.lib.items())
    assert out[0].endswith("low")
    assert out[-1].endswith("high")
    assert len(err) == 1
    assert err[0].endswith(": the path is shorter")


def test_path_counts_one_track_between_in_the_singular(ramp: ClapEnv) -> None:
    out, err = _path_of_6(ramp, "title:mix0.5")
    assert out == ["low", "mix0.5", "high"]
    assert err == [
        "clap: only 1 track lies between FROM and TO among those matching "
        "title:mix0.5: the path is shorter"
    ]
    # A query that matches only the ends leaves none between.
    assert ramp.outputs(
        "clap-path", "title:low", "title:high", "title::^(low|high)$", "-f", "$title"
    ) == (
        ["low", "high"],
        [
            "clap: no track lies between FROM and TO among those matching "
            "title::^(low|high)$: the path is shorter"
        ],
    )


def test_path_through_a_query_that_matches_nothing_says_so(
    ramp: ClapEnv, corpus: dict[str, Path], tmp_path: Path
) -> None:
    """As the searches say it ("no tracks match Q"), not "only 0 tracks lie
    between": nothing printed, no playlist written."""
    way = tmp_path / "way.m3u"
    args = ("clap-path", "title:low", "title:high", "--m3u", str(way))
    assert ramp.outputs(*args, "title:Nope") == (
        [],
        ["clap: no tracks match title:Nope"],
    )
    ramp.add(corpus["mid"], title="fresh")  # not indexed
    assert ramp.outputs(*args, "title:fresh") == (
        [],
        [
            "clap: the one track matching title:fresh is not indexed yet: "
            "run `beet clap-index`"
        ],
    )
    assert not way.exists()


def test_path_m3u_that_cannot_be_written(ramp: ClapEnv, tmp_path: Path) -> None:
    """One line, the reason without Python's errno; no folder is made for a
    file the user named (clap-map -o does not make one either)."""
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    target = blocked / "way.m3u"
    with pytest.raises(UserError) as caught:
        ramp.run("clap-path", "title:low", "title:high", "--m3u", str(target))
    assert str(caught.value) == f"cannot write {target}: Not a directory"
    missing = tmp_path / "no" / "such" / "way.m3u"
    with pytest.raises(UserError) as caught:
        ramp.run("clap-path", "title:low", "title:high", "--m3u", str(missing))
    assert str(caught.value) == f"cannot write {missing}: No such file or directory"
    assert not (tmp_path / "no").exists()


def test_path_m3u_is_written_when_nobody_reads_the_path(
    tmp_path: Path, tiny_bundle: Path, corpus: dict[str, Path]
) -> None:
    """`beet clap-path ... --m3u FILE | head -2`: once the reader is gone,
    the next line printed ends beets, quietly and with status 0. The
    playlist is written before the path is printed, so it is there."""
    import os
    import subprocess
    import sys

    from clap_helpers import beet, beet_env, make_beetsdir

    kinds = ["low", "mid", "high"]
    beetsdir = make_beetsdir(
        tmp_path, tiny_bundle, [corpus[k] for k in kinds], titles=kinds
    )
    assert beet(beetsdir, "clap-index").returncode == 0
    target = tmp_path / "trip.m3u"
    args = ["clap-path", "title:low", "title:high", "-n", "2", "--m3u", str(target)]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "beets", *args],
            env=beet_env(beetsdir),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr
    written = target.read_text().splitlines()
    assert [Path(p).stem for p in written] == ["low", "high"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("title:nothing", "title:high"), r"^FROM title:nothing matches no track$"),
        (("title:low", "title:nothing"), r"^TO title:nothing matches no track$"),
        (
            ("title:low", "title::^low$"),
            r"^FROM and TO are the same track \(tester - low\): a path needs two$",
        ),
        (
            ("title:low", "title:high", "-n", "1"),
            r"^-n/--number must be at least 2 for a path \(FROM and TO\), not 1$",
        ),
        (("title:low",), r"^give the two ends: beet clap-path FROM TO \[QUERY\]"),
    ],
)
def test_path_bad_input_is_one_line(
    ramp: ClapEnv, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        ramp.run("clap-path", *args)


def test_path_end_without_a_vector(ramp: ClapEnv, corpus: dict[str, Path]) -> None:
    ramp.add(corpus["mid"], title="fresh")
    with pytest.raises(
        UserError,
        match=r"^TO \(tester - fresh\) is not indexed yet: run `beet clap-index`$",
    ):
        ramp.run("clap-path", "title:low", "title:fresh")


# The shipped model on renders that differ in the drums only ------------------


@pytest.fixture
def drum_pairs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Iterator[ClapEnv]:
    """A library of harmonic beds (tests/model/renders.py), each alone and
    with a drum kit over it, indexed with the shipped default model."""
    import sys

    from beetsplug.clap.model import default_bundle_path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
    from renders import minimal_pairs

    with ClapEnv(capsys, default_bundle_path()) as env:
        for name, (bed, drummed) in minimal_pairs(16000, 6.0).items():
            for title, audio in ((name, bed), (f"{name} with drums", drummed)):
                path = write_audio(tmp_path / f"{title}.flac", rate=16000, data=audio)
                env.add(path, title=title)
        env.run("clap-index")
        yield env


def test_like_this_without_drums_finds_the_same_music_without_them(
    drum_pairs: ClapEnv,
) -> None:
    """The answer is known: the seed's own bed without the drum kit. Plain
    similarity does not find it first; the description alone does not know
    which bed; together they do."""
    for bed in ("piano", "pad", "organ"):
        seed = f"title:{bed} with drums"
        composed = drum_pairs.lines(
            "clap", "without drums", "--like", seed, "-n", "2", "-f", "$title"
        )
        assert composed[0] == bed
        assert not any("drums" in title for title in composed)
        short = drum_pairs.lines(
            "clap-similar", seed, "--without", "drums", "-n", "2", "-f", "$title"
        )
        assert short == composed
    # The unlike direction alone: like the bed, unlike its drummed twin.
    unlike = drum_pairs.lines(
        "clap",
        "--like",
        "title::^pad$",
        "--unlike",
        "title:pad with drums",
        "-n",
        "2",
        "-f",
        "$title",
    )
    assert not any("drums" in title for title in unlike)


# The ranking against exact scoring, without audio --------------------------


@pytest.mark.parametrize("seed_count", [3, 600])
def test_composed_ranking_is_the_exact_top_without_seeds(
    tmp_path: Path, seed_count: int
) -> None:
    """Few seeds are dropped from the pool, many are filtered out of the
    scan: either way the result is the exact composed top, seeds left out."""
    from types import SimpleNamespace

    from clap_helpers import bulk_library

    from beetsplug.clap.store import Embedded, Store

    n, dim, identity = 3000, 32, "d" * 64
    bulk_library(tmp_path / "library.db", n)
    rng = np.random.default_rng(seed_count)
    mat = rng.standard_normal((n, dim)).astype(np.float32)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    with Store.open(tmp_path / "library.db") as store:
        store.prepare(identity, dim, "test")
        store.write_batch(
            identity, [Embedded(i + 1, mat[i], None, 1.0, 1, 1) for i in range(n)], []
        )
        seeds = list(range(1, seed_count + 1))
        like = compose.seed_set(store, "--like", "seeds", seeds)
        unlike = compose.seed_set(store, "--unlike", "one", [n])
        query = compose.ComposedQuery(None, [like], [unlike])
        bundle = SimpleNamespace(identity=identity)
        ranked = compose.rank_items(store, bundle, query, 10)  # type: ignore[arg-type]
    scores = query.score(mat)
    scores[[s - 1 for s in [*seeds, n]]] = -np.inf
    expected = (np.argsort(-scores, kind="stable")[:10] + 1).tolist()
    assert [i for i, _ in ranked] == expected
    assert [s for _, s in ranked] == pytest.approx(
        [float(scores[i - 1]) for i in expected], abs=1e-5
    )
