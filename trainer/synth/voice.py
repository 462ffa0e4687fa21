"""Vocals made with espeak-ng: words sung on a pitch, or spoken in rhythm.

"Sung" here means: espeak-ng says the word in a monotone (SSML prosody range
0%) at the nearest of a few base pitches, then resampling shifts it to the
note's exact pitch (at most a few semitones, so it stays voice-like) and the
note's length cuts it. "Spoken" is espeak-ng's ordinary intonation. Every
word is synthesised once per worker process and cached: a corpus uses a small
lexicon, so after warm-up a vocal part costs only resampling.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from functools import cache

import numpy as np
import soundfile as sf
import soxr

from trainer.synth.compose import VoiceNote

ESPEAK_RATE = 22050  # espeak-ng's output rate
# espeak-ng -p values tried for the monotone base pitch; resampling covers the gaps.
PITCH_GRID: tuple[int, ...] = (0, 15, 30, 45, 60, 75, 90, 99)
SING_SPEED = 110  # words per minute: slow enough to hold a vowel
FADE_SECONDS = 0.03


class VoiceError(Exception):
    """espeak-ng is missing or failed (one-line reason)."""


def _espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise VoiceError("espeak-ng not found: install the Debian package 'espeak-ng'")
    return exe


def check_espeak() -> None:
    """espeak-ng found and speaking (its voice data installed), or a VoiceError."""
    espeak("a", "en", 50, SING_SPEED, False)


@cache
def espeak(word: str, voice: str, pitch: int, speed: int, monotone: bool) -> np.ndarray:
    """espeak-ng's rendering of `word` at 22.05 kHz, silence at both ends trimmed."""
    text = f'<speak><prosody range="0%">{word}</prosody></speak>' if monotone else word
    cmd = [
        _espeak_binary(),
        "-m",
        "-v",
        voice,
        "-p",
        str(pitch),
        "-s",
        str(speed),
        "--stdout",
        text,
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise VoiceError(
            f"espeak-ng failed for {word!r} ({voice}): {proc.stderr.decode().strip()}"
        )
    audio, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if rate != ESPEAK_RATE:
        audio = soxr.resample(audio, rate, ESPEAK_RATE)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * (np.abs(audio).max() + 1e-9))
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def estimate_f0(
    audio: np.ndarray, rate: int, fmin: float = 60.0, fmax: float = 700.0
) -> float:
    """Median autocorrelation pitch of loud frames (first peak within 90% of the best).

    Taking the first near-maximal peak rather than the maximum avoids the
    octave-down errors plain autocorrelation makes on steady vowels.
    """
    frame = int(0.05 * rate)
    lo, hi = int(rate / fmax), int(rate / fmin)
    level = np.abs(audio).max() + 1e-9
    estimates = []
    for start in range(0, len(audio) - frame, frame // 2):
        x = audio[start : start + frame].astype(np.float64)
        if np.sqrt(np.mean(x**2)) < 0.1 * level:
            continue
        x = x - x.mean()
        ac = np.correlate(x, x, "full")[frame - 1 :]
        if ac[0] <= 0:
            continue
        ac = ac / ac[0]
        window = ac[lo:hi]
        best = window.max()
        if best < 0.3:
            continue
        peaks = [
            i
            for i in range(1, len(window) - 1)
            if window[i] >= window[i - 1]
            and window[i] >= window[i + 1]
            and window[i] >= 0.9 * best
        ]
        lag = lo + (peaks[0] if peaks else int(np.argmax(window)))
        estimates.append(rate / lag)
    return float(np.median(estimates)) if estimates else 0.0


@cache
def base_pitches(voice: str) -> tuple[tuple[int, float], ...]:
    """(espeak -p value, measured f0 in Hz) of a monotone vowel for each grid value."""
    table: list[tuple[int, float]] = []
    # From the top down, keep only values lower than the last kept one: the
    # lowest -p values of male voices fall below the estimator's range and
    # read as a harmonic.
    for p in reversed(PITCH_GRID):
        f0 = estimate_f0(espeak("aa", voice, p, SING_SPEED, True), ESPEAK_RATE)
        if f0 > 0 and (not table or f0 < table[-1][1]):
            table.append((p, f0))
    if not table:
        raise VoiceError(f"could not measure the pitch of espeak-ng voice {voice}")
    return tuple(table)


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def _fade(audio: np.ndarray, rate: int) -> np.ndarray:
    """A 5 ms attack and a short release, so cut words do not click."""
    audio = audio.copy()
    attack = min(len(audio) // 2, int(0.005 * rate))
    release = min(len(audio) // 2, int(FADE_SECONDS * rate))
    if attack > 0:
        audio[:attack] *= np.linspace(0.0, 1.0, attack, dtype=np.float32)
    if release > 0:
        audio[-release:] *= np.linspace(1.0, 0.0, release, dtype=np.float32)
    return audio


def sing(word: str, voice: str, pitch: int, seconds: float, rate: int) -> np.ndarray:
    """`word` sung at MIDI `pitch` for at most `seconds`, at `rate` Hz."""
    target = midi_to_hz(pitch)
    p, f0 = min(base_pitches(voice), key=lambda pf: abs(np.log(target / pf[1])))
    base = espeak(word, voice, p, SING_SPEED, True)
    ratio = target / f0
    # Played `ratio` times faster: the pitch rises by `ratio` (and the word shortens).
    shifted = soxr.resample(base, ESPEAK_RATE * ratio, rate).astype(np.float32)
    return _fade(shifted[: max(1, int(seconds * rate))], rate)


def speak(
    word: str, voice: str, seconds: float, rate: int, speed: int = 170
) -> np.ndarray:
    """`word` spoken with espeak-ng's own intonation, cut to `seconds`."""
    base = espeak(word, voice, 50, speed, False)
    audio = soxr.resample(base, ESPEAK_RATE, rate).astype(np.float32)
    return _fade(audio[: max(1, int(seconds * rate))], rate)


def render_voice(
    notes: list[VoiceNote], voice: str, n_samples: int, rate: int
) -> np.ndarray:
    """The vocal stem: every word placed at its start time (sung or spoken)."""
    out = np.zeros(n_samples, dtype=np.float32)
    for note in notes:
        start = round(note.start * rate)
        if start >= n_samples:
            continue
        length = note.end - note.start
        audio = (
            sing(note.word, voice, note.pitch, length, rate)
            if note.pitch is not None
            else speak(note.word, voice, max(length, 0.35), rate)
        )
        audio = audio[: n_samples - start]
        out[start : start + len(audio)] += audio
    return out
