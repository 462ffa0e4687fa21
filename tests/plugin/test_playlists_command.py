"""`beet clap-playlists` and the playlist refresh after an import."""

from __future__ import annotations

from pathlib import Path

import pytest
from beets.ui import UserError
from clap_helpers import ClapEnv, write_tagged


def _lists(folder: Path) -> dict[str, list[str]]:
    return {
        p.name: p.read_text().split("\n")[:-1] for p in sorted(folder.glob("*.m3u"))
    }


def test_prompt_and_automatic_playlists_are_written(
    indexed: ClapEnv, corpus: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "lists"
    indexed.reload(
        playlist_dir=str(out),
        cluster_min_size=1,
        playlists=[
            {"name": "Lows", "query": "low bass", "size": 2},
            {"name": "Bright", "query": "high", "filter": "title:high", "size": 5},
        ],
    )
    printed = indexed.lines("clap-playlists")
    lists = _lists(out)
    assert sorted(Path(p).stem for p in lists["Lows.m3u"]) == ["low", "low2"]
    assert lists["Bright.m3u"] == [str(corpus["high"])]
    auto = [name for name in lists if name.startswith("clap-auto-")]
    assert auto, printed
    # Every indexed track lands in exactly one automatic playlist.
    assert sorted(t for name in auto for t in lists[name]) == sorted(
        str(corpus[k]) for k in ("low", "low2", "mid", "high", "noise")
    )
    assert printed[0] == f"wrote Lows: {out / 'Lows.m3u'} (2 tracks)"
    assert len(printed) == len(lists)
    # relative_to: paths relative to that folder, as smartplaylist writes them.
    indexed.reload(relative_to=str(out))
    indexed.run("clap-playlists", "--no-auto")
    (line,) = _lists(out)["Bright.m3u"]
    assert not line.startswith("/")
    assert (out / line).resolve() == corpus["high"].resolve()


def test_pretend_and_no_auto(indexed: ClapEnv, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    indexed.reload(playlist_dir=str(out), playlists=[{"name": "Lows", "query": "low"}])
    assert indexed.lines("clap-playlists", "--pretend", "--no-auto") == [
        f"would write Lows: {out / 'Lows.m3u'} (5 tracks)"
    ]
    assert not out.exists() or not list(out.iterdir())
    assert indexed.lines("clap-playlists", "--no-auto") == [
        f"wrote Lows: {out / 'Lows.m3u'} (5 tracks)"
    ]
    assert list(_lists(out)) == ["Lows.m3u"]


def test_playlist_config_mistakes_are_one_line_errors(
    indexed: ClapEnv, tmp_path: Path
) -> None:
    indexed.reload(
        playlist_dir=str(tmp_path / "lists"),
        playlists=[{"name": "90s", "query": "rock", "size": "ten"}],
    )
    with pytest.raises(
        UserError,
        match=r"^clap.playlists\[0\] \(90s\): 'size' must be a whole number >= 1",
    ):
        indexed.run("clap-playlists")
    assert not (tmp_path / "lists").exists()


def test_a_playlist_description_that_says_nothing_is_named_before_any_list(
    indexed: ClapEnv, tmp_path: Path
) -> None:
    out = tmp_path / "lists"
    indexed.reload(
        playlist_dir=str(out),
        playlists=[
            {"name": "Lows", "query": "low bass"},
            {"name": "Unfinished", "query": "high without"},
        ],
    )
    with pytest.raises(
        UserError,
        match=r"^clap.playlists\[1\] \(Unfinished\): 'high without' ends with "
        r"'without' and names nothing to leave out",
    ):
        indexed.run("clap-playlists")
    assert not out.exists()  # not even the valid first playlist


def test_playlists_before_indexing(
    env: ClapEnv, corpus: dict[str, Path], tmp_path: Path
) -> None:
    env.add(corpus["low"], title="low")
    env.reload(playlist_dir=str(tmp_path / "lists"))
    with pytest.raises(UserError, match=r"^the clap index is empty"):
        env.run("clap-playlists")


def test_auto_import_refreshes_configured_playlists(
    env: ClapEnv, tmp_path: Path
) -> None:
    out = tmp_path / "lists"
    env.reload(
        auto=True,
        playlist_dir=str(out),
        auto_playlists=False,
        playlists=[{"name": "Highs", "query": "high", "size": 1}],
    )
    src = tmp_path / "incoming"
    write_tagged(src, ("low", "high"))
    env.quiet_import(src)
    assert _lists(out) == {"Highs.m3u": [str(src / "02.flac")]}


def test_auto_import_without_a_playlist_dir_writes_no_playlist(
    env: ClapEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # clap-playlists would write to the current folder: an import, run from
    # anywhere, must not drop .m3u files there.
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    env.reload(auto=True, playlists=[{"name": "Highs", "query": "high", "size": 1}])
    src = tmp_path / "incoming"
    write_tagged(src, ("low", "high"))
    _out, err = env.quiet_import(src)
    assert list(here.iterdir()) == []
    assert not [line for line in err if "playlist" in line]
    assert len(env.lines("clap", "high", "-f", "$title")) == 2  # embedded on import


def test_a_playlist_folder_that_cannot_be_made_is_one_line(
    indexed: ClapEnv, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    folder = blocker / "lists"
    indexed.reload(playlist_dir=str(folder), cluster_min_size=1)
    # The dry run foresees it: it says what the real run would do.
    for args in (("-p",), ()):
        with pytest.raises(UserError) as info:
            indexed.run("clap-playlists", *args)
        assert str(info.value) == (
            f"cannot create playlist folder {folder}: Not a directory"
        ), args
    indexed.reload(playlist_dir=str(blocker), cluster_min_size=1)
    with pytest.raises(UserError) as info:
        indexed.run("clap-playlists", "-p")
    assert str(info.value) == f"cannot create playlist folder {blocker}: File exists"
    # A folder that can be made is not made by the dry run.
    indexed.reload(playlist_dir=str(tmp_path / "new" / "lists"), cluster_min_size=1)
    assert indexed.run("clap-playlists", "-p")
    assert not (tmp_path / "new").exists()


def test_an_import_survives_a_playlist_folder_that_cannot_be_made(
    env: ClapEnv, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    folder = blocker / "lists"
    env.reload(auto=True, playlist_dir=str(folder), cluster_min_size=1)
    src = tmp_path / "incoming"
    write_tagged(src, ("low",))
    _out, err = env.quiet_import(src)
    assert [line for line in err if line.startswith("clap:")] == [
        "clap: playlists not refreshed: "
        f"cannot create playlist folder {folder}: Not a directory"
    ]
    # Imported and embedded all the same.
    assert [item.title for item in env.lib.items()] == ["low"]
    assert env.lines("clap-index") == ["clap-index: embedded 0, unchanged 1, failed 0"]


def test_no_cluster_big_enough_keeps_the_automatic_playlists_and_says_why(
    indexed: ClapEnv, tmp_path: Path
) -> None:
    out = tmp_path / "lists"
    indexed.reload(playlist_dir=str(out), cluster_min_size=1)
    indexed.run("clap-playlists")
    before = _lists(out)
    assert len(before) == 2  # five tracks: two clusters
    largest = max(len(tracks) for tracks in before.values())

    indexed.reload(cluster_min_size=100)
    printed, err = indexed.outputs("clap-playlists")
    assert printed == []
    assert err == [
        f"clap: no automatic playlist: the largest of the 2 clusters of 5 tracks "
        f"has {largest}, fewer than cluster_min_size 100; the 2 automatic "
        f"playlists already in {out} are kept"
    ]
    assert _lists(out) == before

    # One cluster a track: none reaches the default minimum of 5 either.
    indexed.reload(cluster_min_size=5)
    printed, err = indexed.outputs("clap-playlists", "--clusters", "10000")
    assert printed == []
    assert err == [
        "clap: no automatic playlist: the largest of the 5 clusters of 5 tracks "
        f"has 1, fewer than cluster_min_size 5; the 2 automatic playlists "
        f"already in {out} are kept"
    ]
    assert _lists(out) == before


def test_a_prompt_playlist_whose_filter_matches_nothing_is_a_warning(
    indexed: ClapEnv, tmp_path: Path
) -> None:
    out = tmp_path / "lists"
    indexed.reload(
        playlist_dir=str(out),
        playlists=[
            {"name": "x", "query": "low", "filter": "title:nothing"},
            {"name": "Lows", "query": "low", "size": 1},
        ],
    )
    warning = (
        "clap: playlist x: no indexed track matches its filter 'title:nothing', "
        "so x.m3u has no tracks"
    )
    assert indexed.outputs("clap-playlists", "--pretend", "--no-auto") == (
        [
            f"would write x: {out / 'x.m3u'} (0 tracks)",
            f"would write Lows: {out / 'Lows.m3u'} (1 track)",
        ],
        [warning],
    )
    _printed, err = indexed.outputs("clap-playlists", "--no-auto")
    assert err == [warning]
    assert _lists(out)["x.m3u"] == []  # written, empty: the filter's answer
