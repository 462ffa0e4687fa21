"""Export a trained ClapModel as the plugin's model bundle (design.md, Contract 1).

audio.onnx (waveform in, log-mel inside, unit embedding [+ tags] out) is
quantized statically to int8 QDQ with calibration windows: dynamic int8
turns convolutions into ConvInteger, ~7x slower here. The log-mel front end
stays float (an 8-bit power spectrum before a log loses the quiet bins).
text.onnx gets per-channel dynamic int8, which suits transformers, but for
two outlier-prone MatMuls (TEXT_FLOAT_NODES). Parity
(cosine of torch vs ONNX fp32 vs ONNX int8) is measured on the calibration
inputs, written into the manifest, and the export fails if it is too low.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trainer.config import Config
from trainer.models import ClapModel, find_checkpoint, load_checkpoint
from trainer.models.text import save_bundle_tokenizer

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
BUNDLE_FILES = ("audio.onnx", "text.onnx", "tokenizer.json", "manifest.json")
TRACE_OPSET = 17
DYNAMO_OPSET = 18  # torch.export's exporter starts at 18
# The least text truncation a bundle gets (bundle_max_tokens), whatever
# length the model trained on: a whole LP-MusicCaps caption fits.
BUNDLE_MAX_TOKENS = 128
# The log-mel front end stays float: an 8-bit power spectrum before a log
# loses the quiet bins.
_FLOAT_MODULES = ("frontend",)
# Queries used for text parity when the caller gives none: plain descriptions,
# negations and a long caption (to exercise truncation).
DEFAULT_CALIBRATION_TEXTS = [
    "jazz without vocals",
    "calm piano, no drums",
    "ambient, no drums",
    "energetic rock with distorted guitar and drums",
    "a sad slow ballad with female vocals",
    "instrumental hip hop beat",
    "classical string quartet, not electronic",
    "fast electronic dance music with synth lead",
    "acoustic folk song with male vocals and acoustic guitar",
    "music without guitar",
    "drums",
    "happy",
    "a soft solo flute melody in a minor key, no percussion, no bass, no vocals, "
    "recorded in a large reverberant hall with a slow tempo and a melancholic mood "
    "that builds gently towards a quiet ending " * 2,
]


class ExportError(Exception):
    """An export that must not ship (parity below threshold, bad inputs)."""


@dataclass
class ParityThresholds:
    """Minimum cosine to torch; ONNX fp32 should be exact, int8 close."""

    audio_fp32: float = 0.999
    text_fp32: float = 0.999
    audio_int8: float = 0.98
    # Dynamic int8 MiniLM: min ~0.975, mean ~0.993 over short and long
    # queries (one-word queries are the worst: few tokens to average).
    text_int8: float = 0.96


# --------------------------------------------------------------------------- graphs


class _AudioGraph(nn.Module):
    """waveform [B, S] -> unit embedding [B, D] (+ tag probabilities [B, T])."""

    def __init__(self, model: ClapModel) -> None:
        super().__init__()
        self.tower = model.audio
        self.with_tags = bool(model.tag_names)

    def forward(self, waveform: torch.Tensor) -> Any:
        out = self.tower(waveform)
        embedding = F.normalize(out["embedding"], dim=-1)
        return (embedding, out["tags"]) if self.with_tags else embedding


class _TextGraph(nn.Module):
    """input_ids, attention_mask [B, T] -> unit embedding [B, D]."""

    def __init__(self, model: ClapModel) -> None:
        super().__init__()
        self.tower = model.text

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        return F.normalize(self.tower(input_ids, attention_mask), dim=-1)


def _trace_export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    input_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> Any:
    """The TorchScript-tracing exporter: ~1 s where torch.export takes ~10 s
    on these towers (CPU, 2 cores), which keeps export tests fast."""
    import io

    import onnx

    buffer = io.BytesIO()
    torch.onnx.export(
        module,
        args,
        buffer,
        input_names=input_names,
        dynamic_axes=dynamic_axes,
        opset_version=TRACE_OPSET,
        dynamo=False,
    )
    return onnx.load_from_string(buffer.getvalue())


def _dynamo_export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    input_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    limits: dict[str, tuple[int, int]],
) -> Any:
    """torch.export-based exporter, for torch builds without the tracer."""
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(
        logging.ERROR  # one warning per torchvision op it cannot register
    )
    dims = {
        name: torch.export.Dim(name, min=lo, max=hi)
        for name, (lo, hi) in limits.items()
    }
    shapes = {
        arg: {axis: dims[dim] for axis, dim in axes.items()}
        for arg, axes in dynamic_axes.items()
    }
    program = torch.onnx.export(
        module,
        args,
        input_names=input_names,
        dynamic_shapes=shapes,
        opset_version=DYNAMO_OPSET,
        dynamo=True,
        optimize=True,
        external_data=False,
        verbose=False,
    )
    return program.model_proto


def _name_outputs(proto: Any, output_names: list[str]) -> None:
    """Rename the graph outputs in place, moving clashing internal values aside.

    Exporters name internal values after the modules that make them; a
    transformer's word-embedding output may already be called "embedding".
    """
    graph = proto.graph
    if len(graph.output) != len(output_names):
        raise ExportError(
            f"graph has {len(graph.output)} outputs, expected {output_names}"
        )
    renames = {
        o.name: new
        for o, new in zip(graph.output, output_names, strict=True)
        if o.name != new
    }
    taken = {v for n in graph.node for v in (*n.input, *n.output)} | {
        i.name for i in graph.initializer
    }
    for new in output_names:
        if new in taken and new not in renames:
            renames[new] = f"{new}__internal"
    for node in graph.node:
        node.input[:] = [renames.get(v, v) for v in node.input]
        node.output[:] = [renames.get(v, v) for v in node.output]
    for value in (*graph.output, *graph.value_info):
        value.name = renames.get(value.name, value.name)
    for init in graph.initializer:
        init.name = renames.get(init.name, init.name)


def _onnx_export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    limits: dict[str, tuple[int, int]],
) -> Path:
    """Export `module` to `path` (weights inside), with named dynamic axes.

    The tracing exporter is tried first (fast); torch.export is the fallback
    where tracing is gone or fails. Either way the graph is checked against
    torch afterwards (export parity), so a wrong trace cannot ship.
    """
    import warnings

    import onnx

    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            proto = _trace_export(module, args, input_names, dynamic_axes)
        except Exception as exc:  # tracer removed or op unsupported
            log.info("trace export failed (%s); using torch.export", exc)
            proto = _dynamo_export(module, args, input_names, dynamic_axes, limits)
    module.eval()  # exporters restore the mode they found; keep eval
    _name_outputs(proto, output_names)
    # Exporters may record initialiser shapes in value_info too; they go
    # stale when the quantizer rewrites Gemm as MatMul with transposed
    # weights, and onnx shape inference then refuses the model.
    graph = proto.graph
    weights = {init.name for init in graph.initializer}
    kept = [v for v in graph.value_info if v.name not in weights]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def export_audio_onnx(model: ClapModel, path: Path) -> Path:
    """audio.onnx in float32 with dynamic batch and samples (S >= one window)."""
    window = model.audio.window_samples
    graph = _AudioGraph(model).eval()
    example = torch.randn(2, window) * 0.1
    outputs = ["embedding", "tags"] if graph.with_tags else ["embedding"]
    return _onnx_export(
        graph,
        (example,),
        path,
        ["waveform"],
        outputs,
        {"waveform": {0: "batch", 1: "samples"}},
        {"batch": (1, 4096), "samples": (window, window * 256)},
    )


def bundle_max_tokens(model: ClapModel, requested: int | None = None) -> int:
    """The bundle's truncation length: `requested`, else at least
    BUNDLE_MAX_TOKENS, within the encoder's positions.

    Training texts are short (max_tokens keeps CPU steps cheap) but people
    paste whole captions into queries, and the pretrained encoder reads them
    fine: cutting at the training length threw away everything past the
    first sentence (docs/benchmarks.md, long captions).
    """
    positions = int(
        getattr(model.text.encoder.config, "max_position_embeddings", 0) or 0
    )
    if requested is not None and requested < 2:
        raise ExportError(f"max_tokens must be at least 2, not {requested}")
    limit = requested or max(model.text.max_tokens, BUNDLE_MAX_TOKENS)
    if positions and limit > positions:
        if requested is not None:
            raise ExportError(
                f"max_tokens {requested} is more than the text encoder's "
                f"{positions} positions"
            )
        limit = positions
    return limit


def export_text_onnx(model: ClapModel, path: Path, max_tokens: int) -> Path:
    """text.onnx in float32 with dynamic batch and token count."""
    graph = _TextGraph(model).eval()
    ids = torch.full((2, 8), 1000, dtype=torch.long)
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    axes = {0: "batch", 1: "tokens"}
    return _onnx_export(
        graph,
        (ids, mask),
        path,
        ["input_ids", "attention_mask"],
        ["embedding"],
        {"input_ids": axes, "attention_mask": axes},
        {"batch": (1, 4096), "tokens": (2, max(max_tokens, 8))},
    )


# ------------------------------------------------------------------ quantization


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
    return out_path


# Text MatMuls left in float: the feed-forward down projections of the first
# two transformer layers. Their input (after GELU) has a few outlier channels,
# and dynamic int8 quantizes an activation with one scale per tensor, so the
# rest of it collapses onto a handful of levels. Measured on the attribute-loss
# model (docs/benchmarks.md): half-vs-full negation 0.963 fp32, 0.937 all-int8,
# 0.960 with these two float (+3.5 MB); whole layers 4-5 float gave 0.941.
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
    return out_path


# --------------------------------------------------------------------------- inputs


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


def _as_windows(audio: np.ndarray, window: int) -> np.ndarray:
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


# --------------------------------------------------------------------------- parity


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(
        str(path), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(axis=1)


def _stats(cos: np.ndarray) -> dict[str, float]:
    return {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)}


def _run_audio(
    path: Path, windows: np.ndarray, batch: int = 16
) -> tuple[np.ndarray, np.ndarray | None]:
    sess = _session(path)
    names = [o.name for o in sess.get_outputs()]
    outs = [
        sess.run(names, {"waveform": windows[i : i + batch]})
        for i in range(0, len(windows), batch)
    ]
    emb = np.concatenate([o[0] for o in outs])
    tags = np.concatenate([o[1] for o in outs]) if len(names) > 1 else None
    return emb, tags


def _run_text(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    """Text embeddings one text per run, unpadded, as the plugin makes them.

    Dynamic int8 picks one activation scale per tensor, so a batched run
    would measure embeddings the plugin never produces (they would depend on
    their batch-mates).
    """
    sess = _session(path)
    rows = []
    for ids, mask in zip(feed["input_ids"], feed["attention_mask"], strict=True):
        n = max(1, int(mask.sum()))
        one = {"input_ids": ids[None, :n], "attention_mask": mask[None, :n]}
        rows.append(sess.run(["embedding"], one)[0])
    return np.concatenate(rows)


def _bundle_tokens(
    tokenizer_path: Path, texts: Sequence[str], max_tokens: int
) -> dict[str, np.ndarray]:
    """Token ids exactly as the plugin makes them (truncate to max_tokens, zero-pad)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    encodings = tok.encode_batch(list(texts))
    length = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(texts), length), np.int64)
    mask = np.zeros((len(texts), length), np.int64)
    for row, enc in enumerate(encodings):
        ids[row, : len(enc.ids)] = enc.ids
        mask[row, : len(enc.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _check_tokenizer(
    cfg: Config, feed: dict[str, np.ndarray], texts: Sequence[str], max_tokens: int
) -> None:
    """The trainer's tokens must equal the bundle's, or the plugin embeds other ones."""
    from trainer.models.text import build_tokenizer, tokenize

    ours = tokenize(build_tokenizer(cfg.model.text), texts, max_tokens)
    if ours["input_ids"].shape != feed["input_ids"].shape or not np.array_equal(
        ours["input_ids"].numpy(), feed["input_ids"]
    ):
        raise ExportError(
            "tokenizer.json tokenises differently from the trainer's tokenizer"
        )


def _check(name: str, value: float, minimum: float) -> None:
    if not (value >= minimum):  # also catches NaN
        raise ExportError(
            f"export parity: {name} cosine {value:.4f} < required {minimum}"
        )


# --------------------------------------------------------------------------- bundle


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def last_eval_metrics(run_dir: Path) -> dict[str, Any]:
    """The last evaluation record of RUN/metrics.jsonl (numbers only), or {}.

    An evaluation line is one whose `kind`/`type`/`phase`/`split` says eval or
    valid(ation), or whose keys start with `eval`/`valid`.
    """
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return {}
    last: dict[str, Any] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        marks = {
            str(record.get(k, "")).lower() for k in ("kind", "type", "phase", "split")
        }
        is_eval = bool(
            marks & {"eval", "evaluate", "evaluation", "valid", "validation"}
        ) or any(str(k).startswith(("eval", "valid")) for k in record)
        if is_eval:
            last = record
    return {
        k: v
        for k, v in last.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def export_model_bundle(
    model: ClapModel,
    cfg: Config,
    out_dir: Path | str,
    *,
    name: str,
    version: str,
    calibration_audio: np.ndarray | None = None,
    calibration_texts: Sequence[str] | None = None,
    max_windows: int = 8,
    max_tokens: int | None = None,
    quantize: bool = True,
    thresholds: ParityThresholds | None = None,
    training: dict[str, Any] | None = None,
    probe_info: dict[str, Any] | None = None,
) -> Path:
    """Write the bundle of an in-memory model; see `export_bundle`."""
    thresholds = thresholds or ParityThresholds()
    model = model.to("cpu").float().eval()
    max_tokens = bundle_max_tokens(model, max_tokens)
    audio_cfg = model.config.audio
    window = model.audio.window_samples
    calibration_kind = "given"
    if calibration_audio is None:
        calibration_kind = "synthetic"
        calibration_audio = synthetic_calibration_audio(
            audio_cfg.sample_rate, audio_cfg.window_seconds
        )
    windows = _as_windows(calibration_audio, window)
    texts = list(calibration_texts or DEFAULT_CALIBRATION_TEXTS)
    keep_float = tuple(model.audio.backbone.keep_float)
    if model.audio.probes is not None:
        keep_float += ("probes",)  # a few hundred weights: no int8 gain
    out_dir = Path(out_dir)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="clap-export-") as tmp:
        work = Path(tmp)
        stage = work / "bundle"
        stage.mkdir()
        audio_fp32 = export_audio_onnx(model, work / "audio.fp32.onnx")
        text_fp32 = export_text_onnx(model, work / "text.fp32.onnx", max_tokens)
        tokenizer = save_bundle_tokenizer(cfg.model.text, stage / "tokenizer.json")

        with torch.no_grad():
            ref_emb, ref_tags = [], []
            for i in range(0, len(windows), 16):
                emb, tags = model.encode_audio_with_tags(
                    torch.from_numpy(windows[i : i + 16])
                )
                ref_emb.append(emb.numpy())
                if tags is not None:
                    ref_tags.append(tags.numpy())
            torch_audio = np.concatenate(ref_emb)
            torch_tags = np.concatenate(ref_tags) if ref_tags else None
            feed = _bundle_tokens(tokenizer, texts, max_tokens)
            _check_tokenizer(cfg, feed, texts, max_tokens)
            torch_text = model.encode_text(
                torch.from_numpy(feed["input_ids"]),
                torch.from_numpy(feed["attention_mask"]),
            ).numpy()

        parity: dict[str, Any] = {"audio": {}, "text": {}}
        audio_variants = {"onnx_fp32": audio_fp32}
        text_variants = {"onnx_fp32": text_fp32}
        if quantize:
            audio_variants["onnx_int8"] = quantize_audio(
                audio_fp32, work / "audio.int8.onnx", windows, work, keep_float
            )
            text_variants["onnx_int8"] = quantize_text(
                text_fp32, work / "text.int8.onnx", work
            )
        for variant, path in audio_variants.items():
            emb, tags = _run_audio(path, windows)
            entry = _stats(_cosines(torch_audio, emb))
            if torch_tags is not None and tags is not None:
                entry["tags_max_abs_diff"] = round(
                    float(np.abs(tags - torch_tags).max()), 6
                )
            parity["audio"][variant] = entry
        for variant, path in text_variants.items():
            emb = _run_text(path, feed)
            parity["text"][variant] = _stats(_cosines(torch_text, emb))

        _check(
            "audio ONNX fp32",
            parity["audio"]["onnx_fp32"]["min"],
            thresholds.audio_fp32,
        )
        _check(
            "text ONNX fp32", parity["text"]["onnx_fp32"]["min"], thresholds.text_fp32
        )
        if quantize:
            _check(
                "audio ONNX int8",
                parity["audio"]["onnx_int8"]["min"],
                thresholds.audio_int8,
            )
            _check(
                "text ONNX int8",
                parity["text"]["onnx_int8"]["min"],
                thresholds.text_int8,
            )
        shipped = "onnx_int8" if quantize else "onnx_fp32"
        shutil.copyfile(audio_variants[shipped], stage / "audio.onnx")
        shutil.copyfile(text_variants[shipped], stage / "text.onnx")

        sizes = {
            f: (stage / f).stat().st_size
            for f in ("audio.onnx", "text.onnx", "tokenizer.json")
        }
        parity.update(
            {
                "audio_cosine_min": parity["audio"][shipped]["min"],
                "audio_cosine_mean": parity["audio"][shipped]["mean"],
                "text_cosine_min": parity["text"][shipped]["min"],
                "text_cosine_mean": parity["text"][shipped]["mean"],
                "shipped": shipped,
                "reference": "torch fp32",
                "calibration": {
                    "audio": calibration_kind,
                    "windows": len(windows),
                    "texts": len(texts),
                },
                "thresholds": asdict(thresholds),
                "fp32_sizes": {
                    "audio.onnx": audio_fp32.stat().st_size,
                    "text.onnx": text_fp32.stat().st_size,
                },
            }
        )
        audio_section: dict[str, Any] = {
            "file": "audio.onnx",
            "sample_rate": audio_cfg.sample_rate,
            "window_seconds": audio_cfg.window_seconds,
            "max_windows": max_windows,
            "quantization": (
                "static int8 QDQ, per-channel weights; float: log-mel front end"
                + "".join(f", {f}" for f in keep_float)
                if quantize
                else "none"
            ),
        }
        if model.tag_names:
            audio_section["tags"] = list(model.tag_names)
        if model.audio.probes is not None:
            audio_section["probes"] = {
                "attributes": list(model.audio.probes.names),
                "method": "logistic regression on the window-averaged backbone "
                "features (trainer.probes), for the attributes no backbone tag "
                "names",
                **(probe_info or {}),
            }
        manifest = {
            "format": FORMAT_VERSION,
            "name": name,
            "version": version,
            "embedding_dim": model.embedding_dim,
            "files": {
                f: _sha256(stage / f)
                for f in ("audio.onnx", "text.onnx", "tokenizer.json")
            },
            "sizes": sizes,
            "audio": audio_section,
            "text": {
                "file": "text.onnx",
                "tokenizer": "tokenizer.json",
                "max_tokens": max_tokens,
                "quantization": (TEXT_QUANTIZATION if quantize else "none"),
            },
            "training": training or {},
            "parity": parity,
        }
        (stage / "manifest.json").write_text(
            json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
        )

        # Only a bundle that passed its checks replaces what is in out_dir;
        # the manifest goes last so a half-copied folder never validates.
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "manifest.json").unlink(missing_ok=True)
        for file in BUNDLE_FILES:
            shutil.copyfile(stage / file, out_dir / file)
    log.info(
        "exported %s %s to %s in %.1f s: audio cosine min %.4f, text cosine min %.4f",
        name,
        version,
        out_dir,
        time.perf_counter() - started,
        parity["audio_cosine_min"],
        parity["text_cosine_min"],
    )
    return out_dir


def export_bundle(
    run_dir_or_checkpoint: Path | str,
    out_dir: Path | str,
    *,
    name: str,
    version: str,
    calibration_audio: np.ndarray | None = None,
    calibration_texts: Sequence[str] | None = None,
    max_windows: int = 8,
    max_tokens: int | None = None,
    quantize: bool = True,
    thresholds: ParityThresholds | None = None,
    probe_data: Path | str | None = None,
    probe_c: float = 0.1,
    probe_min_clips: int = 10,
) -> Path:
    """Export a training run (or one checkpoint) as a model bundle folder.

    calibration_audio: [N, window] float32 windows at the model's sample rate
      (or 1-D audio, cut into windows) — real music, ideally from the
      validation split (`calibration_from_data`). None falls back to
      synthetic signals and says so in manifest.parity.calibration.
    probe_data: a data directory whose training split fits attribute probes
      for what the backbone's tagger does not name (trainer.probes), each
      from at least `probe_min_clips` clips with and without it; they join
      the `tags` output.
    Raises ExportError if ONNX parity is below `thresholds`; nothing is
    written to out_dir then.
    """
    checkpoint = find_checkpoint(run_dir_or_checkpoint)
    model, cfg, ckpt = load_checkpoint(checkpoint)
    probe_info = None
    if probe_data is not None:
        from trainer.probes import ProbeError, probes_from_data

        try:
            model.audio.probes = probes_from_data(
                model,
                cfg,
                probe_data,
                c=probe_c,
                min_clips=probe_min_clips,
                log=log.info,
            )
        except ProbeError as exc:
            raise ExportError(str(exc)) from exc
        probe_info = {
            "data": str(probe_data),
            "split": cfg.data.train_split,
            "c": probe_c,
            "min_clips": probe_min_clips,
        }
    run_dir = (
        checkpoint.parent.parent
        if checkpoint.parent.name == "checkpoints"
        else checkpoint.parent
    )
    training = {
        "data": str(ckpt.get("data", ckpt.get("data_dir", ""))),
        "recipe": cfg.name,
        "checkpoint": checkpoint.resolve().name,
        "step": int(ckpt.get("step", 0)),
        "metrics": last_eval_metrics(run_dir),
        "config": cfg.to_dict(),
    }
    return export_model_bundle(
        model,
        cfg,
        out_dir,
        name=name,
        version=version,
        calibration_audio=calibration_audio,
        calibration_texts=calibration_texts,
        max_windows=max_windows,
        max_tokens=max_tokens,
        quantize=quantize,
        thresholds=thresholds,
        training=training,
        probe_info=probe_info,
    )
