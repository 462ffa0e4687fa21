"""Harmony: chords of a progression, voicings in a range, and comping patterns."""

from __future__ import annotations

import pretty_midi

from trainer.synth import styles
from trainer.synth.frame import Chord, Frame
from trainer.synth.styles import Progression, StyleSpec


def chord_pcs(spec: StyleSpec, key: int, mode: str, degree: int) -> Chord:
    """(root pitch class, chord pitch classes) of a scale degree in the style."""
    scale = styles.SCALES[mode]
    root = (key + scale[degree % 7]) % 12
    if spec.chord == "power":
        return root, [root, (root + 7) % 12]
    if spec.chord == "dominant":
        third = 3 if (mode == "minor" and degree % 7 != 4) else 4
        return root, [(root + i) % 12 for i in (0, third, 7, 10)]
    steps = (0, 2, 4, 6) if spec.chord == "seventh" else (0, 2, 4)
    pcs = [(key + scale[(degree + s) % 7]) % 12 for s in steps]
    if (
        mode == "minor" and degree % 7 == 4
    ):  # harmonic minor: major V with a leading tone
        pcs[1] = (pcs[1] + 1) % 12
    return root, pcs


def bar_chords(
    spec: StyleSpec, key: int, mode: str, prog: Progression, n_bars: int
) -> list[Chord]:
    """The chord of every bar: the progression, each chord held `bars_per_chord`."""
    return [
        chord_pcs(spec, key, mode, prog[(bar // spec.bars_per_chord) % len(prog)])
        for bar in range(n_bars)
    ]


def nearest(pc: int, center: int, lo: int, hi: int) -> int:
    """The pitch with pitch class `pc` closest to `center`, folded into [lo, hi]."""
    pitch = center + ((pc - center) % 12)
    if pitch - center > 6:
        pitch -= 12
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch


def voicing(
    pcs: list[int], center: int, rng_range: tuple[int, int], size: int
) -> list[int]:
    """Chord tones stacked upward from `center` in range, the root doubled to `size`."""
    lo, hi = rng_range
    notes = sorted({nearest(pc, center + 3 * i, lo, hi) for i, pc in enumerate(pcs)})
    extra = 0
    while len(notes) < size and extra < 4:  # double the root an octave up
        cand = notes[0] + 12 * (extra + 1)
        if cand <= hi and cand not in notes:
            notes.append(cand)
        extra += 1
    return sorted(notes)


def comp(
    frame: Frame,
    style: str,
    rng_range: tuple[int, int],
    center: int,
    vel_offset: int,
) -> list[pretty_midi.Note]:
    """Chords played in a comping pattern (sustain, strum, arpeggio, stab ...)."""
    g, rng = frame.grid, frame.rng
    lo, hi = rng_range
    center = min(max(center, lo + 7), hi - 7)
    notes: list[pretty_midi.Note] = []
    bars_per_chord = frame.style.bars_per_chord

    def add(
        bar: int,
        step: float,
        dur_steps: float,
        pitches: list[int],
        off: int = 0,
        spread: float = 0.0,
    ) -> None:
        start = frame.t(bar, step)
        end = start + dur_steps * g.sixteenth * 0.92
        for i, p in enumerate(pitches):
            s = start + i * spread
            notes.append(
                pretty_midi.Note(frame.vel(vel_offset + off), p, s, max(s + 0.05, end))
            )

    for bar in range(frame.n_bars):
        root, pcs = frame.chords[bar]
        chord = voicing(
            pcs,
            center,
            (lo, hi),
            4 if style in ("strum", "block", "sustain") else 3,
        )
        S = g.steps
        if style == "sustain":
            if bar % bars_per_chord == 0:
                add(bar, 0, S * bars_per_chord, chord)
        elif style == "block":
            if rng.random() < 0.5:
                add(bar, 0, S, chord)
            else:
                add(bar, 0, S // 2, chord)
                add(bar, S // 2, S // 2, chord, -4)
        elif style == "strum":
            pattern = (0, 4, 6, 10, 12, 14) if S == 16 else (0, 4, 6, 8, 10)
            for i, step in enumerate(pattern):
                nxt = pattern[i + 1] if i + 1 < len(pattern) else S
                down = step % 4 == 0
                add(
                    bar,
                    step,
                    nxt - step,
                    chord if down else chord[::-1],
                    0 if down else -10,
                    spread=0.012,
                )
        elif style in ("arpeggio", "alberti"):
            order = [0, 2, 1, 2] if style == "alberti" else [0, 1, 2, 1]
            seq = (
                [*chord, chord[0] + 12]
                if style == "arpeggio" and chord[0] + 12 <= hi
                else chord
            )
            for i, step in enumerate(range(0, S, 2)):
                idx = order[i % 4] if style == "alberti" else i % len(seq)
                add(bar, step, 2.2, [seq[idx % len(seq)]], -4 if step % 4 else 0)
        elif style == "power":
            p = nearest(root, center - 12, max(lo, 40), hi)
            power = [p, p + 7, p + 12] if p + 12 <= hi else [p, p + 7]
            for step in range(0, S, 2):
                add(bar, step, 1.2, power, 6 if step % 4 == 0 else 0)
        elif style == "skank":
            for step in range(4, S, 8):
                add(bar, step, 1.2, chord, 4)
        elif style == "stab":
            for step in sorted(rng.sample([2, 3, 6, 7, 10, 11, 14][: S - 2], 3)):
                add(bar, step, 1.0, chord, 6)
        elif style == "jazz_comp":
            shell = chord[:3]
            for step in sorted(rng.sample([0, 3, 6, 10, 11, 14][: S - 2], 2)):
                add(bar, step, rng.choice((2, 3, 4)), shell, -6)
        elif style == "montuno":
            for i, step in enumerate((0, 3, 6, 8, 11, 14)):
                if step < S:
                    add(bar, step, 1.5, chord if i % 2 == 0 else [chord[-1]], -2)
        else:  # pragma: no cover - tables are checked at import
            raise ValueError(f"unknown comp style {style}")
    return notes


def counter_line(frame: Frame, family: str) -> list[pretty_midi.Note]:
    """Held chord tones under a sung melody, so singer and lead do not collide."""
    lo, hi = styles.FAMILY_RANGES[family]
    center = min(hi - 6, max(lo + 6, 60))
    notes = []
    for bar in range(frame.n_bars):
        pcs = frame.chords[bar][1]
        for half in range(2) if frame.rng.random() < 0.5 else range(1):
            step = half * frame.grid.steps // 2
            dur_steps = frame.grid.steps // (
                2 if half or frame.rng.random() < 0.5 else 1
            )
            p = nearest(frame.rng.choice(pcs), center, lo, hi)
            start = frame.t(bar, step)
            notes.append(
                pretty_midi.Note(
                    frame.vel(-6),
                    p,
                    start,
                    start + dur_steps * frame.grid.sixteenth * 0.95,
                )
            )
    return notes
