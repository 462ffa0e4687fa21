"""Fixtures of the trainer tests: a tiny Contract-3 data directory and configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from trainer.config import Config, load_config
from trainer.data import write_fixture

REPO = Path(__file__).resolve().parents[2]
# The test modules import their shared signals from conftest_models.py here.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def fixture_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 clips (12 train / 6 valid / 6 test) in wav, flac and .npy twins; two of
    the train rows are broken (one file missing, one corrupt)."""
    return write_fixture(
        tmp_path_factory.mktemp("data") / "fixture", 24, missing=1, corrupt=1
    )


@pytest.fixture
def tiny_cfg() -> Config:
    return load_config("tiny")


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for `python -m trainer` subprocesses run from the repo."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


@pytest.fixture
def python() -> str:
    return sys.executable
