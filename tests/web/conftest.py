"""Fixtures for the page and map tests: an indexed library, a server, a browser."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# tests/ holds bundle_factory, tests/plugin the library helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugin"))

from bundle_factory import build_tiny_bundle
from web_helpers import CHROMEDRIVER, CHROMIUM, Server, headless_chromium, make_library


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "clap-tiny")


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> Path:
    """BEETSDIR of an indexed library of TRACKS (read-only for the tests)."""
    return make_library(tmp_path_factory.mktemp("library"), tiny_bundle)


@pytest.fixture(scope="session")
def server(library: Path) -> Iterator[Server]:
    running = Server(library)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Debian Chromium through Debian's chromedriver."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(
            "the browser tests need Debian's chromium and chromium-driver "
            "(.ci/setup installs them)"
        )
    driver = headless_chromium(tmp_path_factory.mktemp("chromium"), "1200,1400")
    yield driver
    driver.quit()
