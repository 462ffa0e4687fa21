"""A staged bundle folder: its manifest sealed and checked, then published."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from beetsplug.clap.model import Bundle, BundleError, sha256_file
from trainer.export.graphs import ExportError

# What a bundle folder holds, the manifest last: copied in this order, a
# half-copied folder has no manifest and never validates.
BUNDLE_FILES = ("audio.onnx", "text.onnx", "tokenizer.json", "manifest.json")


def seal(stage: Path, manifest: dict[str, Any]) -> None:
    """Hash and size every file the manifest lists as they are in `stage`,
    write the manifest there, and load the folder as the plugin would: an
    ExportError with the plugin's reason if it would refuse it."""
    for name in manifest["files"]:
        manifest["files"][name] = sha256_file(stage / name)
        manifest["sizes"][name] = (stage / name).stat().st_size
    (stage / "manifest.json").write_text(
        json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
    )
    try:
        Bundle.load(stage, threads=1)
    except BundleError as exc:
        # The stage is a temporary folder the user never sees: say what is
        # wrong, not where.
        reason = str(exc).removeprefix(f"model bundle {stage}: ")
        raise ExportError(f"the plugin would refuse this bundle: {reason}") from None


def publish(stage: Path, out_dir: Path) -> None:
    """Copy a checked bundle into `out_dir`, the manifest last."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)
    for file in BUNDLE_FILES:
        shutil.copyfile(stage / file, out_dir / file)
