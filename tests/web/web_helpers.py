"""Helpers of the web tests: a real library, `beet` runs, a server, a browser."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

# tests/ holds bundle_factory, tests/plugin the library helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugin"))

from clap_helpers import beet_env, wait_for, write_audio

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
START_SECONDS = 60.0  # a loaded 2-core machine starts beets slowly

# (kind of tone, artist, title, album, genre, year) of the test library.
TRACKS = [
    ("low", "Bass Unit", "Deep One", "Lows", "dub", 1991),
    ("120", "Bass Unit", "Deep Two", "Lows", "dub", 1994),
    ("low", "Sub Club", "Rumble", "Lows", "dub", 2001),
    ("mid", "Middle Band", "Centre", "Mids", "pop", 1995),
    ("high", "Treble & Co", "Shine <b>", "Highs", "pop", 2005),
    ("3500", "Treble & Co", "Glare", "Highs", "rock", 2008),
    ("noise", "Static", "Hiss", "Noises", "noise", 2010),
    # Untagged, as files often are: named by the file (07.flac) where shown.
    ("noise", "", "", "Noises", "noise", 2012),
]
UNTAGGED = "07.flac"
# The one track kept outside the library's directory (by item id): beets
# >= 2.14 stores its path absolute, the others' relative to the directory.
OUTSIDE = 8


def beets_dir(root: Path, bundle: Path) -> Path:
    """A BEETSDIR whose config loads the plugin with `bundle`."""
    beetsdir = root / "beetsdir"
    beetsdir.mkdir(parents=True)
    lines = [
        f"directory: {root / 'music'}",
        f"library: {beetsdir / 'library.db'}",
        "plugins: clap",
        "create_backup_before_migrations: no",
        "clap:",
        f"    model: {bundle}",
        "    jobs: 1",
    ]
    (beetsdir / "config.yaml").write_text("\n".join(lines) + "\n")
    return beetsdir


def beet(
    beetsdir: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run `beet ARGS` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "beets", *args],
        env=beet_env(beetsdir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def track_file(beetsdir: Path, item_id: int) -> Path:
    """Where make_library put the file of item `item_id` (1 for TRACKS[0]):
    inside the library's directory (root/music), but for item OUTSIDE."""
    folder = "elsewhere" if item_id == OUTSIDE else "music"
    return beetsdir.parent / folder / f"{item_id - 1:02d}.flac"


def make_library(root: Path, bundle: Path, index: bool = True) -> Path:
    """A library of TRACKS (generated audio), indexed with `beet clap-index`.
    Its files lie in its directory, as `beet import` copies them, so beets
    >= 2.14 stores their paths relative to it, but item OUTSIDE's."""
    from beets import config
    from beets.library import Item, Library

    beetsdir = beets_dir(root, bundle)
    config["create_backup_before_migrations"] = False
    lib = Library(str(beetsdir / "library.db"), str(root / "music"))
    for n, (kind, artist, title, album, genre, year) in enumerate(TRACKS):
        path = write_audio(track_file(beetsdir, n + 1), kind, seconds=3.0)
        lib.add(
            Item(
                path=str(path).encode(),
                artist=artist,
                title=title,
                album=album,
                genre=genre,
                year=year,
                track=n + 1,
            )
        )
    lib._close()
    if index:
        done = beet(beetsdir, "clap-index")
        assert done.returncode == 0, done.stderr
    return beetsdir


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A `beet clap-web` subprocess on a free port."""

    def __init__(self, beetsdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "beets", "clap-web", "--port", str(self.port)],
            env=beet_env(beetsdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(self._answers, START_SECONDS, f"clap-web on port {self.port}")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            out, err = self.proc.communicate()
            pytest.fail(f"clap-web exited {self.proc.returncode}: {out}{err}")
        try:
            with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self) -> tuple[str, str]:
        self.proc.terminate()
        try:
            return self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()


def headless_chromium(profile: Path, window: str, *flags: str) -> Any:
    """Headless Debian Chromium through Debian's chromedriver, with its
    profile in `profile` and a `window` ("WIDTH,HEIGHT") viewport: nothing is
    downloaded (Selenium Manager never runs with an explicit driver path)."""
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
        f"--window-size={window}",
        *flags,
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(
        service=Service(executable_path=CHROMEDRIVER), options=options
    )
