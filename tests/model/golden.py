"""Inputs of the golden-vector test, and the script that records their outputs.

python tests/model/golden.py --write   # after a deliberate model change
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

TEXTS = [
    "jazz without vocals",
    "ambient, no drums",
    "calm piano",
    "loud rock with distorted guitar and drums",
]


def signals(bundle) -> dict[str, np.ndarray]:
    """One window each of a held chord, a drum loop and noise (deterministic)."""
    rate = bundle.sample_rate
    n = round(bundle.window_seconds * rate)
    t = np.arange(n) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 4
    rng = np.random.default_rng(0)
    drums = np.zeros(n)
    for start in np.arange(0, n, rate // 2):  # a hit every half second
        length = min(n - start, rate // 10)
        decay = np.exp(-np.arange(length) / (rate / 60))
        kick = np.sin(2 * np.pi * 60 * np.arange(length) / rate)
        drums[start : start + length] += 0.8 * kick * decay
        drums[start : start + length] += 0.3 * rng.standard_normal(length) * decay
    noise = 0.2 * np.random.default_rng(1).standard_normal(n)
    return {
        name: np.asarray(x, np.float32)
        for name, x in (("chord", chord), ("drum_loop", drums), ("noise", noise))
    }


def record() -> dict:
    from beetsplug.clap.model import Bundle, default_bundle_path

    bundle = Bundle.load(default_bundle_path(), threads=1)
    out: dict = {
        "name": bundle.manifest["name"],
        "identity": bundle.identity,
        "text": {},
        "audio": {},
        "tags": {},
    }
    for text, row in zip(TEXTS, bundle.embed_text(TEXTS), strict=True):
        out["text"][text] = _rounded(row)
    for name, window in signals(bundle).items():
        emb, tags = bundle.embed_audio(window[None])
        out["audio"][name] = _rounded(emb[0])
        if tags is not None:
            out["tags"][name] = _rounded(tags[0])
    return out


def _rounded(row: np.ndarray) -> list[float]:
    """Whole vectors, to 5 decimals: far finer than the test's tolerance."""
    return [round(float(v), 5) for v in row]


def dumps(values: dict) -> str:
    """JSON with one vector a line, so a regenerated file diffs by vector."""
    lines = ["{"]
    for i, (key, value) in enumerate(values.items()):
        comma = "," if i < len(values) - 1 else ""
        if isinstance(value, dict):
            rows = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()]
            lines.append(f" {json.dumps(key)}: {{")
            lines.append(",\n".join(rows))
            lines.append(f" }}{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    values = record()
    text = dumps(values)
    if args.write:
        (Path(__file__).parent / "golden.json").write_text(text)
    print(text)
