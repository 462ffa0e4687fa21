"""A build that cannot start or is stopped: checked before any folder, one line, and
a rerun into the folder it left starts again (real subprocesses, real signals)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer.synth import main as synth_main
from trainer.synth import render
from trainer.synth.corpus import UNFINISHED
from trainer.synth.fluid import ChannelSynth, SynthError

REPO = Path(__file__).resolve().parents[2]
# Runs `python -m trainer` after PATCH: what a machine without a library, or
# with a damaged soundfont, looks like to the command.
DRIVER = """
import ctypes.util, sys
from pathlib import Path
from trainer.synth import render
{patch}
from trainer.__main__ import main
sys.exit(main(sys.argv[1:]))
"""
NO_LIBFLUIDSYNTH = """
_find = ctypes.util.find_library
ctypes.util.find_library = (
    lambda name: "libfluidsynth-missing.so.3" if name == "fluidsynth" else _find(name)
)
"""
SOUNDFONT = "render.SOUNDFONTS.update(FluidR3_GM=Path({0!r}), TimGM6mb=Path({0!r}))"
# Long enough that the first clip appears well before the last.
RUN = ["--clips", "40", "--duration", "3", "--workers", "2", "--quiet"]


def _env(**changes: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.update(changes)
    return env


def _truncated(tmp: Path) -> Path:
    path = tmp / "truncated.sf2"
    with render.SOUNDFONTS["TimGM6mb"].open("rb") as fh:
        path.write_bytes(fh.read(100_000))
    return path


def _not_a_soundfont(tmp: Path) -> Path:
    path = tmp / "noise.sf2"
    path.write_bytes(random.Random(0).randbytes(5000))
    return path


@pytest.mark.parametrize(
    "case", ["no espeak-ng", "no libfluidsynth", "truncated", "not a soundfont"]
)
def test_what_rendering_needs_is_checked_before_any_folder(
    tmp_path: Path, case: str
) -> None:
    out = tmp_path / "data"
    patch, env = "", _env()
    if case == "no espeak-ng":
        (tmp_path / "bin").mkdir()
        env["PATH"] = str(tmp_path / "bin")
        want = "espeak-ng not found: install the Debian package 'espeak-ng'"
    elif case == "no libfluidsynth":
        patch = NO_LIBFLUIDSYNTH
        want = "libfluidsynth not found (libfluidsynth-missing.so.3: cannot open"
    elif case == "truncated":
        sf2 = _truncated(tmp_path)
        patch = SOUNDFONT.format(str(sf2))
        size = render.SOUNDFONTS["TimGM6mb"].stat().st_size
        want = (
            f"soundfont {sf2} is truncated (100000 of {size} bytes): "
            "reinstall its package"
        )
    else:
        sf2 = _not_a_soundfont(tmp_path)
        patch = SOUNDFONT.format(str(sf2))
        want = f"soundfont {sf2} is not a SoundFont 2 file (no RIFF 'sfbk' header)"
    command = [sys.executable, "-c", DRIVER.format(patch=patch), "synth"]
    proc = subprocess.run(
        [*command, "--out", str(out), *RUN],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    # One line, the C libraries' own explanations kept off the terminal.
    assert proc.stderr.startswith(f"synth: error: {want}")
    assert proc.stderr.count("\n") == 1
    assert not out.exists()


def test_fluidsynth_s_reasons_go_into_the_error_not_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A whole RIFF 'sfbk' file whose chunks are not a SoundFont's.
    body = b"sfbk" + b"\x01\x02not a chunk" * 100
    sf2 = tmp_path / "garbled.sf2"
    sf2.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    with pytest.raises(SynthError) as caught:
        ChannelSynth(sf2, render.RENDER_RATE)
    assert str(caught.value) == (
        f"FluidSynth could not load soundfont {sf2} (Invalid chunk id in level 0 parse)"
    )
    assert capfd.readouterr().err == ""


def _start(out: Path) -> subprocess.Popen[str]:
    """`python -m trainer synth` in a process group of its own, as a shell runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "trainer", "synth", "--out", str(out), *RUN],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_first_clip(proc: subprocess.Popen[str], out: Path) -> None:
    deadline = time.monotonic() + 300  # a bound, not a timing: loaded machines
    while not any((out / "audio").glob("*/*.flac")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no clip rendered"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"]
)
def test_a_stopped_build_says_one_line_and_the_same_command_starts_again(
    tmp_path: Path, signum: signal.Signals
) -> None:
    out = tmp_path / "data"
    proc = _start(out)
    _wait_for_first_clip(proc, out)
    # The whole group, workers too: what Ctrl-C in a terminal (or a
    # scheduler's SIGTERM to the job) does.
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum
    assert err == (
        f"synth: interrupted; {out} is unfinished: the same command removes it "
        "and starts again\n"
    )
    assert (out / UNFINISHED).is_file()
    assert not (out / "corpus.json").exists()
    if signum == signal.SIGTERM:
        return
    again = _start(out)
    stdout, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert err == (
        f"synth: {out} held an unfinished build (no corpus.json): removed it, "
        "starting again\n"
    )
    assert stdout.startswith(f"synth: wrote 40 clips to {out} (")
    assert sorted(p.name for p in out.iterdir()) == ["audio", "captions", "corpus.json"]
    assert len(list((out / "audio").glob("*/*.flac"))) == 40


def test_a_folder_synth_did_not_leave_unfinished_is_never_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    theirs = out / "audio" / "train" / "theirs.flac"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"a clip of someone's own data directory")
    argv = ["--out", str(out), *RUN]
    assert synth_main(argv) == 2
    assert capsys.readouterr().err == (
        f"synth: error: {out} holds audio/ or captions/ but no corpus.json, and no "
        "synth build left them unfinished; choose another --out or remove them\n"
    )
    # An unfinished build with a file synth does not write is left as it is.
    (out / UNFINISHED).write_text("")
    notes = out / "captions" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("mine")
    assert synth_main(argv) == 2
    assert capsys.readouterr().err == (
        f"synth: error: {out} holds an unfinished synth build, and {notes}, which "
        "synth does not write; remove it (or the folder), or choose another --out\n"
    )
    assert theirs.is_file()
    assert notes.is_file()
    shutil.rmtree(out / "captions")
    (out / "audio" / "train" / "clips").mkdir()
    assert synth_main(argv) == 2
    assert f"and {out / 'audio' / 'train' / 'clips'}, which" in capsys.readouterr().err
