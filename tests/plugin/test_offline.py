"""The plugin and the trainer run offline: onnxruntime's usage telemetry
(1.29 and later record events under the user's cache folder and send them
to Microsoft's collector) is off in every process they start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clap_helpers import beet_env, make_beetsdir, write_audio

# Where onnxruntime keeps its device id and its queue of unsent events.
TELEMETRY = Path("Microsoft") / "DeveloperTools"

# onnxruntime records nothing where one of these says it runs under CI (the
# names are in its binary; `CI=true` is enough). A user's machine sets none,
# so the children below run without them: on a CI runner too, the control
# must see onnxruntime record and the plugin's tests must see it not.
CI_MARKERS = (
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "CODEBUILD_BUILD_ID",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "APPVEYOR",
    "BITBUCKET_BUILD_NUMBER",
)


def _env(beetsdir: Path, **extra: str) -> dict[str, str]:
    """A `beet` environment with its own cache folder and nothing set about
    telemetry: this test process has set it already by importing the plugin,
    and a child must not inherit that; nor a CI runner's markers."""
    env = beet_env(beetsdir, XDG_CACHE_HOME=str(beetsdir / "cache"), **extra)
    for name in ("ORT_DISABLE_TELEMETRY", *CI_MARKERS):
        env.pop(name, None)
    env.update(extra)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_onnxruntime_alone_records_telemetry_in_this_environment(
    tmp_path: Path,
) -> None:
    # What the tests below would see without the plugin's setting: if this
    # fails, onnxruntime no longer records anything and they prove nothing.
    env = _env(tmp_path)
    done = _run(env, "-c", "import onnxruntime")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cache" / TELEMETRY).is_dir()


@pytest.mark.parametrize("jobs", [1, 2])
def test_indexing_and_searching_record_no_telemetry(
    tmp_path: Path, tiny_bundle: Path, jobs: int
) -> None:
    music = tmp_path / "music"
    files = [
        write_audio(music / f"{i}.flac", kind, seconds=3.0)
        for i, kind in enumerate(["low", "noise"])
    ]
    beetsdir = make_beetsdir(tmp_path, tiny_bundle, files, jobs)
    env = _env(beetsdir)
    index = _run(env, "-m", "beets", "clap-index")
    assert index.returncode == 0, index.stderr
    assert index.stdout.splitlines()[-1].startswith("clap-index: embedded 2,")
    search = _run(env, "-m", "beets", "clap", "-n", "2", "a low tone")
    assert search.returncode == 0, search.stderr
    assert len(search.stdout.splitlines()) == 2
    cache = beetsdir / "cache"
    assert not (cache / TELEMETRY).exists(), sorted(cache.rglob("*"))
    assert not (beetsdir / ".cache" / TELEMETRY).exists()


def test_the_trainer_records_no_telemetry(tmp_path: Path) -> None:
    env = _env(tmp_path)
    done = _run(env, "-c", "import trainer, onnxruntime")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "cache" / TELEMETRY).exists()


def test_a_users_own_telemetry_setting_stands(tmp_path: Path) -> None:
    code = "import os, beetsplug.clap; print(os.environ['ORT_DISABLE_TELEMETRY'])"
    done = _run(_env(tmp_path, ORT_DISABLE_TELEMETRY="0"), "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
    done = _run(_env(tmp_path), "-c", code)
    assert done.stdout.strip() == "1"
