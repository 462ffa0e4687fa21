"""A broken environment stops clap-index before it changes anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clap_helpers import REPO, beet_env, make_beetsdir, write_audio

from beetsplug.clap.store import STATE, VECTORS, connect


def _beet(beetsdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "beets", *args],
        env=beet_env(beetsdir, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _snapshot(beetsdir: Path) -> tuple[dict, dict]:
    """Every vector and every state row."""
    conn = connect(beetsdir / "library.db")
    try:
        vectors = dict(conn.execute(f"SELECT item_id, embedding FROM {VECTORS}"))
        states = {
            row[0]: row[1:]
            for row in conn.execute(
                f"SELECT item_id, mtime, size, bundle, status, error FROM {STATE}"
            )
        }
    finally:
        conn.close()
    return vectors, states


def _indexed(tmp_path: Path, bundle: Path, suffixes: list[str], jobs: int) -> Path:
    music = tmp_path / "music"
    files = [
        write_audio(music / f"{i}{suffix}", kind, seconds=3.0)
        for i, (suffix, kind) in enumerate(
            zip(suffixes, ["low", "mid", "high", "noise"] * 4, strict=False)
        )
    ]
    beetsdir = make_beetsdir(tmp_path, bundle, files, jobs)
    first = _beet(beetsdir, "clap-index")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == (
        f"clap-index: embedded {len(files)}, unchanged 0, failed 0"
    )
    return beetsdir


@pytest.mark.parametrize("module", ["soundfile", "soxr"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_decoder_library_that_cannot_import_changes_nothing(
    tmp_path: Path, tiny_bundle: Path, module: str, jobs: int
) -> None:
    beetsdir = _indexed(tmp_path, tiny_bundle, [".flac", ".wav", ".mp3"], jobs)
    before = _snapshot(beetsdir)
    assert len(before[0]) == 3
    # A real broken install: a module of that name that fails to import,
    # first on the path.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / f"{module}.py").write_text(
        f"raise ImportError('{module} is shadowed by this test')\n"
    )
    broken = {"PYTHONPATH": os.pathsep.join([str(shadow), str(REPO)])}
    expected = [
        f"error: cannot decode audio: {module} does not work (ImportError: "
        f"{module} is shadowed by this test); reinstall it "
        f"(pip install --force-reinstall {module})"
    ]
    forced = _beet(beetsdir, "clap-index", "--force", **broken)
    assert forced.returncode == 1
    assert forced.stderr.splitlines() == expected
    assert forced.stdout == ""
    assert _snapshot(beetsdir) == before
    # Files changed on disk take the same road.
    for path in (tmp_path / "music").iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))
    changed = _beet(beetsdir, "clap-index", **broken)
    assert changed.returncode == 1
    assert changed.stderr.splitlines() == expected
    assert _snapshot(beetsdir) == before
    # Searching still works with the index as it was.
    search = _beet(beetsdir, "clap", "low", "-n", "1", "-f", "$title", **broken)
    assert search.returncode == 0, search.stderr
    assert search.stdout.splitlines() == ["track 0"]
    # Repaired, the changed files are embedded again.
    repaired = _beet(beetsdir, "clap-index")
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.splitlines()[-1] == (
        "clap-index: embedded 3, unchanged 0, failed 0"
    )


def _no_ffmpeg(tmp_path: Path) -> dict[str, str]:
    """A PATH without ffmpeg (beet itself runs as sys.executable -m beets)."""
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty)}


def test_ffmpeg_missing_for_every_file_changes_nothing(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    beetsdir = _indexed(tmp_path, tiny_bundle, [".m4a", ".m4a"], 1)
    before = _snapshot(beetsdir)
    run = _beet(beetsdir, "clap-index", "--force", **_no_ffmpeg(tmp_path))
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "error: ffmpeg is not installed and none of the 2 file(s) to embed "
        "(.m4a) can be read without it: install ffmpeg, then run clap-index again"
    ]
    assert _snapshot(beetsdir) == before


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_file_that_only_lacks_ffmpeg_keeps_its_vector(
    tmp_path: Path, tiny_bundle: Path, jobs: int
) -> None:
    beetsdir = _indexed(tmp_path, tiny_bundle, [".wav", ".m4a"], jobs)
    vectors, states = _snapshot(beetsdir)
    run = _beet(beetsdir, "clap-index", "--force", **_no_ffmpeg(tmp_path))
    assert run.returncode == 0, run.stderr
    m4a = tmp_path / "music" / "1.m4a"
    assert run.stdout.splitlines()[-2:] == [
        f"failed: {m4a}: unreadable audio: libsndfile cannot decode it and "
        "ffmpeg is not installed (kept its vector)",
        "clap-index: embedded 1, unchanged 0, failed 1",
    ]
    after_vectors, after_states = _snapshot(beetsdir)
    assert after_vectors[2] == vectors[2]
    assert after_states[2] == states[2]
    assert set(after_vectors) == {1, 2}


def test_a_truncated_file_is_failed_and_retried(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    # The case end to end: a FLAC cut to a third is recorded as
    # truncated (not embedded from its first seconds) and retried next run.
    music = tmp_path / "music"
    good = write_audio(music / "good.flac", "low", seconds=40.0)
    cut = music / "cut.flac"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    beetsdir = make_beetsdir(tmp_path, tiny_bundle, [good, cut])
    run = _beet(beetsdir, "clap-index")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "clap-index: embedded 1, unchanged 0, failed 1"
    assert lines[-2].startswith(f"failed: {cut}: truncated: header says 40 s, 1")
    again = _beet(beetsdir, "clap-index")
    assert again.stdout.splitlines()[-1] == (
        "clap-index: embedded 0, unchanged 1, failed 1"
    )


def test_verbose_index_logs_each_track_and_each_failure_once(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    beetsdir = _indexed(tmp_path, tiny_bundle, [".flac", ".wav"], 1)
    music = tmp_path / "music"
    (music / "1.wav").write_bytes(b"RIFF not really a wave file" * 10)
    run = _beet(beetsdir, "-v", "clap-index", "--force")
    assert run.returncode == 0, run.stderr
    lines = (run.stdout + run.stderr).splitlines()
    assert [line for line in lines if "embedded: " in line] == [
        f"clap: embedded: {music / '0.flac'} (2 windows)"
    ]
    failed = [line for line in lines if "failed" in line and "1.wav" in line]
    assert len(failed) == 1, lines
    assert failed[0].startswith(f"failed: {music / '1.wav'}: ")


def _garbled_mp3(path: Path) -> Path:
    """An mp3 with one frame's side information overwritten: libsndfile
    decodes all of it, and libmpg123 prints its resync notes on fd 2."""
    import numpy as np
    import soundfile as sf

    rate = 22050
    t = np.arange(rate * 6) / rate
    noise = np.random.default_rng(0).standard_normal(len(t))
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * noise).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, rate, format="MP3")
    data = bytearray(path.read_bytes())
    # A frame header in the middle (22.05 kHz: MPEG-2 layer III, no CRC),
    # and the side information after it.
    frame = data.find(b"\xff\xf3", len(data) // 2)
    assert frame > 0
    data[frame + 4 : frame + 12] = b"\xff" * 8
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("jobs", [1, 2])
def test_decoder_notes_stay_off_the_terminal(
    tmp_path: Path, tiny_bundle: Path, jobs: int
) -> None:
    """libmpg123's notes on an mp3 that decodes fine are not shown, in this
    process (-j 1) as in workers; a file that fails still says so."""
    music = tmp_path / "music"
    garbled = _garbled_mp3(music / "garbled.mp3")
    probe = subprocess.run(
        [sys.executable, "-c", f"import soundfile; soundfile.read({str(garbled)!r})"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert "libmpg123" in probe.stderr, "the fixture makes libmpg123 speak"
    broken = music / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file" * 10)
    good = write_audio(music / "good.flac", "low", seconds=3.0)
    beetsdir = make_beetsdir(tmp_path, tiny_bundle, [garbled, broken, good], jobs)
    run = _beet(beetsdir, "clap-index")
    assert run.returncode == 0, run.stderr
    assert "libmpg123" not in run.stderr + run.stdout
    lines = run.stdout.splitlines()
    assert lines[-1] == "clap-index: embedded 2, unchanged 0, failed 1"
    assert any(line.startswith(f"failed: {broken}: ") for line in lines), lines
