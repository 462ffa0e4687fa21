"""Export a trained ClapModel as the plugin's model bundle (design.md).

graphs: torch -> float32 ONNX towers; quantize: int8 and its calibration
audio; bundle: parity with torch, manifest and the folder the plugin loads;
stage: a staged folder's manifest sealed and the folder published; retag
and rewrite: changed copies of an existing bundle.
"""

from __future__ import annotations

from trainer.export.bundle import (
    DEFAULT_CALIBRATION_TEXTS,
    FORMAT_VERSION,
    ParityThresholds,
    check_options,
    check_parity,
    default_bundle_name,
    export_bundle,
    export_model_bundle,
    export_untrained,
    last_eval_metrics,
    measure_parity,
    metrics_source,
)
from trainer.export.graphs import (
    BUNDLE_MAX_TOKENS,
    ExportError,
    bundle_max_tokens,
    export_audio_onnx,
    export_text_onnx,
)
from trainer.export.quantize import (
    TEXT_FLOAT_NODES,
    TEXT_QUANTIZATION,
    calibration_from_data,
    float_nodes,
    quantize_audio,
    quantize_text,
    synthetic_calibration_audio,
)
from trainer.export.stage import BUNDLE_FILES

__all__ = [
    "BUNDLE_FILES",
    "BUNDLE_MAX_TOKENS",
    "DEFAULT_CALIBRATION_TEXTS",
    "FORMAT_VERSION",
    "TEXT_FLOAT_NODES",
    "TEXT_QUANTIZATION",
    "ExportError",
    "ParityThresholds",
    "bundle_max_tokens",
    "calibration_from_data",
    "check_options",
    "check_parity",
    "default_bundle_name",
    "export_audio_onnx",
    "export_bundle",
    "export_model_bundle",
    "export_text_onnx",
    "export_untrained",
    "float_nodes",
    "last_eval_metrics",
    "measure_parity",
    "metrics_source",
    "quantize_audio",
    "quantize_text",
    "synthetic_calibration_audio",
]
