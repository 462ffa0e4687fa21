"""Helpers for the query and playlist tests: a toy text encoder, vectors like audio.

A module with its own name (not conftest) so the tests import it unambiguously
when the whole suite, with other folders' conftest.py files, runs at once.
"""

from __future__ import annotations

import re
import sys
import zlib
from pathlib import Path

import numpy as np

# The repository root and tests/, so `beetsplug.clap`, `trainer.vocab` and
# `bundle_factory` import from the checkout under test.
ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

TOY_DIM = 256
_NEGATORS = {"no", "not", "without"}


def toy_word(word: str, dim: int = TOY_DIM) -> np.ndarray:
    """A fixed pseudo-random unit direction per word (crc32-seeded)."""
    rng = np.random.default_rng(zlib.crc32(word.encode()))
    vec = rng.standard_normal(dim)
    return vec / np.linalg.norm(vec)


def toy_embed_text(texts: list[str], dim: int = TOY_DIM) -> np.ndarray:
    """A small, deterministic, negation-aware text encoder.

    Bag of words with one rule: "no"/"not"/"without" flips the sign of the
    next word, so "no vocals" points away from "vocals" as a negation-trained
    CLAP text tower should. Real numbers, no mocks: naming and ranking code
    sees exactly what it would see from a model with that property.
    """
    out = np.zeros((len(texts), dim))
    for row, text in enumerate(texts):
        sign = 1.0
        for word in re.findall(r"[a-z0-9&]+", text.lower()):
            if word in _NEGATORS:
                sign = -1.0
                continue
            out[row] += sign * toy_word(word, dim)
            sign = 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norms > 0, norms, 1)).astype(np.float32)


def audio_like(words: dict[str, float], n: int, noise: float, seed: int) -> np.ndarray:
    """n unit vectors scattered around a weighted sum of word directions."""
    rng = np.random.default_rng(seed)
    centre = sum(weight * toy_word(word) for word, weight in words.items())
    centre = centre / np.linalg.norm(centre)
    x = centre + noise * rng.standard_normal((n, TOY_DIM)) / np.sqrt(TOY_DIM)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
