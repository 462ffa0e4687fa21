"""Torch -> ONNX: the audio and text towers as the bundle's float32 graphs.

audio.onnx takes a waveform and holds the log-mel front end, so plugin and
trainer can never disagree on features; text.onnx takes token ids and mask.
Both end in an L2 normalisation and have dynamic batch and length axes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainer.models import ClapModel

log = logging.getLogger(__name__)

TRACE_OPSET = 17
DYNAMO_OPSET = 18  # torch.export's exporter starts at 18
# The least text truncation a bundle gets (bundle_max_tokens), whatever
# length the model trained on: a whole LP-MusicCaps caption fits.
BUNDLE_MAX_TOKENS = 128


class ExportError(Exception):
    """An export that must not ship (parity below threshold, bad inputs)."""


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
    """The TorchScript-tracing exporter: several times faster than
    torch.export on these towers, which keeps export tests fast."""
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
