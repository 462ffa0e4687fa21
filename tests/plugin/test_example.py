"""examples/index-and-search.sh runs, keeps every untagged file, and says
where its library stays."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from clap_helpers import REPO, write_audio


def test_the_example_names_its_throwaway_library(tmp_path: Path) -> None:
    music = tmp_path / "music"
    # Untagged files in two folders: both "albums" have the same (empty)
    # album and artist, and beets' quiet import would skip the second as a
    # duplicate of the first.
    for folder, kinds in (("one", ("low", "noise")), ("two", ("high", "mid"))):
        for kind in kinds:
            write_audio(music / folder / f"{kind}.wav", kind, seconds=4.0)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "BEETSDIR"}
    env.update(
        HOME=str(tmp_path / "home"),
        TMPDIR=str(scratch),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    run = subprocess.run(
        ["bash", str(REPO / "examples" / "index-and-search.sh"), str(music), "noise"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    (library,) = scratch.glob("beets-clap-library-*")
    assert (library / "library.db").is_file()
    assert run.stdout.splitlines()[-3:] == [
        f"The library is kept in {library}",
        f'  search it again:  BEETSDIR={library} beet clap "QUERY"',
        f"  remove it:        rm -r {library}",
    ]
    assert "clap-index: embedded 4, unchanged 0, failed 0" in run.stdout
    assert "already in the library" not in run.stdout + run.stderr
    # Untagged results are printed by their paths.
    (best,) = [line for line in run.stdout.splitlines() if "noise.wav" in line]
    assert best.split()[-1] == str(music / "one" / "noise.wav")
    # Run again on the kept library: the items keep their ids, so nothing is
    # embedded again (a plain re-import would replace every item).
    again = subprocess.run(
        ["bash", str(REPO / "examples" / "index-and-search.sh"), str(music), "noise"],
        env={**env, "BEETSDIR": str(library)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr
    assert "clap-index: embedded 0, unchanged 4, failed 0" in again.stdout
