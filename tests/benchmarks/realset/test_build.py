"""How the realset builder fails: one line and an exit status, and a cache it can mend.

Needs no network and no real package: apt-get is a script written by the
test where one is called, and the packages are small folders or files made
here. The test of a .deb that does not unpack runs the real dpkg-deb.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build

BUILD = Path(build.__file__)
PACKAGE = "asterisk-prompt-es-co"  # one small package, its version as labels.json pins
VERSION = build.load_recipe()["packages"][PACKAGE]["version"]
CLIP = "voice-july-1"  # a clip of that package alone


def fake_apt_get(folder: Path, script: str) -> Path:
    """A folder holding an `apt-get` that runs `script` (sh), to go first on PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "apt-get"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(0o755)
    return folder


def main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = build.main(list(argv))
    return status, capsys.readouterr().err


class CtrlCOnFirstRead(io.BytesIO):
    """A file object whose first read meets a Ctrl-C, as a terminal's would."""

    interrupted = False

    def readinto(self, buffer):  # type: ignore[no-untyped-def, override]
        if not self.interrupted:
            self.interrupted = True
            signal.raise_signal(signal.SIGINT)
        return super().readinto(buffer)


def test_ctrl_c_inside_a_decode_stops_it_rather_than_shortening_the_audio():
    # soundfile reads through cffi callbacks, which print and drop an
    # exception: the read used to end there and return the audio read so far.
    wav = io.BytesIO()
    sf.write(wav, np.ones(16000, np.float32) * 0.1, 16000, format="WAV")
    with pytest.raises(KeyboardInterrupt):
        build.decode_stream(CtrlCOnFirstRead(wav.getvalue()))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_stops_the_build_with_one_line_and_status_130(tmp_path):
    # The fake apt-get interrupts the build that runs it, as Ctrl-C would.
    bin_dir = fake_apt_get(tmp_path / "bin", "kill -INT $PPID\nexit 1\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    argv = ["--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    proc = subprocess.run(
        [sys.executable, str(BUILD), *argv, "--only", CLIP],
        capture_output=True,
        text=True,
        env=env,
    )
    assert (proc.returncode, proc.stderr) == (130, "realset: interrupted\n")


def test_a_missing_apt_get_or_dpkg_deb_is_one_line_and_status_2(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    argv = ("--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"))
    assert main(capsys, *argv, "--only", CLIP) == (
        2,
        "realset: apt-get not found on PATH (it downloads the pinned packages; "
        "the build needs Debian or Ubuntu)\n",
    )
    debs = tmp_path / "cache" / "debs"
    deb = debs / f"{PACKAGE}_{VERSION}_all.deb"  # downloaded before
    deb.write_bytes(b"!<arch>\n")
    assert main(capsys, *argv, "--only", CLIP) == (
        2,
        "realset: dpkg-deb not found on PATH (it unpacks the packages; "
        "the build needs Debian or Ubuntu)\n",
    )
    assert deb.is_file()  # nothing wrong with the .deb itself


def test_an_out_that_is_a_file_is_one_line_and_status_2(tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("")
    argv = ("--out", str(out), "--cache", str(tmp_path / "cache"), "--only", CLIP)
    assert main(capsys, *argv) == (
        2,
        f"realset: cannot create {out}/audio/realset: Not a directory (check --out)\n",
    )


def test_only_without_an_id_is_refused_rather_than_building_everything(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # were it to fetch, no apt
    argv = ["--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    with pytest.raises(SystemExit) as exit_:
        build.main([*argv, "--only"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith(
        "error: argument --only: expected at least one argument\n"
    )


def test_a_failed_download_says_apt_gets_reason(tmp_path, monkeypatch):
    reason = (
        "E: Failed to fetch http://deb.debian.org/debian/pool/main/a/x.deb  "
        "Temporary failure resolving 'deb.debian.org'"
    )
    script = f'echo "{reason}" >&2\necho "W: Some warning after it" >&2\nexit 100\n'
    bin_dir = fake_apt_get(tmp_path / "bin", script)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(build.BuildError) as error:
        build.fetch_package(PACKAGE, VERSION, tmp_path / "cache")
    assert str(error.value) == (
        f"cannot download {PACKAGE}={VERSION}: {reason} "
        "(run apt-get update; the set is pinned to Debian 12 bookworm versions)"
    )


def test_a_deb_that_does_not_unpack_is_deleted_and_fetched_again(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    deb = cache / "debs" / f"{PACKAGE}_{VERSION}_all.deb"
    deb.parent.mkdir(parents=True)
    deb.write_bytes(b"")  # a download cut short
    with pytest.raises(build.BuildError) as error:
        build.fetch_package(PACKAGE, VERSION, cache)
    message = str(error.value)
    assert message.startswith(f"cannot unpack {deb}: dpkg-deb")
    assert message.endswith("; deleted it, the next run downloads it again")
    assert not deb.exists()
    assert not (cache / "pkgs" / PACKAGE).exists()
    # the next run asks apt-get for it again
    bin_dir = fake_apt_get(tmp_path / "bin", 'echo "E: offline" >&2\nexit 100\n')
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(build.BuildError, match=f"cannot download {PACKAGE}=.*: E: off"):
        build.fetch_package(PACKAGE, VERSION, cache)


def test_a_damaged_unpacked_file_deletes_its_package_to_be_unpacked_again(
    tmp_path,
):
    cache = tmp_path / "cache"
    root = cache / "pkgs" / PACKAGE
    (root / "usr").mkdir(parents=True)
    (root / ".realset-version").write_text(VERSION + "\n")  # unpacked before
    damaged = root / "usr" / "x.gsm"
    damaged.write_bytes(b"damaged")
    got = build.sha256_file(damaged)
    sources = build.Sources({"packages": {PACKAGE: {"version": VERSION}}}, cache)
    with pytest.raises(build.BuildError) as error:
        sources.file(PACKAGE, "usr/x.gsm", "97f8" + "0" * 60)
    assert str(error.value) == (
        f"{PACKAGE}: usr/x.gsm sha256 {got[:12]} != recorded 97f800000000; "
        f"deleted the unpacked package {root}, the next run "
        "downloads and unpacks it again"
    )
    assert not root.exists()
