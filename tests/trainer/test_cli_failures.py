"""Failures from outside the run: a filesystem that refuses a write, a full
disk, another rank of a torchrun that stops. Each is one line, no traceback.

Tests run as root on CI, which ignores file modes, and mount nothing: a path
the filesystem refuses is a name too long for it (a plain OSError with its
path, as a read-only or full filesystem raises), a full disk is RLIMIT_FSIZE
in a subprocess (writes past it fail with EFBIG, as they do with ENOSPC on a
full disk).
"""

from __future__ import annotations

import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.__main__ import main
from trainer.data import write_fixture

# A path component longer than any Linux filesystem takes (255 bytes).
TOO_LONG = "x" * 300


def _file_size_limit(limit: int) -> None:
    """In the child: writes past `limit` bytes fail with EFBIG (not SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _run(
    args: list[str], env: dict[str, str], cwd: Path, limit: int | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        preexec_fn=None if limit is None else lambda: _file_size_limit(limit),
    )


def test_a_path_the_filesystem_refuses_is_one_line(
    fixture_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Any OSError naming a path (EROFS, ENOSPC, EDQUOT, EACCES, ...) is
    `PATH: reason` after the command's own error prefix."""
    refused = tmp_path / TOO_LONG / "run"
    args = ["--config", "tiny", "--data", str(fixture_data), "--run-dir", str(refused)]
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: {tmp_path / TOO_LONG}")
    assert err.endswith(": File name too long\n")
    out = tmp_path / TOO_LONG / "corpus"
    assert main(["synth", "--out", str(out), "--clips", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"synth: error: {tmp_path / TOO_LONG}")
    assert err.endswith(": File name too long\n")


def test_an_unwritable_default_feature_cache_says_to_set_cache_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DATA/cache, where the cache goes by default, is often on a dataset
    that is read-only: the line says which setting puts it elsewhere."""
    data = write_fixture(tmp_path / "data", 24)
    (data / "cache").write_text("not a folder\n")
    args = ["--config", "tiny", "--data", str(data), "--run-dir", str(tmp_path / "r")]
    args += ["--max-steps", "1", "--set", "model.audio.freeze_backbone=full"]
    args += ["train.cache_features=true"]
    assert main(["train", *args]) == 2
    assert capsys.readouterr().err == (
        f"error: feature cache {data / 'cache'}: File exists; set train.cache_dir "
        "to a writable folder (--set train.cache_dir=DIR)\n"
    )


def test_a_feature_cache_that_does_not_fit_leaves_no_partial_file(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A write that fails past open() (a full disk) names the cache file and
    removes it."""
    data = write_fixture(tmp_path / "data", 24)
    args = ["-m", "trainer", "train", "--config", "tiny", "--data", str(data)]
    args += ["--run-dir", str(tmp_path / "r"), "--max-steps", "1"]
    args += ["--set", "model.audio.freeze_backbone=full", "train.cache_features=true"]
    proc = _run(args, cli_env, tmp_path, limit=4096)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.splitlines()[-1]
    assert re.fullmatch(
        f"error: feature cache {re.escape(str(data / 'cache'))}/audio-features-"
        r"\w+\.tmp\.npy: \d+ requested and \d+ written \(is the disk full\?\); "
        r"set train\.cache_dir to a writable folder \(--set train\.cache_dir=DIR\)",
        last,
    ), last
    assert list((data / "cache").iterdir()) == []


def test_a_checkpoint_that_does_not_fit_is_one_line_and_leaves_no_tmp(
    fixture_data: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """torch.save on a full disk says only "unexpected pos" and left
    step_N.pt.tmp behind, which kept the disk full."""
    run = tmp_path / "run"
    args = ["-m", "trainer", "train", "--config", "tiny", "--data", str(fixture_data)]
    args += ["--run-dir", str(run), "--max-steps", "1"]
    proc = _run(args, cli_env, tmp_path, limit=1 << 20)  # the checkpoint is ~6 MB
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    step = run / "checkpoints" / "step_0000001.pt"
    assert proc.stderr.splitlines()[-1] == (
        f"error: writing {step}: File too large; latest.pt is left as it was"
    )
    assert list((run / "checkpoints").iterdir()) == []


def test_a_failed_checkpoint_write_keeps_latest(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A checkpoint that cannot be written leaves latest.pt, and the earlier
    checkpoint it names, as they were; a .tmp a killed write left is
    removed by the next save."""
    run = tmp_path / "run"
    script = (
        "import sys, torch\n"
        "from trainer.checkpoint import RunError, save_checkpoint\n"
        "run = sys.argv[1]\n"
        "save_checkpoint(run, 1, {'w': torch.zeros(10)}, keep=3)\n"
        "try:\n"
        "    save_checkpoint(run, 2, {'w': torch.zeros(100_000)}, keep=3)\n"
        "except RunError as exc:\n"
        "    print(exc)\n"
    )
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_0000007.pt.tmp").write_bytes(b"killed mid-write")
    proc = _run(["-c", script, str(run)], cli_env, tmp_path, limit=100_000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    step = run / "checkpoints" / "step_0000002.pt"
    assert proc.stdout == (
        f"writing {step}: File too large; latest.pt is left as it was\n"
    )
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "latest.pt",
        "step_0000001.pt",
    ]
    latest = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert latest["w"].shape == (10,)


def test_ranks_a_failed_rank_leaves_behind_say_one_line(
    fixture_data: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Under torchrun, a rank that stops on its own error takes the others'
    collectives down with it: they say so in one line, no traceback."""
    afile, logs = tmp_path / "afile", tmp_path / "logs"
    afile.write_text("not a run folder\n")
    args = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    args += ["--redirects", "3", "--log-dir", str(logs), "-m", "trainer", "train"]
    args += ["--config", "tiny", "--data", str(fixture_data), "--run-dir", str(afile)]
    args += ["--max-steps", "2", "--device", "cpu", "--set", "train.batch_size=4"]
    proc = _run(args, cli_env, tmp_path)
    assert proc.returncode != 0
    said = {
        int(path.parent.name): path.read_text() for path in logs.rglob("stderr.log")
    }
    assert said == {
        0: f"error: {afile}/checkpoints: Not a directory\n",
        1: "error: another rank stopped (see its message); this rank stops too\n",
    }
    assert afile.read_text() == "not a run folder\n"


def test_a_checkpoint_folder_that_cannot_be_made_is_the_same_one_line(
    tmp_path: Path,
) -> None:
    import torch

    from trainer.checkpoint import RunError, save_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").write_text("a file where the folder goes\n")
    step = run / "checkpoints" / "step_0000001.pt"
    with pytest.raises(RunError) as refused:
        save_checkpoint(run, 1, {"w": torch.zeros(3)}, keep=3)
    assert str(refused.value) == (
        f"writing {step}: File exists; latest.pt is left as it was"
    )
