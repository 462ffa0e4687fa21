"""int8 quantization of the bundle's graphs, and the audio that calibrates it.

audio.onnx gets static QDQ int8 with calibration windows: dynamic int8 turns
convolutions into ConvInteger, far slower than float (docs/benchmarks.md).
The log-mel front end stays float (an 8-bit power spectrum before a log
loses the quiet bins). text.onnx gets per-channel dynamic int8, which suits
transformers, but for two outlier-prone MatMuls (TEXT_FLOAT_NODES).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainer.export.graphs import ExportError

# The log-mel front end stays float: an 8-bit power spectrum before a log
# loses the quiet bins.
_FLOAT_MODULES = ("frontend",)


class _WindowReader:
    """onnxruntime CalibrationDataReader over waveform windows, a few per batch."""

    def __init__(self, windows: np.ndarray, batch: int = 8) -> None:
        # Equal-sized batches (the last one wraps around to the first windows):
        # the histogram calibrators stack per-batch outputs into one array.
        batch = min(batch, len(windows))
        n = -(-len(windows) // batch) * batch
        padded = np.concatenate([windows, windows[: n - len(windows)]])
        self._batches = [padded[i : i + batch] for i in range(0, n, batch)]
        self._iter: Iterator[np.ndarray] = iter(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._iter, None)
        return (
            None
            if batch is None
            else {"waveform": np.ascontiguousarray(batch, np.float32)}
        )

    def rewind(self) -> None:
        self._iter = iter(self._batches)


def float_nodes(model_path: Path, modules: Sequence[str]) -> list[str]:
    """Nodes belonging to a module named by one of `modules` (module paths,
    "midend" or "layer.0/output/dense").

    Exporters name initialisers after module paths
    (`tower.backbone.nets.MTT_musicnn.midend.0.conv.weight`) and the tracer
    also names nodes that way (`/tower/backbone/MTT_musicnn/midend.0/conv/Conv`);
    a node matches if its name or a weight it reads contains the module path
    as whole components, "." and "/" alike.
    """
    import re

    import onnx

    def components(name: str) -> str:
        return "/" + re.sub(r"[./]", "/", name) + "/"

    wanted = [components(m) for m in modules]

    def named(name: str) -> bool:
        path = components(name)
        return any(w in path for w in wanted)

    graph = onnx.load(str(model_path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer if named(i.name)}
    return [
        n.name for n in graph.node if named(n.name) or weights.intersection(n.input)
    ]


def quantize_audio(
    fp32_path: Path,
    out_path: Path,
    windows: np.ndarray,
    work: Path,
    keep_float: Sequence[str] = (),
) -> Path:
    """Static QDQ int8 (per-channel weights, uint8 activations) of the backbone.

    Only Conv/MatMul/Gemm are quantized; the front end's and those reading
    weights named by `keep_float` are left out. Everything else (BN,
    pooling, normalisation) runs in float between.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = work / "audio.pre.onnx"
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    exclude = float_nodes(prepared, (*_FLOAT_MODULES, *keep_float))
    quantize_static(
        str(prepared),
        str(out_path),
        _WindowReader(windows),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv", "MatMul", "Gemm"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
    )
    return uint8_weights(out_path)


# Text MatMuls left in float: the feed-forward down projections of the first
# two transformer layers. Their input (after GELU) has a few outlier channels,
# and dynamic int8 quantizes an activation with one scale per tensor, so the
# rest of it collapses onto a handful of levels. Keeping these two float
# recovers the fp32 negation figures for a few MB (docs/benchmarks.md,
# text quantization).
TEXT_FLOAT_NODES = ("layer.0/output/dense", "layer.1/output/dense")
TEXT_QUANTIZATION = (
    "dynamic int8, per-channel; float: feed-forward output of layers 0-1"
)


def quantize_text(fp32_path: Path, out_path: Path, work: Path) -> Path:
    """Per-channel dynamic int8 of the transformer (MatMul weights and
    embeddings), but for the outlier-prone MatMuls of TEXT_FLOAT_NODES."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = work / "text.pre.onnx"
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(
        str(prepared),
        str(out_path),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm", "Gather"],
        nodes_to_exclude=float_nodes(prepared, TEXT_FLOAT_NODES),
    )
    return uint8_weights(out_path)


def uint8_weights(path: Path) -> Path:
    """Store the int8 weights of a quantized graph as uint8, in place.

    Each int8 weight w with zero point z becomes w + 128 with zero point
    z + 128: the same integers once the zero point is subtracted, so the
    graph computes the same thing. What changes is the kernel: with uint8
    activations and int8 weights, onnxruntime on an x86 CPU without VNNI
    (AVX2 only) multiplies with an instruction that saturates 16-bit pair
    sums, so the same bundle gave other vectors there than on a VNNI CPU
    (models/README.md, 0.5.2); uint8 x uint8 is exact on both. Weights are
    the int8 initializers read by MatMulInteger (input B) and
    DequantizeLinear (input x), together with their zero points.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    for name in sorted(weight_initializers(model, onnx.TensorProto.INT8)):
        shifted = numpy_helper.to_array(inits[name]).astype(np.int16) + 128
        inits[name].CopyFrom(numpy_helper.from_array(shifted.astype(np.uint8), name))
    onnx.save(model, str(path))
    return path


