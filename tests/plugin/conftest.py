"""Fixtures for the plugin tests: tiny bundles, generated audio, real libraries."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/ holds bundle_factory, shared with other test folders.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle_factory import (
    build_other_bundle,
    build_tagged_bundle,
    build_tiny_bundle,
)
from clap_helpers import FORMATS, ClapEnv, write_audio


@pytest.fixture(autouse=True)
def _signal_handlers_as_they_were() -> Iterator[None]:
    """A clap-index stopped in this process by a real signal leaves SIGINT
    (and SIGTERM) ignored, as a process that is ending must (runguard); the
    next test, and every subprocess it starts (an ignored signal is
    inherited), gets the handlers back."""
    import signal

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in before.items():
        if handler is not None:
            signal.signal(signum, handler)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "clap-tiny")


@pytest.fixture(scope="session")
def other_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_other_bundle(tmp_path_factory.mktemp("bundle") / "clap-tiny-other")


@pytest.fixture(scope="session")
def tagged_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tagged_bundle(tmp_path_factory.mktemp("bundle") / "clap-tiny-tags")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Shared read-only files: one tone per kind, and each format of "low"."""
    root = tmp_path_factory.mktemp("corpus")
    files = {
        kind: write_audio(root / f"{kind}.flac", kind)
        for kind in ("low", "mid", "high", "noise")
    }
    files["low2"] = write_audio(root / "low2.flac", "120")
    for fmt in FORMATS:
        files[fmt] = write_audio(
            root / f"stereo.{fmt}", "low", seconds=5.0, rate=44100, channels=2
        )
    return files


@pytest.fixture
def env(capsys: pytest.CaptureFixture[str], tiny_bundle: Path) -> Iterator[ClapEnv]:
    with ClapEnv(capsys, tiny_bundle) as e:
        yield e


@pytest.fixture
def indexed(env: ClapEnv, corpus: dict[str, Path]) -> ClapEnv:
    """A library of the four tones (+ a second low tone), indexed."""
    for kind in ("low", "mid", "high", "noise", "low2"):
        env.add(corpus[kind], title=kind)
    env.run("clap-index")
    return env
