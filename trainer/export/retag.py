"""Re-export a bundle whose audio graph emits one tagger's tags with both taggers'.

A musicnn MTT+MSD audio tower computes both nets' tag probabilities in every
forward pass (the projection reads them), but bundles exported before the
backbone emitted both carry only the MTT net's as the `tags` output. The
MSD net's sigmoid is still in the graph, so its window-averaged
probabilities can be appended to `tags` without retraining or touching the
embedding: the new graph's embedding and first tags are the old graph's,
bit for bit (checked here), and the MSD tags are checked against the
PyTorch musicnn port.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from beetsplug.clap.model import Bundle, session_options
from trainer.export.graphs import ExportError
from trainer.export.stage import publish, seal

# Tolerance of the appended tags against the PyTorch port, as a mean over
# windows and tags: the graph's backbone is int8 while the port is float32,
# so single probabilities near a logit's steep part can move by a tenth or
# more, but on average a tag must stay within a hundredth of the
# probability scale (the MTT tags the bundle already carries do so too).
MAX_MEAN_TAG_DIFF = 0.01
_COPIED = ("text.onnx", "tokenizer.json")


def _producers(graph: Any) -> dict[str, Any]:
    return {out: node for node in graph.node for out in node.output}


def _net_of(node: Any, producers: dict[str, Any], depth: int = 4) -> str | None:
    """The musicnn net a node belongs to, read off the node names upstream."""
    for name in ("MTT_musicnn", "MSD_musicnn"):
        if name in node.name:
            return name
    if depth == 0:
        return None
    for inp in node.input:
        if inp in producers:
            found = _net_of(producers[inp], producers, depth - 1)
            if found:
                return found
    return None


def _through_identities(name: str, producers: dict[str, Any]) -> Any:
    """The node that produces `name`, looking through one-input Concats
    (what concatenating a single tagger's tags exports as)."""
    node = producers.get(name)
    while node is not None and node.op_type == "Concat" and len(node.input) == 1:
        node = producers.get(node.input[0])
    return node


def append_msd_tags(model: Any) -> Any:
    """The ONNX model with the MSD net's window-averaged tag probabilities
    appended to its `tags` output (after the MTT net's).

    The MTT tags reach `tags` as Sigmoid -> Reshape [B, windows, T] ->
    ReduceMean over windows -> Concat; the same Reshape and ReduceMean are
    added for the MSD Sigmoid, and its mean becomes the Concat's next input.
    """
    import onnx

    graph = model.graph
    producers = _producers(graph)
    if "tags" not in [o.name for o in graph.output]:
        raise ExportError("the audio graph has no tags output to extend")
    concat = producers["tags"]
    mean = producers.get(concat.input[0])
    reshape = producers.get(mean.input[0]) if mean is not None else None
    sigmoid = (
        _through_identities(reshape.input[0], producers)
        if reshape is not None
        else None
    )
    if (
        concat.op_type != "Concat"
        or len(concat.input) != 1
        or mean is None
        or mean.op_type != "ReduceMean"
        or reshape is None
        or reshape.op_type != "Reshape"
        or sigmoid is None
        or sigmoid.op_type != "Sigmoid"
        or _net_of(sigmoid, producers) != "MTT_musicnn"
    ):
        raise ExportError(
            "the audio graph's tags are not one MTT tagger's window mean: "
            "nothing to append to"
        )
    others = [
        n
        for n in graph.node
        if n.op_type == "Sigmoid"
        and n is not sigmoid
        and _net_of(n, producers) == "MSD_musicnn"
    ]
    if len(others) != 1:
        raise ExportError(
            f"expected one MSD_musicnn sigmoid in the audio graph, found {len(others)}"
        )
    msd = others[0].output[0]
    new_reshape = onnx.helper.make_node(
        "Reshape",
        [msd, *reshape.input[1:]],
        ["msd_tags_windows"],
        name="msd_tags_reshape",
    )
    new_reshape.attribute.extend(reshape.attribute)
    new_mean = onnx.helper.make_node(
        "ReduceMean",
        ["msd_tags_windows", *mean.input[1:]],
        ["msd_tags_mean"],
        name="msd_tags_mean",
    )
    new_mean.attribute.extend(mean.attribute)
    # Topological order: the new nodes go right before the Concat.
    position = list(graph.node).index(concat)
    graph.node.insert(position, new_mean)
    graph.node.insert(position, new_reshape)
    concat.input.append("msd_tags_mean")
    onnx.checker.check_model(model)
    return model


def _run(path: Path, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(path), session_options(1), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    embedding, tags = session.run(None, {name: windows.astype(np.float32)})
    return embedding, tags


def _msd_reference(windows: np.ndarray) -> np.ndarray:
    """The MSD tagger's probabilities per window from the PyTorch port."""
    import torch

    from trainer.models.backbones import MusicnnBackbone
    from trainer.models.frontend import LogMelFrontend

    net = MusicnnBackbone("MSD_musicnn", features="tags", emit_tags=True).eval()
    with torch.no_grad():
        out = net(LogMelFrontend()(torch.from_numpy(windows)))
    return out["tags"].numpy()


def retag_bundle(
    bundle_dir: Path | str,
    out_dir: Path | str,
    *,
    version: str,
    windows: np.ndarray,
) -> dict[str, Any]:
    """Write `out_dir`: the bundle with both taggers' tags, its manifest's
    tags, tag meanings, version, hashes and parity updated. `windows` are
    single-window waveforms [N, samples] at the bundle's rate for the checks.
    Returns the parity entry written into the manifest."""
    import onnx

    from trainer.export.bundle import tag_meanings_section
    from trainer.models.musicnn import LABELS

    source = Bundle.load(
        Path(bundle_dir), threads=1, folder_hint="--bundle must name a bundle folder"
    )
    manifest = json.loads((source.path / "manifest.json").read_text())
    tags = list(manifest["audio"].get("tags", []))
    if tags != list(LABELS["MTT_musicnn"]):
        raise ExportError(
            f"{source.path}: its tags are not the MTT tagger's 50: nothing to append"
        )
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="retag-") as tmp:
        stage = Path(tmp)
        audio = stage / "audio.onnx"
        onnx.save(append_msd_tags(onnx.load(source.path / "audio.onnx")), audio)
        old_emb, old_tags = _run(source.path / "audio.onnx", windows)
        emb, new_tags = _run(audio, windows)
        same = np.array_equal(emb, old_emb) and np.array_equal(
            new_tags[:, :50], old_tags
        )
        if not same:
            raise ExportError("the re-tagged graph changed the embedding or MTT tags")
        diff = np.abs(new_tags[:, 50:] - _msd_reference(windows))
        if diff.mean() > MAX_MEAN_TAG_DIFF:
            raise ExportError(
                "the appended MSD tags differ from the PyTorch port by "
                f"{diff.mean():.4f} on average"
            )
        for name in _COPIED:
            shutil.copyfile(source.path / name, stage / name)
        names = tags + [f"msd:{label}" for label in LABELS["MSD_musicnn"]]
        manifest["version"] = version
        manifest["audio"]["tags"] = names
        manifest["audio"]["tag_meanings"] = tag_meanings_section(names)
        parity = {
            "msd_tags_mean_abs_diff": round(float(diff.mean()), 6),
            "msd_tags_max_abs_diff": round(float(diff.max()), 6),
            "reference": "PyTorch musicnn port, float32",
            "windows": len(windows),
        }
        manifest["parity"]["audio"]["msd_tags"] = parity
        seal(stage, manifest)  # the plugin's own validation
        publish(stage, out_dir)
    return parity