def weight_initializers(model: Any, data_type: int) -> set[str]:
    """The names of the 8-bit weights of `model` (an onnx ModelProto) and
    their zero points whose initializers are all of `data_type`: input B of
    MatMulInteger and input x of DequantizeLinear, each with its zero point."""
    inits = {i.name: i.data_type for i in model.graph.initializer}
    names: set[str] = set()
    for node in model.graph.node:
        if node.op_type == "MatMulInteger" and len(node.input) >= 4:
            pair = (node.input[1], node.input[3])
        elif node.op_type == "DequantizeLinear" and len(node.input) >= 3:
            pair = (node.input[0], node.input[2])
        else:
            continue
        if all(inits.get(n) == data_type for n in pair):
            names.update(pair)
    return names


def synthetic_calibration_audio(
    sample_rate: int = 16000, window_seconds: float = 3.0, n: int = 32, seed: int = 0
) -> np.ndarray:
    """Deterministic stand-in calibration windows [n, S]: tones, chords, noise, beats.

    Only for when no real audio is at hand (tests, a quick export); real
    windows from the training data calibrate activation ranges better, and
    the manifest records which kind was used.
    """
    rng = np.random.default_rng(seed)
    length = round(window_seconds * sample_rate)
    t = np.arange(length) / sample_rate
    out = np.zeros((n, length), np.float32)
    for i in range(n):
        kind = i % 4
        f0 = 55.0 * 2 ** rng.uniform(0, 5)
        if kind == 0:  # harmonic tone with vibrato
            phase = 2 * np.pi * f0 * t + 0.3 * np.sin(2 * np.pi * 5 * t)
            x = sum(np.sin(h * phase) / h for h in range(1, 6))
        elif kind == 1:  # chord
            x = sum(np.sin(2 * np.pi * f0 * r * t) for r in (1.0, 1.26, 1.5, 2.0))
        elif kind == 2:  # coloured noise
            x = np.cumsum(rng.standard_normal(length)) * 0.02 + rng.standard_normal(
                length
            )
            x -= np.convolve(x, np.ones(64) / 64, mode="same")
        else:  # decaying hits at a random tempo over a bass tone
            x = 0.3 * np.sin(2 * np.pi * f0 / 2 * t)
            period = int(sample_rate * 60 / rng.uniform(70, 160))
            env = np.exp(-(np.arange(length) % period) / (0.03 * sample_rate))
            x += env * rng.standard_normal(length)
        x = np.asarray(x, np.float64)
        out[i] = (x / (np.abs(x).max() + 1e-9) * rng.uniform(0.1, 0.95)).astype(
            np.float32
        )
    return out


def calibration_from_data(
    data_dir: Path | str,
    *,
    split: str = "valid",
    sample_rate: int = 16000,
    window_seconds: float = 3.0,
    n_windows: int = 64,
) -> tuple[np.ndarray, list[str]]:
    """Real calibration windows and captions from a data directory (Contract 3).

    One window from the middle of each clip, up to `n_windows` clips;
    unreadable clips are skipped. Returns ([n, S] float32, captions).
    """
    from trainer.data import (
        AudioDecodeError,
        eval_caption,
        fit_length,
        read_audio,
        read_split,
    )

    clips, _ = read_split(data_dir, split)
    window = round(window_seconds * sample_rate)
    windows, texts = [], []
    for clip in clips:
        if len(windows) >= n_windows:
            break
        try:
            audio = read_audio(clip.audio, sample_rate)
        except AudioDecodeError:
            continue
        if audio.size == 0 or not np.any(audio):
            continue
        start = max(0, (len(audio) - window) // 2)
        windows.append(fit_length(audio[start:], window))
        texts.append(eval_caption(clip))
    if not windows:
        raise ExportError(
            f"no readable audio in {data_dir} split {split} for calibration"
        )
    return np.stack(windows).astype(np.float32), texts


def as_windows(audio: np.ndarray, window: int) -> np.ndarray:
    """[N, S] windows from what the caller gave: [N, window] or 1-D audio to cut."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        n = len(audio) // window
        if n == 0:
            raise ExportError(
                f"calibration audio shorter than one window ({window} samples)"
            )
        audio = audio[: n * window].reshape(n, window)
    if audio.ndim != 2 or audio.shape[1] != window:
        raise ExportError(
            f"calibration audio must be [N, {window}] windows or 1-D, "
            f"got shape {audio.shape}"
        )
    if not np.isfinite(audio).all():
        raise ExportError("calibration audio contains NaN or inf")
    return audio
