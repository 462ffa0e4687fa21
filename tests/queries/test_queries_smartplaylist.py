"""beets' smartplaylist plugin with a `clap:` query, through `beet splupdate`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from queries_helpers import ROOT

sys.path.insert(0, str(ROOT / "tests" / "plugin"))

import beets.plugins
from bundle_factory import build_tiny_bundle
from clap_helpers import ClapEnv, write_audio


@pytest.fixture
def library(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Five indexed tones (the tiny bundle tells low, high and noise apart)
    with clap and smartplaylist loaded together."""
    bundle = build_tiny_bundle(tmp_path / "bundle")
    # A bag-of-words toy model is negation-blind: "high, no noise" points
    # half at noise, so the parser's penalty has to do the work.
    with ClapEnv(capsys, bundle, query_top_k=2, negation_weight=1.5) as env:
        files = {}
        for name, kind in [
            ("low", "low"),
            ("low2", "120"),
            ("mid", "mid"),
            ("high", "high"),
            ("noise", "noise"),
        ]:
            files[name] = write_audio(tmp_path / "music" / f"{name}.flac", kind)
            env.add(files[name], title=name)
        env.run("clap-index")
        env.unload_plugins()
        env.config["plugins"] = ["clap", "smartplaylist"]
        env.config["smartplaylist"].set(
            {
                "playlist_dir": str(tmp_path / "playlists"),
                "relative_to": str(tmp_path / "playlists"),
                "playlists": [
                    {"name": "low.m3u", "query": 'clap:"low bass"'},
                    {"name": "bright.m3u", "query": 'clap:"high, no noise" ^title:mid'},
                ],
            }
        )
        beets.plugins.load_plugins()
        yield env, files


def test_splupdate_writes_clap_query_playlists(library, tmp_path: Path) -> None:
    env, files = library
    env.run("splupdate")
    out = tmp_path / "playlists"
    low = (out / "low.m3u").read_text().splitlines()
    # query_top_k = 2: the two low tones, and nothing else.
    assert sorted(low) == ["../music/low.flac", "../music/low2.flac"]
    bright = (out / "bright.m3u").read_text().splitlines()
    assert "../music/high.flac" in bright
    assert "../music/noise.flac" not in bright  # negated in the description
    assert "../music/mid.flac" not in bright  # excluded by the beets query
    for line in low + bright:
        assert (out / line).resolve() == (out / line).resolve(strict=True)
    assert os.path.isfile(files["high"])


def test_without_the_parser_penalty_the_negated_track_comes_back(
    library, tmp_path: Path
) -> None:
    """Control for the test above: with negation_weight 0 the toy model's
    negation-blind ranking puts the noise track in the playlist."""
    env, _files = library
    env.unload_plugins()
    env.config["clap"]["negation_weight"] = 0.0
    env.config["plugins"] = ["clap", "smartplaylist"]
    beets.plugins.load_plugins()
    env.run("splupdate")
    bright = (tmp_path / "playlists" / "bright.m3u").read_text().splitlines()
    assert "../music/noise.flac" in bright
