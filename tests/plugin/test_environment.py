"""A broken runtime library: every clap command says so in one line, changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from clap_helpers import beet, make_beetsdir, write_audio

# What a broken install raises on import (a shared library gone missing).
BROKEN = {
    "onnxruntime": "libonnxruntime.so.1: cannot open shared object file",
    "tokenizers": "tokenizers.abi3.so: undefined symbol: PyInit_tokenizers",
}
COMMANDS = (
    ("clap-index",),
    ("clap", "low"),
    ("ls", "clap:low"),
    ("clap-similar", "title:track 0"),
    ("clap-playlists",),
)


def _shadowing(root: Path, module: str) -> Path:
    """A folder whose package `module` raises ImportError when imported;
    first on PYTHONPATH, it hides the real one as a broken install would."""
    folder = root / f"broken-{module}"
    (folder / module).mkdir(parents=True)
    (folder / module / "__init__.py").write_text(
        f"raise ImportError({BROKEN[module]!r})\n"
    )
    return folder


def _index_rows(beetsdir: Path) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(beetsdir / "library.db")
    try:
        return conn.execute(
            "SELECT item_id, status, bundle FROM clap_state ORDER BY item_id"
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("module", sorted(BROKEN))
def test_a_broken_runtime_library_is_one_line_for_every_command(
    tmp_path: Path, tiny_bundle: Path, module: str
) -> None:
    files = [
        write_audio(tmp_path / "music" / f"{kind}.flac", kind)
        for kind in ("low", "high")
    ]
    beetsdir = make_beetsdir(tmp_path, tiny_bundle, files)
    indexed = beet(beetsdir, "clap-index")
    assert indexed.stdout.splitlines()[-1] == (
        "clap-index: embedded 2, unchanged 0, failed 0"
    ), indexed.stderr
    before = _index_rows(beetsdir)
    write_audio(files[0], "mid")  # a changed file the broken run must not touch
    shadow = str(_shadowing(tmp_path, module))
    expected = (
        f"error: cannot import {module} (ImportError: {BROKEN[module]}): "
        f"the clap plugin needs it; reinstall it: pip install --force-reinstall "
        f"{module}"
    )
    for args in COMMANDS:
        proc = beet(beetsdir, *args, pythonpath=shadow)
        assert (proc.returncode, proc.stdout, proc.stderr.splitlines()) == (
            1,
            "",
            [expected],
        ), args
    # beets itself and loading the plugin need none of it.
    listed = beet(beetsdir, "ls", "-f", "$title", pythonpath=shadow)
    assert (listed.returncode, listed.stdout.split("\n")) == (
        0,
        ["track 0", "track 1", ""],
    ), listed.stderr
    assert _index_rows(beetsdir) == before
    # Repaired, the index carries on from where it was.
    again = beet(beetsdir, "clap-index")
    assert again.stdout.splitlines()[-1] == (
        "clap-index: embedded 1, unchanged 1, failed 0"
    ), again.stderr
