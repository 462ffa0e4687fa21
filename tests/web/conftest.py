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
from web_helpers import CHROMEDRIVER, CHROMIUM, Server, make_library


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
    """Headless Debian Chromium through Debian's chromedriver: nothing is
    downloaded (Selenium Manager never runs with an explicit driver path)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(
            "the browser tests need Debian's chromium and chromium-driver "
            "(.ci/setup installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,1400",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=Service(executable_path=CHROMEDRIVER), options=options
    )
    yield driver
    driver.quit()
