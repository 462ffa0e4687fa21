"""examples/index-and-search.sh runs, and says where its library stays."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from clap_helpers import REPO, write_audio


def test_the_example_names_its_throwaway_library(tmp_path: Path) -> None:
    music = tmp_path / "music"
    for kind in ("low", "noise"):
        write_audio(music / f"{kind}.wav", kind, seconds=4.0)
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
    assert "clap-index: embedded 2, unchanged 0, failed 0" in run.stdout
