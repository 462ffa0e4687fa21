"""The built wheel carries the default model: installed alone, it searches."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from clap_helpers import REPO, make_beetsdir, write_audio

# What a wheel is built from (an sdist holds the same): copied so that the
# build's own folders never land in the checkout.
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE")
PACKAGES = ("beetsplug", "trainer", "models")


def _run(*cmd: str, **kwargs: object) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
    return done


def _build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        shutil.copy(REPO / name, src / name)
    for name in PACKAGES:
        shutil.copytree(
            REPO / name,
            src / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
        )
    dist = tmp_path / "dist"
    pip = (sys.executable, "-m", "pip")
    _run(
        *pip,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-q",
        "-w",
        str(dist),
        str(src),
    )
    (wheel,) = dist.glob("beets_clap-*.whl")
    return wheel


def test_the_wheel_alone_indexes_and_searches_offline(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    # A fresh venv that reuses the installed dependencies (beets, numpy,
    # onnxruntime, ...) but gets beets-clap only from the wheel.
    venv = tmp_path / "venv"
    _run(
        sys.executable,
        "-m",
        "venv",
        "--system-site-packages",
        "--without-pip",
        str(venv),
    )
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HOME"] = str(tmp_path / "home")
    env["PYTHONNOUSERSITE"] = "1"
    pip = (str(python), "-m", "pip")
    install = ("install", "--no-deps", "--no-index", "--force-reinstall", "-q")
    _run(*pip, *install, str(wheel), env=env, cwd=tmp_path)
    where = _run(
        str(python),
        "-c",
        "import beetsplug.clap, beetsplug.clap.model as m\n"
        "print(beetsplug.clap.__file__)\n"
        "print(m.default_bundle_path())",
        env=env,
        cwd=tmp_path,
    ).stdout.splitlines()
    site = venv / "lib"
    assert Path(where[0]).is_relative_to(site), where
    assert Path(where[1]).is_relative_to(site), where
    assert (Path(where[1]) / "manifest.json").is_file()

    # A small library; no clap.model: the default bundle is the wheel's.
    kinds = ["low", "high", "noise"]
    files = [
        write_audio(tmp_path / "music" / f"{kind}.wav", kind, seconds=4.0)
        for kind in kinds
    ]
    beetsdir = make_beetsdir(tmp_path, None, files, titles=kinds)
    env["BEETSDIR"] = str(beetsdir)

    def beet(*args: str) -> list[str]:
        out = _run(str(python), "-m", "beets", *args, env=env, cwd=tmp_path)
        return out.stdout.splitlines()

    assert beet("clap-index")[-1] == "clap-index: embedded 3, unchanged 0, failed 0"
    found = beet("clap", "noisy music without vocals", "-n", "3", "-f", "$title")
    assert sorted(found) == ["high", "low", "noise"]
