"""Piece -> stems -> clips: FluidSynth per-channel rendering, levels, reverb, mixing.

Each part becomes one stem (float32, 16 kHz, levelled and with its own
reverb). A clip is `gain * sum(stems it keeps)`, with one gain per piece, so
a minimal-pair partner is exactly the full mix minus one stem (up to 16-bit
rounding in the FLAC).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import soxr

from trainer.synth import styles
from trainer.synth.compose import Piece
from trainer.synth.fluid import DRUM_BANK, DRUM_CHANNEL, ChannelSynth
from trainer.synth.voice import render_voice

SAMPLE_RATE = 16000  # the clips' rate (the plugin's and the models')
# FluidSynth's rate. It does not band-limit its sample playback: partials
# above 11 kHz alias, but they fold onto 8-11 kHz, which the resampler to
# 16 kHz removes. Rendering at 16 kHz would alias into the band the models
# hear; 22.05 kHz is the lowest rate that keeps the aliases out of it, and
# synthesis time grows with the rate (docs/benchmark.md, "Rendering speed").
RENDER_RATE = 22050
SOUNDFONT_DIR = Path("/usr/share/sounds/sf2")
SOUNDFONTS: dict[str, Path] = {
    "FluidR3_GM": SOUNDFONT_DIR / "FluidR3_GM.sf2",
    "TimGM6mb": SOUNDFONT_DIR / "TimGM6mb.sf2",
}
TRAIN_SOUNDFONT = "FluidR3_GM"  # renders train, valid and test
SHIFT_SOUNDFONT = "TimGM6mb"  # renders test_shift only (the domain-shift split)
STEM_RMS_DB = -24.0  # every stem's active level before its role offset
PEAK_LIMIT = 0.98
_ACTIVE_FRAME = 0.05  # seconds; frames quieter than 1/100 of the loudest do not count


def _channels(piece: Piece) -> dict[str, int]:
    """MIDI channel per MIDI stem: drums on channel 10 (index 9), the rest in order."""
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    out = {}
    for part in piece.parts:
        if part.espeak_voice is None:
            out[part.stem] = DRUM_CHANNEL if part.is_drum else free.pop(0)
    return out


def score_events(
    piece: Piece, rate: int, stems: set[str] | None = None
) -> tuple[
    dict[int, tuple[int, int]], list[tuple[int, int, int, int, int]], dict[str, int]
]:
    """FluidSynth programs and sorted note events of the MIDI parts (or a subset)."""
    channels = _channels(piece)
    programs: dict[int, tuple[int, int]] = {}
    events: list[tuple[int, int, int, int, int]] = []
    for part in piece.parts:
        if part.stem not in channels or (stems is not None and part.stem not in stems):
            continue
        ch = channels[part.stem]
        programs[ch] = (DRUM_BANK, part.program) if part.is_drum else (0, part.program)
        for note in part.notes:
            on = round(note.start * rate)
            off = max(on + 1, round(note.end * rate))
            events.append((on, 1, ch, note.pitch, note.velocity))
            events.append(
                (off, 0, ch, note.pitch, 0)
            )  # offs sort before ons at one frame
    events.sort()
    return programs, events, channels


def active_rms(audio: np.ndarray, rate: int) -> float:
    """RMS over the frames that actually sound, so sparse parts are not over-boosted."""
    frame = max(1, int(_ACTIVE_FRAME * rate))
    n = len(audio) // frame
    if n == 0:
        return float(np.sqrt(np.mean(audio**2))) if len(audio) else 0.0
    energy = np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1)
    if energy.max() <= 0:
        return 0.0
    return float(np.sqrt(energy[energy > 0.01 * energy.max()].mean()))


def impulse_response(seconds: float, rate: int, seed: str) -> np.ndarray:
    """A synthetic room: exponentially decaying noise (RT60 `seconds`), unit energy."""
    rng = np.random.default_rng(random.Random(seed).getrandbits(64))
    length = int(min(seconds, 2.5) * rate)
    t = np.arange(length) / rate
    ir = rng.standard_normal(length) * np.exp(-6.9 * t / seconds)
    ir[: int(0.01 * rate)] = 0.0  # 10 ms pre-delay
    return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)


def _convolve(signal: np.ndarray, spectrum: np.ndarray, n_fft: int) -> np.ndarray:
    return np.fft.irfft(np.fft.rfft(signal, n_fft) * spectrum, n_fft)[
        : len(signal)
    ].astype(np.float32)


def render_stems(
    piece: Piece, synth: ChannelSynth, only: set[str] | None = None
) -> dict[str, np.ndarray]:
    """Every stem of the piece at SAMPLE_RATE, levelled and reverberated (float32).

    `only` renders a subset (the other parts are not sent to FluidSynth at
    all), which tests use to check that stems really are independent.
    """
    n_out = round(piece.spec.duration * SAMPLE_RATE)
    n_render = round(piece.spec.duration * synth.sample_rate)
    programs, events, channels = score_events(piece, synth.sample_rate, only)
    dry: dict[str, np.ndarray] = {}
    if programs:
        per_channel = synth.render(programs, events, n_render)
        for stem, ch in channels.items():
            if only is None or stem in only:
                audio = soxr.resample(per_channel[ch], synth.sample_rate, SAMPLE_RATE)
                dry[stem] = _fit(audio.astype(np.float32), n_out)
    for part in piece.parts:
        if part.espeak_voice is not None and (only is None or part.stem in only):
            dry[part.stem] = render_voice(
                part.voice_notes, part.espeak_voice, n_out, SAMPLE_RATE
            )

    rt60 = piece.reverb_seconds * random.Random(
        f"rt60:{piece.spec.seed}:{piece.spec.index}"
    ).uniform(0.8, 1.2)
    ir = impulse_response(rt60, SAMPLE_RATE, f"ir:{piece.spec.seed}:{piece.spec.index}")
    n_fft = 1 << int(np.ceil(np.log2(n_out + len(ir))))
    spectrum = np.fft.rfft(ir, n_fft)
    fade = _edge_fade(n_out)
    roles = {p.stem: p.role for p in piece.parts}
    stems: dict[str, np.ndarray] = {}
    for stem, audio in dry.items():
        level = active_rms(audio, SAMPLE_RATE)
        if level <= 0:
            raise ValueError(f"piece {piece.spec.piece_id}: stem {stem!r} is silent")
        role = roles[stem]
        audio = audio * (
            10 ** ((STEM_RMS_DB + styles.ROLE_LEVEL_DB[role]) / 20) / level
        )
        wet = _convolve(audio, spectrum, n_fft)
        stems[stem] = ((audio + styles.ROLE_REVERB_SEND[role] * wet) * fade).astype(
            np.float32
        )
    return stems


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))


def _edge_fade(n: int) -> np.ndarray:
    """5 ms in, 60 ms out: clips end mid-piece, and a hard cut would click."""
    fade = np.ones(n, dtype=np.float32)
    a, b = int(0.005 * SAMPLE_RATE), int(0.06 * SAMPLE_RATE)
    fade[:a] = np.linspace(0, 1, a)
    fade[-b:] = np.linspace(1, 0, b)
    return fade


def mix_gain(stems: dict[str, np.ndarray], energy: str) -> float:
    """One gain per piece: the full mix at its energy's loudness, peak <= PEAK_LIMIT."""
    full = np.sum(list(stems.values()), axis=0)
    rms = float(np.sqrt(np.mean(full**2)))
    gain = 10 ** (styles.ENERGY_RMS_DB[energy] / 20) / max(rms, 1e-9)
    peak = float(np.abs(full).max())
    return min(gain, PEAK_LIMIT / max(peak, 1e-9))


def mix(
    stems: dict[str, np.ndarray], gain: float, removed: tuple[str, ...] = ()
) -> np.ndarray:
    """gain * the sum of every stem not in `removed`."""
    kept = [audio for stem, audio in stems.items() if stem not in removed]
    return (gain * np.sum(kept, axis=0)).astype(np.float32)
