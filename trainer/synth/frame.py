"""One piece's frame: its bar/step grid, chord per bar, and the humanised draws.

Every part writer (harmony, rhythm, melody) takes the frame and draws from
its one seeded rng, in the order the composer calls them, so a piece still
depends only on its spec.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from trainer.synth.styles import StyleSpec

# A chord as (root pitch class, chord pitch classes).
Chord = tuple[int, list[int]]


class Grid:
    """Bar/step timing with swing: 16 sixteenth steps per 4/4 bar, 12 per 3/4 bar."""

    def __init__(self, bpm: float, beats_per_bar: int, swing: float) -> None:
        self.beat = 60.0 / bpm
        self.beats_per_bar = beats_per_bar
        self.steps = 4 * beats_per_bar
        self.bar = self.beat * beats_per_bar
        self.sixteenth = self.beat / 4
        self.swing = swing

    def time(self, bar: int, step: float) -> float:
        shift = (
            self.swing * self.beat / 2
            if int(step) % 4 == 2 and step == int(step)
            else 0.0
        )
        return bar * self.bar + step * self.sixteenth + shift


@dataclass
class Frame:
    """What every part of one piece shares; `chords` has one chord per bar."""

    rng: random.Random
    grid: Grid
    style: StyleSpec
    key: int
    mode: str
    chords: list[Chord]
    velocity: int
    humanize: bool

    @property
    def n_bars(self) -> int:
        return len(self.chords)

    def t(self, bar: int, step: float, jitter: float = 0.004) -> float:
        """Onset of a step, jittered unless the style plays exactly on the grid."""
        t = self.grid.time(bar, step)
        if self.humanize and jitter:
            t += self.rng.gauss(0.0, jitter)
        return max(0.0, t)

    def vel(self, offset: int = 0, spread: int = 8) -> int:
        """A MIDI velocity around the piece's energy, within 1..127."""
        return max(
            1, min(127, self.velocity + offset + self.rng.randint(-spread, spread))
        )
