"""A one-line progress bar on stderr, drawn only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

REDRAW_SECONDS = 0.2  # between redraws; the last step is always drawn
WIDTH = 30  # characters of the bar itself


class ProgressBar:
    """Called with (done, total) as work completes; silent on a pipe or file.

    The bar is redrawn in place (a carriage return, no newline), so its
    line stays open while it is shown. It ends that line before anything
    else reaches the terminal: before each message of `log` (a warning, the
    stop line of an interrupted run) and when the `with` block that shows
    it is left, however it is left (an error, Ctrl-C). The bar is drawn
    again on the next line at its next step.
    """

    def __init__(self, label: str, log: logging.Logger | None = None) -> None:
        self.label = label
        self.log = log
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()
        self.drawn = 0.0
        self.open = False  # a line drawn and not ended yet

    def __enter__(self) -> ProgressBar:
        if self.log is not None:
            self.log.addFilter(self._before_message)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.log is not None:
            self.log.removeFilter(self._before_message)
        self.end_line()

    def _before_message(self, record: logging.LogRecord) -> bool:
        """A logging filter that lets every record through, the bar's line
        ended first."""
        self.end_line()
        return True

    def end_line(self) -> None:
        """End the bar's line, if one is open, so that what follows starts
        a line of its own."""
        if self.open:
            self.open = False
            sys.stderr.write("\n")
            sys.stderr.flush()

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
        self.open = True
        if done >= total:
            self.end_line()
        else:
            sys.stderr.flush()
