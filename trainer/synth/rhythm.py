"""The rhythm section: bass lines on the chord roots, and drum patterns with fills."""

from __future__ import annotations

import pretty_midi

from trainer.synth import styles
from trainer.synth.frame import Frame
from trainer.synth.harmony import nearest

# A style whose first drum pattern is one of these plays crashes, and a tom
# fill on half of its fourth bars.
_FILL_STYLES = ("rock", "pop", "metal", "funk", "shuffle", "country")
_ACCENTS = {"x": 14, "o": 0, ".": -28}


def bass(
    frame: Frame, style: str, rng_range: tuple[int, int]
) -> list[pretty_midi.Note]:
    """A bass line in one of the styles' patterns (walking, reggae, funk ...)."""
    g, rng = frame.grid, frame.rng
    lo, hi = rng_range
    notes: list[pretty_midi.Note] = []
    S = g.steps

    def add(bar: int, step: float, dur: float, pitch: int, off: int = 0) -> None:
        start = frame.t(bar, step, 0.003)
        notes.append(
            pretty_midi.Note(
                frame.vel(off, 5),
                pitch,
                start,
                start + max(0.06, dur * g.sixteenth * 0.9),
            )
        )

    for bar in range(frame.n_bars):
        root_pc, pcs = frame.chords[bar]
        root = nearest(root_pc, 40, lo, min(hi, 52))
        fifth = root + 7 if root + 7 <= hi else root - 5
        octave = root + 12 if root + 12 <= hi else root
        if style == "eighths":
            for step in range(0, S, 2):
                add(bar, step, 2, root, 4 if step % 4 == 0 else 0)
        elif style == "sixteenths":
            for step in range(S):
                add(bar, step, 1, root, 4 if step % 4 == 0 else -2)
        elif style == "root_fifth":
            for beat in range(g.beats_per_bar):
                add(bar, 4 * beat, 3, root if beat % 2 == 0 else fifth)
        elif style == "walking":
            nxt_root = nearest(
                frame.chords[min(bar + 1, frame.n_bars - 1)][0], 40, lo, min(hi, 52)
            )
            tones = [root, nearest(rng.choice(pcs), root + 4, lo, hi), fifth]
            line = ([*tones, nxt_root + rng.choice((-1, 1))])[: g.beats_per_bar]
            for beat, p in enumerate(line):
                add(bar, 4 * beat, 3.6, p)
        elif style == "half":
            add(bar, 0, S / 2, root)
            add(bar, S / 2, S / 2, fifth, -4)
        elif style == "whole":
            if bar % frame.style.bars_per_chord == 0:
                add(bar, 0, S * frame.style.bars_per_chord, root)
        elif style == "offbeat":
            for step in range(2, S, 4):
                add(bar, step, 1.6, root)
        elif style == "hiphop":
            add(bar, 0, 6, root, 6)
            add(bar, min(7, S - 2), 2, octave if rng.random() < 0.3 else root)
            add(bar, min(10, S - 2), 4, root)
        elif style == "reggae":
            for step, p in zip(
                (0, 3, 6, 8, 11), (root, root, fifth, root, octave), strict=True
            ):
                if step < S:
                    add(bar, step, 2.5, p)
        elif style == "bossa":
            for step, p, d in (
                (0, root, 5),
                (6, root, 2),
                (8, fifth, 5),
                (14, fifth, 2),
            ):
                if step < S:
                    add(bar, step, d, p)
        elif style == "tumbao":
            for step, p in ((6, root), (12, fifth)):
                if step < S:
                    add(bar, step, 5, p)
        elif style == "funk":
            for step, p in (
                (0, root),
                (3, octave),
                (6, root),
                (10, fifth),
                (11, root),
                (14, octave),
            ):
                if step < S:
                    add(bar, step, 1.2, p, 6 if step == 0 else 0)
        else:  # pragma: no cover - tables are checked at import
            raise ValueError(f"unknown bass style {style}")
    return notes


def drums(frame: Frame) -> list[pretty_midi.Note]:
    """A drum pattern of the style (a waltz in 3/4), with tom fills and crashes."""
    g, rng, sty = frame.grid, frame.rng, frame.style
    names = ("waltz",) if g.beats_per_bar == 3 else sty.drum_patterns
    pattern = rng.choice(styles.DRUM_PATTERNS[rng.choice(names)])
    fills = sty.drum_patterns and sty.drum_patterns[0] in _FILL_STYLES
    notes: list[pretty_midi.Note] = []
    for bar in range(frame.n_bars):
        fill = fills and bar % 4 == 3 and rng.random() < 0.5
        for key, row in pattern.items():
            for step, ch in enumerate(row[: g.steps]):
                if ch == "-" or (fill and step >= g.steps - 4):
                    continue
                start = frame.t(bar, step, 0.003)
                notes.append(
                    pretty_midi.Note(
                        frame.vel(_ACCENTS[ch], 6), key, start, start + 0.1
                    )
                )
        if fill:
            toms = (
                styles.TOM_HIGH,
                styles.TOM_HIGH,
                styles.TOM_MID,
                styles.TOM_LOW,
            )
            for i, step in enumerate(range(g.steps - 4, g.steps)):
                key = rng.choice((toms[i], styles.SNARE))
                start = frame.t(bar, step, 0.003)
                notes.append(pretty_midi.Note(frame.vel(6), key, start, start + 0.1))
        if (bar == 0 or (fill and bar + 1 < frame.n_bars)) and fills:
            start = frame.t(bar + (0 if bar == 0 and not fill else 1), 0, 0.0)
            notes.append(
                pretty_midi.Note(frame.vel(10), styles.CRASH, start, start + 0.1)
            )
    return notes
