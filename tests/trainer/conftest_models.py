"""Shared fixtures for the model and export tests: deterministic test signals.

Not a conftest.py (trainer-core owns that one): the test modules import it.
The signals use integer hashing for noise, not numpy's random generators, so
the committed musicnn reference outputs (made once in a TensorFlow venv by
tests/trainer/data/make_musicnn_reference.py) stay valid on any numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trainer.config import AudioModelConfig, Config, ModelConfig, TextModelConfig
from trainer.export import export_model_bundle
from trainer.models import build_model
from trainer.models.musicnn import LABELS

SAMPLE_RATE = 16000
WINDOW = 3 * SAMPLE_RATE  # samples in one 3-second model window


def hash_noise(n: int, seed: int) -> np.ndarray:
    """White noise in [-1, 1) from a 32-bit integer hash (lowbias32) of the index."""
    x = (
        np.arange(n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B9)
    ) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    return (x.astype(np.float64) / 2**31 - 1.0).astype(np.float32)


def drum_loop(seconds: float = 3.0, seed: int = 1) -> np.ndarray:
    """Kick, snare and hi-hat at 120 bpm: what a tagger should call 'drums'/'beat'."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n)
    noise = hash_noise(n, seed).astype(np.float64)
    eighth = SAMPLE_RATE // 4  # 120 bpm eighth notes
    for i, start in enumerate(range(0, n, eighth)):
        seg = slice(start, min(n, start + eighth))
        tt = t[seg] - t[start]
        out[seg] += 0.3 * noise[seg] * np.exp(-tt * 60)  # hi-hat
        if i % 4 == 0:  # kick: falling pitch, fast decay
            out[seg] += (
                0.9
                * np.sin(2 * np.pi * (50 + 100 * np.exp(-tt * 30)) * tt)
                * np.exp(-tt * 12)
            )
        if i % 4 == 2:  # snare: tone + noise
            out[seg] += (
                0.5 * noise[seg] + 0.3 * np.sin(2 * np.pi * 190 * tt)
            ) * np.exp(-tt * 20)
    return (out / np.abs(out).max() * 0.9).astype(np.float32)


def sine_tone(seconds: float = 3.0, freq: float = 440.0) -> np.ndarray:
    """A steady pure tone: no drums, no voice."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def plucked_chords(seconds: float = 3.0) -> np.ndarray:
    """Harmonic decaying notes (a piano/guitar-like arpeggio) with a little noise."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n)
    notes = [261.63, 329.63, 392.0, 523.25, 293.66, 349.23, 440.0, 587.33]
    step = n // len(notes)
    for i, f0 in enumerate(notes):
        tt = t[i * step :] - t[i * step]
        tone = sum(np.sin(2 * np.pi * f0 * h * tt) / h**1.5 for h in range(1, 8))
        out[i * step :] += tone * np.exp(-tt * 2.5)
    out += 0.01 * hash_noise(n, 7)
    return (out / np.abs(out).max() * 0.8).astype(np.float32)


def reference_waveforms() -> dict[str, np.ndarray]:
    """The three 3-second clips the musicnn reference outputs were computed on."""
    return {"drums": drum_loop(), "sine": sine_tone(), "chords": plucked_chords()}


def calibration_windows() -> np.ndarray:
    """Eight varied 3-second windows [8, 48000] standing in for real music."""
    clips = [
        drum_loop(seed=1),
        drum_loop(seed=2) * 0.3,
        plucked_chords(),
        sine_tone(freq=220.0),
        sine_tone(freq=1760.0) * 0.2,
        0.5 * drum_loop(seed=3) + 0.5 * plucked_chords(),
        0.2 * hash_noise(3 * SAMPLE_RATE, 11),
        0.7 * plucked_chords()[::-1].copy(),
    ]
    return np.stack(clips).astype(np.float32)


def export_tagger(
    out: Path,
    pretrained: str,
    features: str,
    windows: np.ndarray,
    *,
    tag_sources: list[str] | None = None,
) -> tuple[torch.nn.Module, Path]:
    """A tiny model on pretrained musicnn taggers emitting their tags, exported."""
    torch.manual_seed(0)
    cfg = Config(
        model=ModelConfig(
            embedding_dim=8,
            audio=AudioModelConfig(
                backbone="musicnn",
                pretrained=pretrained,
                emit_tags=True,
                features=features,
            ),
            text=TextModelConfig(encoder="tiny", max_tokens=16),
        )
    )
    model = build_model(cfg.model).eval()
    if tag_sources is not None:
        # The taggers whose tags the graph emits, as bundles exported before
        # the backbone emitted every tagger's did (MTT's alone).
        backbone = model.audio.backbone
        backbone.tag_sources = tag_sources
        backbone.tag_names = [t for s in tag_sources for t in LABELS[s]]
    bundle = export_model_bundle(
        model, cfg, out, name="tagger", version="0", calibration_audio=windows
    )
    return model, bundle
