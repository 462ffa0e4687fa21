"""Cold start: `beet version` with and without the plugin, alternated."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import beets_env, write_beets_config


@dataclass
class Startup:
    with_plugin: list[float]
    without_plugin: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.with_plugin) / statistics.median(
            self.without_plugin
        )


def measure(work: Path, library: Path, bundle: Path, runs: int = 15) -> Startup:
    """Alternate the two configurations so that machine load hits both."""
    with_dir = write_beets_config(work / "startup-with", library, bundle)
    without_dir = write_beets_config(
        work / "startup-without", library, None, plugin=False
    )
    out: dict[Path, list[float]] = {with_dir: [], without_dir: []}
    for i in range(runs + 1):
        for beetsdir in (with_dir, without_dir):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "beets", "version"],
                env=beets_env(beetsdir),
                capture_output=True,
                check=True,
            )
            if i:  # the first round warms the file cache
                out[beetsdir].append(time.perf_counter() - start)
    return Startup(out[with_dir], out[without_dir])
