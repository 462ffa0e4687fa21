"""Rewrite an older bundle's int8 weights as uint8: the same model, exact on any CPU.

Bundles exported before the quantizers stored their weights as uint8
(clap-default 0.5.1 and older, and anything exported with them) compute
other vectors on CPUs without VNNI than on CPUs with it
(quantize.uint8_weights says why). This writes a copy whose graphs hold
the same integers as uint8, with its version and file hashes updated.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from beetsplug.clap.model import Bundle
from trainer.export.graphs import ExportError
from trainer.export.quantize import uint8_weights
from trainer.export.stage import publish, seal


def int8_initializers(path: Path) -> int:
    """How many int8 initializers the graph at `path` holds."""
    import onnx

    graph = onnx.load(str(path)).graph
    return sum(i.data_type == onnx.TensorProto.INT8 for i in graph.initializer)


def uint8_bundle(
    bundle_dir: Path | str, out_dir: Path | str, *, version: str
) -> dict[str, int]:
    """Write `out_dir`: the bundle with its graphs' int8 weights stored as
    uint8, its version and file hashes updated. Returns, per graph, how
    many int8 initializers it held; refuses a bundle that holds none, or one
    with a weight int8 stays in (an int8 initializer the rewrite does not
    know as a weight)."""
    source = Bundle.load(  # the plugin's validation
        Path(bundle_dir), threads=1, folder_hint="--bundle must name a bundle folder"
    )
    manifest = json.loads((source.path / "manifest.json").read_text())
    graphs = [manifest["audio"]["file"], manifest["text"]["file"]]
    out_dir = Path(out_dir)
    if out_dir.resolve() == source.path.resolve():
        raise ExportError(f"{out_dir}: write the rewritten bundle to another folder")
    with tempfile.TemporaryDirectory(prefix="uint8-") as tmp:
        stage = Path(tmp)
        for name in manifest["files"]:
            shutil.copyfile(source.path / name, stage / name)
        before = {name: int8_initializers(stage / name) for name in graphs}
        if not any(before.values()):
            raise ExportError(
                f"{source.path}: its graphs hold no int8 weights: nothing to rewrite"
            )
        for name in graphs:
            uint8_weights(stage / name)
            if left := int8_initializers(stage / name):
                raise ExportError(
                    f"{source.path}: {left} int8 initializers of {name} are not "
                    "weights of MatMulInteger or DequantizeLinear"
                )
        manifest["version"] = version
        seal(stage, manifest)
        publish(stage, out_dir)
    return before
