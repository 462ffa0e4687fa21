"""A one-line progress bar on stderr, drawn only on a terminal."""

from __future__ import annotations

import sys
import time

REDRAW_SECONDS = 0.2  # between redraws; the last step is always drawn
WIDTH = 30  # characters of the bar itself


class ProgressBar:
    """Called with (done, total) as work completes; silent on a pipe or file."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()
        self.drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.drawn < REDRAW_SECONDS and done < total):
            return
        self.drawn = now
        filled = int(WIDTH * done / total) if total else WIDTH
        rate = done / max(now - self.started, 1e-9) * 60
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] "
            f"{done}/{total} {rate:,.0f} tracks/min"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
