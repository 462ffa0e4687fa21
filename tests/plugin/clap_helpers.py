"""Helpers for the plugin tests: generated audio, a real beets library, subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytest
import soundfile as sf
from beets.library import Item, Library
from beets.test.helper import PluginMixin, TestHelper

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

# Tones the tiny bundle tells apart: "low" -> band 0, "mid" -> 1 kHz band,
# "high" -> 2-4 kHz band, "noise" -> the flatness axis.
LOW_HZ, MID_HZ, HIGH_HZ = 150.0, 800.0, 3000.0
FORMATS = ("wav", "flac", "mp3", "ogg", "opus", "aiff", "m4a")


def bulk_library(path: Path, n: int) -> None:
    """A real beets library with items 1..n (rows written in bulk, as the
    benchmarks do for large libraries: no audio behind them)."""
    lib = Library(str(path))
    with lib.transaction() as tx:
        tx.mutate_many(
            "INSERT INTO items (id, path, title) VALUES (?, ?, ?)",
            [(i, f"/m/{i}.flac".encode(), f"t{i}") for i in range(1, n + 1)],
        )
    lib._close()


def signal_for(kind: str, seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Mono float32 audio: a sine at the kind's frequency, noise or silence."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    if kind == "noise":
        return (0.3 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)
    if kind == "silent":
        return np.zeros(n, np.float32)
    freq = {"low": LOW_HZ, "mid": MID_HZ, "high": HIGH_HZ}.get(kind)
    freq = float(kind) if freq is None else freq
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_audio(
    path: Path,
    kind: str = "low",
    seconds: float = 4.0,
    rate: int = 22050,
    channels: int = 1,
    data: np.ndarray | None = None,
) -> Path:
    """Write a test file; the suffix picks the format (m4a through ffmpeg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mono = signal_for(kind, seconds, rate) if data is None else data
    x = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    suffix = path.suffix.lower()
    if suffix == ".m4a":
        tmp = path.with_suffix(".src.wav")
        sf.write(tmp, x, rate)
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-nostdin",
                "-y",
                "-i",
                str(tmp),
                "-c:a",
                "aac",
                "-b:a",
                "96k",
                str(path),
            ],
            check=True,
        )
        tmp.unlink()
        return path
    if suffix == ".opus":
        # Opus only runs at 8/12/16/24/48 kHz.
        if rate not in (8000, 12000, 16000, 24000, 48000):
            import soxr

            x = soxr.resample(x, rate, 48000).astype(np.float32)
            rate = 48000
        sf.write(path, x, rate, format="OGG", subtype="OPUS")
        return path
    if suffix == ".ogg":
        sf.write(path, x, rate, format="OGG", subtype="VORBIS")
        return path
    if suffix == ".mp3":
        sf.write(path, x, rate, format="MP3")
        return path
    sf.write(path, x, rate)
    return path


def _forget_plugin_fields() -> None:
    """Make beets read its models' plugin fields again.

    beets caches what plugins add to Item and Album (named queries such as
    `clap:`, flexible field types) on first use, for the process. A test
    that parses a query before any plugin is loaded would otherwise leave
    every later test without the `clap:` prefix (beets' own test helper
    does not clear it).
    """
    from beets.util import cached_classproperty

    cached_classproperty.cache.clear()


class ClapEnv(PluginMixin, TestHelper):
    """A real beets library on disk with the clap plugin loaded."""

    plugin: ClassVar[str] = "clap"
    preload_plugin: ClassVar[bool] = False
    db_on_disk: ClassVar[bool] = True

    def __init__(
        self, capsys: pytest.CaptureFixture[str], bundle: Path, **clap: Any
    ) -> None:
        self.capsys = capsys
        self.bundle = bundle
        self.clap = clap

    def __enter__(self) -> ClapEnv:
        from beets import logging as beets_logging

        # beets adds its stderr handler on the first command; drop it at exit
        # or the next test's commands log into this test's closed capture.
        self._beets_log = beets_logging.getLogger("beets")
        self._handlers = list(self._beets_log.handlers)
        self.setup_beets()
        self.config["clap"].set({"model": str(self.bundle), "jobs": 1, **self.clap})
        self.load_plugins()
        return self

    def __exit__(self, *exc: Any) -> Literal[False]:
        for handler in self._beets_log.handlers[:]:
            if handler not in self._handlers:
                self._beets_log.removeHandler(handler)
        result = super().__exit__(*exc)
        _forget_plugin_fields()
        return result

    def load_plugins(self, *plugins: str) -> None:
        super().load_plugins(*plugins)
        _forget_plugin_fields()

    def reload(self, **clap: Any) -> None:
        """Load the plugin again with changed settings."""
        self.unload_plugins()
        self.config["clap"].set(clap)
        self.load_plugins()

    def run(self, *args: str) -> str:
        """Run a beet command in this process; return what it printed."""
        self.capsys.readouterr()
        self.run_command(*args)
        return self.capsys.readouterr().out

    def lines(self, *args: str) -> list[str]:
        return [line for line in self.run(*args).splitlines() if line.strip()]

    def outputs(self, *args: str) -> tuple[list[str], list[str]]:
        """Run a beet command in this process; its stdout and stderr lines
        (stderr carries the plugin's log at the commands' INFO level)."""
        import logging

        # beets' handler keeps the stream of the phase that made it (a
        # fixture's capture, closed by now): point it at this one.
        for handler in self._beets_log.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.stream = sys.stderr  # setStream would flush the old one
        self.config["verbose"] = 0  # what a user sees: no debug lines
        self.capsys.readouterr()
        self.run_command(*args)
        out, err = self.capsys.readouterr()
        return out.splitlines(), err.splitlines()

    def quiet_import(
        self, src: Path, copy: bool = False
    ) -> tuple[list[str], list[str]]:
        """`beet import -A` of `src` as a script would run it (quiet, no
        autotagging, files left as they are unless `copy`); its outputs."""
        self.config["import"].set(
            {"copy": copy, "write": False, "autotag": False, "quiet": True}
        )
        return self.outputs("import", "-A", str(src))

    def add(self, path: Path, read_tags: bool = True, **fields: Any) -> Item:
        """Add a library item for `path`; files beets cannot read (they went
        bad after import) are added without reading their tags."""
        item = Item.from_path(str(path)) if read_tags else Item(path=str(path).encode())
        item.update({"artist": "tester", "album": "tests", **fields})
        self.lib.add(item)
        return item

    def add_copy(self, src: Path, **fields: Any) -> Item:
        """Add a private copy of `src` (for tests that change files)."""
        dst = self.temp_path / "files" / f"{fields.get('title', src.stem)}{src.suffix}"
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(src, dst)
        return self.add(dst, **fields)

    def sql(self, query: str, *params: Any) -> list[tuple]:
        """Read the library with the plugin's own kind of connection."""
        from beetsplug.clap.store import connect

        conn = connect(self.lib.path)
        try:
            return [tuple(r) for r in conn.execute(query, params).fetchall()]
        finally:
            conn.close()


