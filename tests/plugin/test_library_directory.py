"""Tracks inside the library's directory, whose paths beets stores relative to it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from pathlib import Path

import pytest
from clap_helpers import ClapEnv

from beetsplug.clap.items import item_path

# beets >= 2.14 stores the path of a file inside the library's directory
# relative to it, and makes it absolute only where its context is set.
RELATIVE_PATHS = importlib.util.find_spec("beets.context") is not None
KINDS = ("low", "low2", "mid", "high", "noise")


@pytest.fixture
def inside(
    env: ClapEnv,
    corpus: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> ClapEnv:
    """The five tones copied into the library's directory, as `beet import`
    copies files, plus one file without tags; indexed from another folder."""
    for kind in KINDS:
        env.add(
            _copy(corpus[kind], env.lib_path / "tones" / f"{kind}.flac"), title=kind
        )
    untagged = _copy(corpus["noise"], env.lib_path / "misc" / "untitled.flac")
    env.add(untagged, artist="", title="")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # nothing is found by the working folder
    assert env.lines("clap-index") == ["clap-index: embedded 6, unchanged 0, failed 0"]
    return env


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    return dst


def _stored(env: ClapEnv) -> dict[str, bytes]:
    """Title (the file's name when untitled) -> path as beets stored it."""
    rows = env.sql("SELECT title, path FROM items")
    return {title or Path(os.fsdecode(path)).name: path for title, path in rows}


def test_they_are_indexed_and_found(inside: ClapEnv) -> None:
    if RELATIVE_PATHS:
        assert _stored(inside)["low"] == b"tones/low.flac"
    assert inside.lines("clap-index", "--pretend") == [
        "clap-index: would embed 0, unchanged 6"
    ]
    assert inside.lines("clap", "high tone", "-n", "1", "-f", "$path") == [
        str(inside.lib_path / "tones" / "high.flac")
    ]


def test_item_path_is_absolute_on_any_thread(inside: ClapEnv) -> None:
    """clap-web reads items on threads of its own (one per request)."""
    (item_id,) = [i.id for i in inside.lib.items("title:high")]
    seen: dict[str, object] = {}

    def read() -> None:
        item = inside.lib.get_item(item_id)
        seen["beets"] = item.path  # first: beets converts it once, then keeps it
        seen["ours"] = item_path(inside.lib, item)

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    assert seen["ours"] == str(inside.lib_path / "tones" / "high.flac")
    if RELATIVE_PATHS:  # why item_path exists: beets' own is relative there
        assert seen["beets"] == b"tones/high.flac"
    # On the command's thread too, where beets already makes it absolute.
    assert item_path(inside.lib, inside.lib.get_item(item_id)) == seen["ours"]


def test_playlists_name_their_files(inside: ClapEnv, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    inside.reload(
        playlist_dir=str(out),
        extended=True,
        playlists=[{"name": "Hiss", "query": "noise", "size": 6}],
    )
    inside.run("clap-playlists", "--no-auto")
    lines = (out / "Hiss.m3u").read_text().splitlines()
    files = lines[2::2]
    assert sorted(files) == sorted(
        [str(inside.lib_path / "tones" / f"{k}.flac") for k in KINDS]
        + [str(inside.lib_path / "misc" / "untitled.flac")]
    )
    labels = {line.split(",", 1)[1] for line in lines[1::2]}
    assert labels == {f"tester - {k}" for k in KINDS} | {"untitled.flac"}
    # clap-path --m3u, relative_to: paths relative to that folder that lead
    # to the files, whatever the working folder.
    inside.reload(playlist_dir=str(out), relative_to=str(out), extended=False)
    inside.run("clap-path", "title::^low$", "title:high", "-n", "3", "--m3u", "way.m3u")
    way = (out / "way.m3u").read_text().splitlines()
    assert len(way) == 3
    assert not any(line.startswith("/") for line in way)
    assert (out / way[0]).resolve() == (
        inside.lib_path / "tones" / "low.flac"
    ).resolve()
    assert (out / way[2]).resolve() == (
        inside.lib_path / "tones" / "high.flac"
    ).resolve()
