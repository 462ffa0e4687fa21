"""Start a run from an exported bundle's weights instead of the pretrained parts alone.

Only int8 bundles are kept (models/ in the repo, the wheel); the float
checkpoints they came from are not. This reads a bundle's ONNX graphs back
into a ClapModel's *trainable* parameters, dequantized, so a fine-tune can
begin where the shipped model stands (`train.init_from`). The frozen parts
(musicnn, MiniLM's lower layers and embeddings) keep the float weights the
packages ship, which the bundle holds only as int8 copies.

What stays true: every trainable parameter is found in the bundle with its
shape, or loading fails with one line naming what is missing; nothing is
loaded by position. A trained audio backbone, the bundle's or the config's,
is refused: the export folds it into int8 convolutions that cannot be
unfolded (see `_check_backbones`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.config import pretrained_backbone


class BundleWeightsError(ValueError):
    """A bundle whose graphs do not hold this model's trainable weights."""


def _dequantize(
    q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int
) -> np.ndarray:
    """(q - zero_point) * scale, per channel along `axis` when the scale is a vector."""
    q = q.astype(np.float64)
    zp = zero_point.astype(np.float64)
    sc = scale.astype(np.float64)
    if sc.ndim == 1 and q.ndim > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        sc, zp = sc.reshape(shape), zp.reshape(shape)
    return ((q - zp) * sc).astype(np.float32)


def _module_of_node(node_name: str) -> str:
    """'/tower/encoder/encoder/layer.4/attention/self/query/MatMul_quant' ->
    'tower.encoder.encoder.layer.4.attention.self.query' (the tracer's scope
    path of the Linear whose weight the node reads)."""
    parts = [p for p in node_name.split("/") if p]
    return ".".join(parts[:-1])