def write_tagged(folder: Path, kinds: tuple[str, ...]) -> list[Path]:
    """FLAC files of the given kinds of signal in `folder`, tagged as tracks
    1, 2, ... of one album (title = kind), for imports."""
    from mediafile import MediaFile

    paths = []
    for track, kind in enumerate(kinds, start=1):
        path = write_audio(folder / f"{track:02d}.flac", kind)
        tagged = MediaFile(path)
        tagged.update({"title": kind, "artist": "a", "album": "b", "track": track})
        tagged.save()
        paths.append(path)
    return paths


def make_beetsdir(
    root: Path,
    bundle: Path | None,
    files: list[Path],
    jobs: int = 1,
    titles: list[str] | None = None,
) -> Path:
    """A BEETSDIR whose config loads the clap plugin with `bundle` (None:
    the installed default bundle) and `jobs` decoding processes, and a
    library.db holding `files`, titled `titles` ("track 0", "track 1", ...
    unless given)."""
    from beets import config

    beetsdir = root / "beetsdir"
    beetsdir.mkdir()
    model = f"    model: {bundle}\n" if bundle else ""
    (beetsdir / "config.yaml").write_text(
        f"directory: {root / 'music'}\n"
        f"library: {beetsdir / 'library.db'}\n"
        "plugins: clap\n"
        "create_backup_before_migrations: no\n"
        f"clap:\n{model}    jobs: {jobs}\n"
    )
    if titles is None:
        titles = [f"track {i}" for i in range(len(files))]
    config["create_backup_before_migrations"] = False  # for this Library()
    lib = Library(str(beetsdir / "library.db"))
    for path, title in zip(files, titles, strict=True):
        lib.add(Item(path=str(path).encode(), title=title, artist="a"))
    lib._close()
    return beetsdir


def beet(
    beetsdir: Path, *args: str, pythonpath: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `beet` command (`python -m beets`) on `beetsdir`; with
    `pythonpath`, those folders come first on the import path."""
    env = beet_env(beetsdir)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env["PYTHONPATH"]])
    return subprocess.run(
        [sys.executable, "-m", "beets", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def beet_env(beetsdir: Path, **extra: str) -> dict[str, str]:
    """Environment for `python -m beets` subprocesses using this checkout."""
    env = dict(os.environ)
    env["BEETSDIR"] = str(beetsdir)
    env["HOME"] = str(beetsdir)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    env.update(extra)
    return env


def run_python(
    beetsdir: Path, code: str, *args: str, **run: Any
) -> subprocess.CompletedProcess[str]:
    """Run `python -c code ARGS` as a `beet` subprocess would run (the
    environment of `beet_env`), its output captured as text; `run` goes to
    `subprocess.run` (check, timeout)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=beet_env(beetsdir),
        capture_output=True,
        text=True,
        **run,
    )


def beet_without(
    beetsdir: Path, missing: tuple[str, ...], *args: str, **run: Any
) -> subprocess.CompletedProcess[str]:
    """Run `beet ARGS` on `beetsdir` as if the `missing` modules were not
    installed: each is None in sys.modules, so importing it fails."""
    code = (
        "import sys\n"
        + "".join(f"sys.modules[{name!r}] = None\n" for name in missing)
        + "from beets.ui import main\n"
        "main(sys.argv[1:])\n"
    )
    return run_python(beetsdir, code, *args, **run)


def wait_for(
    condition: Callable[[], Any], seconds: float, what: str, step: float = 0.1
) -> Any:
    """Poll `condition` until it returns something true (returning it), or
    fail after `seconds` saying `what` was awaited: the deadline only bounds
    a wait that never ends, it is never a guess at timing."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {seconds:g} s")
        time.sleep(step)
