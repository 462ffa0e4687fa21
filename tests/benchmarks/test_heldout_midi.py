"""The held-out compositions benchmark's soundfont checks and render cache.

Part of the project's suite (heldout_midi.py beside it is not a test): it
guards what the benchmark's figures rest on, that they come from the
soundfont they name and from renders that finished. Tiny MIDI files, the
TimGM6mb soundfont (.ci/setup installs it with fluidsynth).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import heldout_midi

TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def write_midi(path: Path, seconds: float) -> Path:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes.append(pretty_midi.Note(velocity=100, pitch=60, start=0, end=seconds))
    midi.instruments.append(piano)
    midi.write(str(path))
    return path


def unpacked_package(cache: Path) -> Path:
    """An empty OpenMSX unpack where fetch_package looks: no network."""
    root = cache / "pkgs" / heldout_midi.PACKAGE
    root.mkdir(parents=True)
    (root / ".realset-version").write_text(heldout_midi.VERSION)
    return cache


def test_a_soundfont_that_is_not_one_is_one_line_and_status_2(tmp_path, capsys):
    random_bytes = tmp_path / "random.sf2"
    random_bytes.write_bytes(os.urandom(4096))
    riff_wave = tmp_path / "wave.sf2"
    riff_wave.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    cache = unpacked_package(tmp_path / "cache")
    missing, folder = tmp_path / "missing.sf2", tmp_path
    for soundfont, says in [
        (
            missing,
            f"soundfont {missing} not found: install fluid-soundfont-gm and "
            "timgm6mb-soundfont",
        ),
        (folder, f"soundfont {folder}: Is a directory"),
        (
            random_bytes,
            f"soundfont {random_bytes} is not a SoundFont 2 file (no RIFF 'sfbk' "
            "header)",
        ),
        (
            riff_wave,
            f"soundfont {riff_wave} is not a SoundFont 2 file (no RIFF 'sfbk' header)",
        ),
    ]:
        argv = ["--cache", str(cache), "--soundfont", str(soundfont)]
        assert heldout_midi.main([*argv, "--bundle", str(tmp_path)]) == 2
        assert capsys.readouterr() == ("", f"heldout_midi: {says}\n")
    assert not (cache / "heldout_midi").exists()  # nothing rendered


def test_no_fluidsynth_is_one_line_and_status_2(tmp_path, capsys, monkeypatch):
    soundfont = tmp_path / "font.sf2"
    soundfont.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    monkeypatch.setenv("PATH", str(tmp_path))
    argv = ["--cache", str(unpacked_package(tmp_path / "cache"))]
    argv += ["--soundfont", str(soundfont), "--bundle", str(tmp_path)]
    assert heldout_midi.main(argv) == 2
    assert capsys.readouterr() == (
        "",
        "heldout_midi: fluidsynth is not on PATH (Debian: apt install fluidsynth)\n",
    )


def test_renders_are_keyed_by_the_soundfonts_contents_and_settings(tmp_path):
    first, second = tmp_path / "a" / "font.sf2", tmp_path / "b" / "font.sf2"
    for path, body in [(first, b"one"), (second, b"two")]:
        path.parent.mkdir()
        path.write_bytes(b"RIFF\x04\x00\x00\x00sfbk" + body)
    key = heldout_midi.soundfont_key(first)
    assert key == "font-1cd721cf6e8b5ef4"  # the start of the file's sha256
    assert heldout_midi.soundfont_key(second) != key
    shutil.copy(second, first)  # another soundfont under the same name
    assert heldout_midi.soundfont_key(first) == heldout_midi.soundfont_key(second)
    folder = heldout_midi.render_folder(tmp_path, key, "2.3.1")
    assert folder == tmp_path / "heldout_midi" / key / "fluidsynth2.3.1-g0.6-r16000"
    assert heldout_midi.render_folder(tmp_path, key, "2.4.0") != folder


def test_the_render_key_reads_the_installed_fluidsynths_version():
    version = heldout_midi.fluidsynth_version()
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?\S*", version), version


def test_a_render_is_kept_under_its_name_and_nothing_else(tmp_path):
    midi = write_midi(tmp_path / "tune.mid", 0.5)
    out = tmp_path / "renders"
    x = heldout_midi.render(midi, TIMGM, out)
    assert len(x) > heldout_midi.RATE * 0.5
    assert abs(x).max() > 0.01
    assert [p.name for p in out.iterdir()] == ["tune.wav"]


def test_a_soundfont_fluidsynth_cannot_load_renders_nothing(tmp_path):
    # A SoundFont header over nothing: fluidsynth falls back to its default
    # soundfont and exits 0, saying so only on stderr.
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00sfbk" + bytes(16))
    out = tmp_path / "renders"
    with pytest.raises(heldout_midi.HeldoutError, match="Failed to load the SoundF"):
        heldout_midi.render(write_midi(tmp_path / "tune.mid", 0.5), broken, out)
    assert list(out.iterdir()) == []


def test_an_interrupted_render_leaves_nothing_to_reuse(tmp_path):
    # An hour of one note takes fluidsynth seconds: Ctrl-C (SIGINT to the
    # process group) arrives once its output file exists, mid-render.
    midi = write_midi(tmp_path / "long.mid", 3600.0)
    out = tmp_path / "renders"
    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"import heldout_midi; from pathlib import Path; "
        f"heldout_midi.render(Path({str(midi)!r}), Path({str(TIMGM)!r}), "
        f"Path({str(out)!r}))"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not (out.is_dir() and any(p.stat().st_size for p in out.iterdir())):
            assert child.poll() is None, child.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(child.pid, signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert b"KeyboardInterrupt" in err
    assert list(out.iterdir()) == []