def graph_weights(path: Path) -> dict[str, np.ndarray]:
    """Float weights of an exported graph by their torch names, in torch layout.

    Float initializers keep their names. Quantized ones come in three forms
    the export writes: QDQ weights (`W_quantized` + `W_scale` +
    `W_zero_point`, torch layout; the audio graph), their int32 biases
    (`B_quantized` + `B_quantized_scale`), and dynamic-quantized MatMul
    weights ([in, out], transposed from torch's [out, in]) named after the
    parameter (`W_Transposed_quantized`) or anonymously (`onnx::MatMul_N`,
    named here by the node that reads them).
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    readers: dict[str, str] = {}
    for node in graph.node:
        if node.op_type in ("MatMul", "MatMulInteger"):
            for name in node.input:
                readers.setdefault(name, node.name)

    out: dict[str, np.ndarray] = {}
    for name, value in init.items():
        if name.endswith("_quantized_scale") or name.endswith("_quantized_zero_point"):
            continue
        if name.endswith("_quantized"):
            base = name[: -len("_quantized")]
            if base + "_quantized_scale" in init:  # int32 bias: scale per channel
                zp = init.get(base + "_quantized_zero_point", np.zeros(1))
                w = _dequantize(value, init[base + "_quantized_scale"], zp, 0)
                out[base] = w
                continue
            scale, zp = init.get(base + "_scale"), init.get(base + "_zero_point")
            if scale is None or zp is None:
                continue
            if base.startswith("onnx::") and name not in readers:
                # A folded constant (a convolution with its norm): no parameter.
                continue
            transposed = base.endswith("_Transposed") or base.startswith("onnx::")
            # Per-channel scales run along the output axis: torch's 0, ONNX
            # MatMul's last.
            w = _dequantize(value, scale, zp, value.ndim - 1 if transposed else 0)
            if base.endswith("_Transposed"):
                out[base[: -len("_Transposed")]] = w.T.copy()
            elif base.startswith("onnx::"):
                out[_module_of_node(readers[name]) + ".weight"] = w.T.copy()
            else:
                out[base] = w
        elif name.startswith("onnx::") and name in readers and value.ndim == 2:
            # A MatMul kept float: named by its reader, [in, out].
            out[_module_of_node(readers[name]) + ".weight"] = value.T.copy()
        elif not name.startswith(("/", "onnx::")) and value.dtype.kind == "f":
            out[name] = value.astype(np.float32)
    return out


def _check_seed(bundle: Path, manifest: dict[str, Any], seed: int | None) -> None:
    """Refuse a bundle whose frozen audio backbone had no pretrained weights
    when this run draws its backbone from another seed: such a backbone is
    rebuilt from `train.seed`, not read from the bundle, and the bundle's
    heads were trained on the one its seed drew."""
    config = manifest.get("training", {}).get("config", {})
    audio = config.get("model", {}).get("audio", {})
    if (
        seed is None
        or not audio
        or pretrained_backbone(audio.get("backbone", ""), audio.get("pretrained"))
    ):
        return
    theirs = config.get("train", {}).get("seed")
    if theirs is not None and theirs != seed:
        raise BundleWeightsError(
            f"--init-from {bundle}: its frozen audio backbone "
            f"({audio.get('backbone')}, no pretrained weights) was drawn from "
            f"train.seed {theirs} and is rebuilt from the seed, not read from "
            f"the bundle; train with --set train.seed={theirs}, not {seed}"
        )


def _check_backbones(
    bundle: Path, manifest: dict[str, Any], params: dict[str, nn.Parameter]
) -> None:
    """Refuse a bundle or a config with a trained audio backbone.

    The export folds each convolution of the backbone with its batch norm
    into one int8 convolution, W·γ/σ with bias β − μ·γ/σ: the norm's γ, β
    and running statistics cannot be told apart again. An identity norm
    after the folded weights gives the bundle's function in eval mode only;
    training normalises with batch statistics, where the lost γ and β are
    what the backbone learned. Only a frozen backbone, rebuilt from its own
    weights, meets the bundle's.
    """
    recipe = manifest.get("training", {}).get("config", {}).get("model", {})
    # Bundles that do not record their recipe are checked by their weights.
    freeze = recipe.get("audio", {}).get("freeze_backbone", "full")
    if freeze != "full":
        raise BundleWeightsError(
            "--init-from reads bundles whose audio backbone is frozen (the "
            f"pretrained tagger); {bundle}'s backbone was trained "
            f"(model.audio.freeze_backbone: {freeze}), and the export folds it "
            "into int8 convolutions that cannot be read back"
        )
    if any(
        p.requires_grad and n.startswith("audio.backbone.") for n, p in params.items()
    ):
        raise BundleWeightsError(
            f"--init-from {bundle}: this config trains the audio backbone, which "
            "a bundle holds only folded into int8 convolutions that cannot be "
            "read back; set model.audio.freeze_backbone: full, as the bundle's "
            "recipe does"
        )


def load_bundle_weights(
    model: nn.Module,
    bundle: Path | str,
    log: Callable[[str], None] = print,
    seed: int | None = None,
) -> dict[str, float]:
    """Copy a bundle's weights into `model`'s trainable parameters.

    Returns, per tower, the largest absolute change against the weights
    `model` held (for the log). Raises BundleWeightsError when a trainable
    parameter is missing from the bundle or has another shape.
    """
    bundle = Path(bundle)
    manifest_file = bundle / "manifest.json"
    if not manifest_file.is_file():
        raise BundleWeightsError(f"{bundle} is not a model bundle (no manifest.json)")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    towers = {
        "audio": bundle / manifest["audio"]["file"],
        "text": bundle / manifest["text"]["file"],
    }
    params = dict(model.named_parameters())
    _check_backbones(bundle, manifest, params)
    _check_seed(bundle, manifest, seed)
    report: dict[str, float] = {}
    for tower, graph in towers.items():
        weights = graph_weights(graph)
        # Each trainable parameter of this tower and its name in the graph,
        # where the tower was exported as `tower`.
        wanted = {
            n: (p, "tower." + n[len(tower) + 1 :])
            for n, p in params.items()
            if p.requires_grad and n.startswith(tower + ".")
        }
        missing, wrong = [], []
        for name, (param, key) in wanted.items():
            value = weights.get(key)
            if value is None:
                missing.append(name)
            elif tuple(value.shape) != tuple(param.shape):
                wrong.append(f"{name} {tuple(value.shape)} != {tuple(param.shape)}")
        if missing or wrong:
            what = ", ".join((missing + wrong)[:4])
            more = len(missing) + len(wrong) - 4
            raise BundleWeightsError(
                f"{graph} does not match this model config: {what}"
                + (f" and {more} more" if more > 0 else "")
            )
        change = 0.0
        with torch.no_grad():
            for param, key in wanted.values():
                value = torch.from_numpy(weights[key])
                change = max(change, float((param - value).abs().max()))
                param.copy_(value)
        report[tower] = change
        log(
            f"init from {bundle.name} ({manifest.get('version', '?')}): "
            f"{len(wanted)} trainable {tower} tensors loaded"
        )
    return report
