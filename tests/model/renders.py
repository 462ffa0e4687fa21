"""Renders for the default model: harmonic beds with and without a drum kit, and speech.

Each pair is the same music twice, once with a drum kit (kick, snare, hi-hat)
played over it, so the only difference between the two renders is the drums.
The music is generated with numpy from fixed seeds: no files, no soundfont;
the speech is espeak-ng's (.ci/setup installs it).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

# Chords as semitones above A2 (110 Hz): I - vi - IV - V in A major.
_PROGRESSION = ((0, 4, 7, 12), (-3, 0, 4, 9), (-7, -3, 0, 5), (-5, -1, 2, 7))
_A2 = 110.0


def _hz(semitones: float) -> float:
    return _A2 * 2 ** (semitones / 12)


def _piano(t: np.ndarray, rate: int, bar: float) -> np.ndarray:
    """Struck chords: decaying harmonics, one chord a bar."""
    out = np.zeros_like(t)
    for start_index, start in enumerate(np.arange(0, t[-1], bar)):
        chord = _PROGRESSION[start_index % len(_PROGRESSION)]
        s = int(start * rate)
        local = t[s:] - t[s]
        for note in chord:
            f = _hz(note + 12)
            for k, amp in enumerate((1.0, 0.5, 0.3, 0.15), start=1):
                out[s:] += (
                    amp * np.sin(2 * np.pi * k * f * local) * np.exp(-local * (1.5 + k))
                )
    return out


def _pad(t: np.ndarray, rate: int, bar: float) -> np.ndarray:
    """A sustained, slightly detuned pad changing chord every bar."""
    out = np.zeros_like(t)
    index = (t // bar).astype(int) % len(_PROGRESSION)
    for voice in range(4):
        f = np.array([_hz(chord[voice]) for chord in _PROGRESSION])[index]
        for detune in (0.997, 1.003):
            phase = 2 * np.pi * np.cumsum(f * detune) / rate
            for k in range(1, 6):
                out += np.sin(k * phase) / k
    return out


def _bass_and_organ(t: np.ndarray, rate: int, bar: float) -> np.ndarray:
    """A walking bass in quarter notes under a drawbar-organ chord."""
    index = (t // bar).astype(int) % len(_PROGRESSION)
    beat = (t // (bar / 4)).astype(int) % 4
    roots = np.array([chord[0] for chord in _PROGRESSION])[index]
    bass_f = _hz(-12) * 2 ** ((roots + np.array([0, 7, 12, 7])[beat]) / 12)
    bass = np.sin(2 * np.pi * np.cumsum(bass_f) / rate)
    organ = np.zeros_like(t)
    for voice in range(1, 4):
        f = np.array([_hz(chord[voice]) for chord in _PROGRESSION])[index]
        phase = 2 * np.pi * np.cumsum(f) / rate
        for k, amp in ((1, 1.0), (2, 0.7), (3, 0.4), (4, 0.3)):
            organ += amp * np.sin(k * phase)
    return 1.5 * bass + 0.5 * organ


def _hit(n: int, rate: int, decay: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (rate * decay))


def drum_kit(n: int, rate: int, bpm: float, seed: int) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4, closed hi-hat on the eighths."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n)
    beat = 60.0 / bpm
    for i, start in enumerate(np.arange(0, n / rate, beat / 2)):
        s = int(start * rate)
        if i % 4 == 0:  # kick: a falling sine
            m = min(n - s, int(0.25 * rate))
            tt = np.arange(m) / rate
            f = 50 + 90 * np.exp(-tt * 30)
            out[s : s + m] += np.sin(2 * np.pi * np.cumsum(f) / rate) * _hit(
                m, rate, 0.08
            )
        if i % 4 == 2:  # snare: a tone and a noise burst
            m = min(n - s, int(0.2 * rate))
            tt = np.arange(m) / rate
            body = 0.4 * np.sin(2 * np.pi * 190 * tt)
            out[s : s + m] += (body + 0.7 * rng.standard_normal(m)) * _hit(
                m, rate, 0.05
            )
        m = min(n - s, int(0.05 * rate))  # hi-hat: bright noise, short
        hat = np.diff(rng.standard_normal(m + 1))
        out[s : s + m] += 0.25 * hat * _hit(m, rate, 0.01)
    return out


BEDS = {
    "piano": (_piano, 96.0),
    "pad": (_pad, 120.0),
    "organ": (_bass_and_organ, 140.0),
}


def minimal_pairs(
    rate: int, seconds: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (bed alone, the same bed with drums), each peak-normalised."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    pairs = {}
    for seed, (name, (bed_fn, bpm)) in enumerate(BEDS.items()):
        bar = 4 * 60.0 / bpm
        bed = bed_fn(t, rate, bar)
        bed = bed / np.abs(bed).max()
        drums = drum_kit(n, rate, bpm, seed)
        with_drums = 0.6 * bed + 0.6 * drums / np.abs(drums).max()
        pairs[name] = tuple(
            np.asarray(0.7 * x / np.abs(x).max(), np.float32) for x in (bed, with_drums)
        )
    return pairs


# Two announcements spoken by espeak-ng: speech and nothing else, the kind
# of item (a talk, an audiobook, a voice prompt) a music query must rank
# after music.
ANNOUNCEMENTS = {
    "en": "The meeting will begin in five minutes. Please take your seats and "
    "switch off your phones. Thank you for calling, your call is important to us.",
    "en+f3": "Welcome to the library. Today we will talk about the history of "
    "the town and its people, and how the river shaped the streets.",
}


def spoken(folder: Path, rate: int, seconds: float) -> np.ndarray:
    """[2, S] windows of espeak-ng speech (ANNOUNCEMENTS), decoded as the
    plugin decodes a file."""
    from beetsplug.clap.audio import load_windows

    windows = []
    for voice, text in ANNOUNCEMENTS.items():
        path = folder / f"speech-{voice}.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text],
            check=True,
            capture_output=True,
        )
        windows.append(load_windows(path, rate, seconds, 1)[0])
    return np.stack(windows)
