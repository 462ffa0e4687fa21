"""The model: bundle size and encoder speed, int8 (shipped) against fp32."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import bundle_size, percentiles, repeat

TEXTS = [
    "calm piano",
    "jazz without vocals",
    "energetic rock with distorted guitar and drums",
    "ambient, no drums",
    "a sad slow ballad with female vocals",
]


@dataclass
class ModelSpeed:
    variant: str
    size_bytes: int
    audio_files_bytes: int
    text_files_bytes: int
    window_ms: dict[str, float]  # "batch 1, 1 thread" -> ms per 3 s window
    ten_seconds_ms: float  # one 10 s input (3 windows inside the graph)
    text_ms: tuple[float, float]  # p50, p95 per query, 1 thread
    text_ms_2threads: tuple[float, float]
    op_ms: dict[str, float]  # onnxruntime profile: ms per window by op type
    load_ms: dict[str, float]  # Bundle.load and its parts


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    from beetsplug.clap.model import session_options

    return ort.InferenceSession(
        str(path),
        sess_options=session_options(threads),
        providers=["CPUExecutionProvider"],
    )


def measure(bundle_dir: Path, variant: str, rounds: int = 8) -> ModelSpeed:
    from beetsplug.clap.model import Bundle

    bundle = Bundle.load(bundle_dir, threads=1)
    rng = np.random.default_rng(0)
    window = bundle.window_samples
    x = (0.1 * rng.standard_normal((8, window))).astype(np.float32)
    window_ms = {}
    for threads in (1, 2):
        sess = _session(bundle_dir / "audio.onnx", threads)
        name = sess.get_inputs()[0].name
        for batch in (1, 8):
            times = repeat(
                lambda s=sess, b=batch, n=name: s.run(None, {n: x[:b]}), rounds, 1
            )
            window_ms[f"batch {batch}, {threads} thread{'s' * (threads > 1)}"] = (
                float(np.median(times)) / batch * 1000
            )
    sess = _session(bundle_dir / "audio.onnx", 1)
    ten = (0.1 * rng.standard_normal((1, bundle.sample_rate * 10))).astype(np.float32)
    ten_ms = float(np.median(repeat(lambda: sess.run(None, {name: ten}), rounds, 1)))
    text_ms = {}
    for threads in (1, 2):
        b = Bundle.load(bundle_dir, threads=threads)
        times = [
            t
            for text in TEXTS
            for t in repeat(lambda text=text, b=b: b.embed_text([text]), 4, 1)
        ]
        p50, p95 = percentiles(times)
        text_ms[threads] = (p50 * 1000, p95 * 1000)
    files = {p.name: p.stat().st_size for p in bundle_dir.iterdir()}
    return ModelSpeed(
        variant,
        bundle_size(bundle_dir),
        files.get("audio.onnx", 0),
        files.get("text.onnx", 0),
        window_ms,
        ten_ms * 1000,
        text_ms[1],
        text_ms[2],
        _op_profile(bundle_dir / "audio.onnx", x[:1]),
        _load_parts(bundle_dir),
    )


def _op_profile(path: Path, window: np.ndarray, runs: int = 10) -> dict[str, float]:
    """ms per window spent in each operator type (onnxruntime's profiler)."""
    import json
    import tempfile

    import onnxruntime as ort

    from beetsplug.clap.model import session_options

    opts = session_options(1)
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        name = sess.get_inputs()[0].name
        for _ in range(runs):
            sess.run(None, {name: window})
        events = json.loads(Path(sess.end_profiling()).read_text())
    totals: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            totals[op] = totals.get(op, 0.0) + event["dur"] / 1000 / runs
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def _load_parts(bundle_dir: Path) -> dict[str, float]:
    """What `Bundle.load` spends as `beet clap` calls it (text tower only;
    audio.onnx is opened to index): hashing, sessions."""
    import time

    from beetsplug.clap.model import Bundle, sha256_file

    out = {}
    start = time.perf_counter()
    Bundle.load(bundle_dir, audio=False)
    out["Bundle.load"] = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    for name in ("audio.onnx", "text.onnx", "tokenizer.json"):
        sha256_file(bundle_dir / name)
    out["sha256 of the files"] = (time.perf_counter() - start) * 1000
    for name in ("audio.onnx", "text.onnx"):
        start = time.perf_counter()
        _session(bundle_dir / name, 0)
        out[f"open {name}"] = (time.perf_counter() - start) * 1000
    return out
