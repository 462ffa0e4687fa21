"""The model bundle: parity of the exported graphs with torch, the manifest,
and the folder the plugin loads (design.md, Model bundle).

Parity (cosine of torch vs ONNX fp32 vs ONNX int8) is measured on the
calibration inputs with the plugin's own tokenization and session options,
written into the manifest, and the export fails if it is too low: only a
bundle that passed replaces what is in the output folder.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beetsplug.clap.meanings import read_tag_meanings
from beetsplug.clap.model import l2_normalize, session_options
from beetsplug.clap.model import tokenize as bundle_tokenize
from trainer.config import Config
from trainer.export.graphs import (
    ExportError,
    bundle_max_tokens,
    export_audio_onnx,
    export_text_onnx,
)
from trainer.export.quantize import (
    TEXT_QUANTIZATION,
    as_windows,
    calibration_from_data,
    quantize_audio,
    quantize_text,
    synthetic_calibration_audio,
)
from trainer.export.stage import publish, seal
from trainer.models import ClapModel, find_checkpoint, load_checkpoint
from trainer.models.text import save_bundle_tokenizer

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_GRAPHS = ("audio.onnx", "text.onnx", "tokenizer.json")
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


@dataclass
class ParityThresholds:
    """Minimum cosine to torch; ONNX fp32 should be exact, int8 close."""

    audio_fp32: float = 0.999
    text_fp32: float = 0.999
    audio_int8: float = 0.98
    # One-word queries are dynamic int8's worst case (few tokens to average
    # its rounding over); the bound leaves room for them (docs/benchmarks.md).
    text_int8: float = 0.96


# --------------------------------------------------------------------------- parity


def _session(path: Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(
        str(path), sess_options=session_options(1), providers=["CPUExecutionProvider"]
    )


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (l2_normalize(a) * l2_normalize(b)).sum(axis=1)


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
    """Token ids exactly as the plugin makes them from the bundle's file."""
    from tokenizers import Tokenizer

    return bundle_tokenize(Tokenizer.from_file(str(tokenizer_path)), texts, max_tokens)


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


def _torch_reference(
    model: ClapModel, windows: np.ndarray, feed: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The float torch model's audio embeddings, tags and text embeddings."""
    emb_rows, tag_rows = [], []
    with torch.no_grad():
        for i in range(0, len(windows), 16):
            emb, tags = model.encode_audio_with_tags(
                torch.from_numpy(windows[i : i + 16])
            )
            emb_rows.append(emb.numpy())
            if tags is not None:
                tag_rows.append(tags.numpy())
        text = model.encode_text(
            torch.from_numpy(feed["input_ids"]),
            torch.from_numpy(feed["attention_mask"]),
        ).numpy()
    return (
        np.concatenate(emb_rows),
        np.concatenate(tag_rows) if tag_rows else None,
        text,
    )


def measure_parity(
    model: ClapModel,
    audio_graphs: dict[str, Path],
    text_graphs: dict[str, Path],
    windows: np.ndarray,
    feed: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Cosine of each graph variant's embeddings to torch's (min and mean),
    and the largest tag-probability difference where the audio has tags."""
    torch_audio, torch_tags, torch_text = _torch_reference(model, windows, feed)
    parity: dict[str, Any] = {"audio": {}, "text": {}}
    for variant, path in audio_graphs.items():
        emb, tags = _run_audio(path, windows)
        entry = _stats(_cosines(torch_audio, emb))
        if torch_tags is not None and tags is not None:
            entry["tags_max_abs_diff"] = round(
                float(np.abs(tags - torch_tags).max()), 6
            )
        parity["audio"][variant] = entry
    for variant, path in text_graphs.items():
        parity["text"][variant] = _stats(_cosines(torch_text, _run_text(path, feed)))
    return parity


def check_parity(parity: dict[str, Any], thresholds: ParityThresholds) -> None:
    """Raise ExportError if a measured variant's minimum cosine is too low."""
    for variant, label in (("onnx_fp32", "fp32"), ("onnx_int8", "int8")):
        for tower in ("audio", "text"):
            if variant in parity[tower]:
                value = parity[tower][variant]["min"]
                minimum = getattr(thresholds, f"{tower}_{label}")
                if not (value >= minimum):  # also catches NaN
                    raise ExportError(
                        f"export parity: {tower} ONNX {label} cosine {value:.4f} "
                        f"< required {minimum}"
                    )


# --------------------------------------------------------------------------- bundle


def _eval_records(run_dir: Path) -> list[dict[str, Any]]:
    """The evaluation records of RUN/metrics.jsonl, in the order logged.

    An evaluation line is one whose `kind`/`type`/`phase`/`split` says eval or
    valid(ation), or whose keys start with `eval`/`valid`.
    """
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
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
        marked = marks & {"eval", "evaluate", "evaluation", "valid", "validation"}
        if marked or any(str(k).startswith(("eval", "valid")) for k in record):
            records.append(record)
    return records


def _record_step(record: dict[str, Any]) -> int | None:
    step = record.get("step")
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def last_eval_metrics(run_dir: Path, step: int | None = None) -> dict[str, Any]:
    """The last evaluation record of RUN/metrics.jsonl (numbers only), or {}.

    With `step`, the last one logged at or before it: a checkpoint's weights
    are described by their own validation, never by a later one's (which
    measured other weights). Records without a step cannot be placed and
    count only when `step` is None.
    """
    last: dict[str, Any] = {}
    for record in _eval_records(run_dir):
        at = _record_step(record)
        if step is None or (at is not None and at <= step):
            last = record
    return {
        k: v
        for k, v in last.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def metrics_source(metrics: dict[str, Any], step: int) -> str:
    """manifest.training.metrics_source: which validation `metrics` are, so a
    reader of the manifest never takes a borrowed or missing figure for the
    exported step's."""
    at = _record_step(metrics)
    if not metrics or at is None:
        return f"none: the run logged no validation at or before step {step}"
    if at == step:
        return f"validation at step {at}"
    return f"validation at step {at}, the last one before step {step}"


def default_bundle_name(config_name: str, *, untrained: bool = False) -> str:
    """clap-<config name>, as the shipped bundles are named: a config's own
    `clap` prefix is not doubled and underscores become hyphens, so
    clap_default exports as clap-default, msd_negation as clap-msd-negation;
    -untrained marks a config's model as built."""
    stem = re.sub(r"^clap[-_]", "", config_name).replace("_", "-")
    return f"clap-{stem}" + ("-untrained" if untrained else "")


def check_options(
    *, name: str | None = None, version: str | None = None, max_windows: int = 8
) -> None:
    """Refuse, before any work, the options that would make a bundle the
    plugin refuses or cannot name (`name`/`version` None: not given yet)."""
    if not (
        isinstance(max_windows, int)
        and not isinstance(max_windows, bool)
        and max_windows > 0
    ):
        raise ExportError(
            f"max_windows must be a positive integer, not {max_windows!r}"
        )
    for what, value in (("name", name), ("version", version)):
        if value is not None and not str(value).strip():
            raise ExportError(f"the bundle {what} must not be empty")
        # They name files (evaluate's reports): no folders hidden in them.
        if value is not None and (
            any(sep in str(value) for sep in ("/", "\\")) or str(value) in (".", "..")
        ):
            raise ExportError(
                f"the bundle {what} must not hold a path separator, not {value!r}"
            )


def export_model_bundle(
    model: ClapModel,
    cfg: Config,
    out_dir: Path | str,
    *,
    name: str | None = None,
    version: str,
    calibration_audio: np.ndarray | None = None,
    calibration_texts: Sequence[str] | None = None,
    calibration_data: Path | str | None = None,
    max_windows: int = 8,
    max_tokens: int | None = None,
    quantize: bool = True,
    thresholds: ParityThresholds | None = None,
    training: dict[str, Any] | None = None,
    probe_info: dict[str, Any] | None = None,
) -> Path:
    """Write the bundle of an in-memory model; see `export_bundle`."""
    name = default_bundle_name(cfg.name) if name is None else name
    check_options(name=name, version=version, max_windows=max_windows)
    thresholds = thresholds or ParityThresholds()
    model = model.to("cpu").float().eval()
    max_tokens = bundle_max_tokens(model, max_tokens)
    audio_cfg = model.config.audio
    if calibration_data is not None:
        if calibration_audio is not None:
            raise ExportError("give calibration audio or a data directory, not both")
        # Windows cut at the model's own rate and length: the audio graph
        # takes nothing else.
        calibration_audio, data_texts = calibration_from_data(
            calibration_data,
            sample_rate=audio_cfg.sample_rate,
            window_seconds=audio_cfg.window_seconds,
        )
        calibration_texts = calibration_texts or data_texts
    calibration_kind = "given"
    if calibration_audio is None:
        calibration_kind = "synthetic"
        calibration_audio = synthetic_calibration_audio(
            audio_cfg.sample_rate, audio_cfg.window_seconds
        )
    windows = as_windows(calibration_audio, model.audio.window_samples)
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
        audio_graphs = {"onnx_fp32": export_audio_onnx(model, work / "audio.fp32.onnx")}
        text_graphs = {
            "onnx_fp32": export_text_onnx(model, work / "text.fp32.onnx", max_tokens)
        }
        tokenizer = save_bundle_tokenizer(cfg.model.text, stage / "tokenizer.json")
        feed = _bundle_tokens(tokenizer, texts, max_tokens)
        _check_tokenizer(cfg, feed, texts, max_tokens)
        if quantize:
            audio_graphs["onnx_int8"] = quantize_audio(
                audio_graphs["onnx_fp32"],
                work / "audio.int8.onnx",
                windows,
                work,
                keep_float,
            )
            text_graphs["onnx_int8"] = quantize_text(
                text_graphs["onnx_fp32"], work / "text.int8.onnx", work
            )
        parity = measure_parity(model, audio_graphs, text_graphs, windows, feed)
        check_parity(parity, thresholds)
        shipped = "onnx_int8" if quantize else "onnx_fp32"
        shutil.copyfile(audio_graphs[shipped], stage / "audio.onnx")
        shutil.copyfile(text_graphs[shipped], stage / "text.onnx")
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
                    "audio.onnx": audio_graphs["onnx_fp32"].stat().st_size,
                    "text.onnx": text_graphs["onnx_fp32"].stat().st_size,
                },
            }
        )
        manifest = {
            "format": FORMAT_VERSION,
            "name": name,
            "version": version,
            "embedding_dim": model.embedding_dim,
            # Filled in by seal, from the files as they are in the stage.
            "files": dict.fromkeys(_GRAPHS, ""),
            "sizes": dict.fromkeys(_GRAPHS, 0),
            "audio": _audio_section(
                model, max_windows, keep_float if quantize else None, probe_info
            ),
            "text": {
                "file": "text.onnx",
                "tokenizer": "tokenizer.json",
                "max_tokens": max_tokens,
                "quantization": TEXT_QUANTIZATION if quantize else "none",
            },
            "training": training or {},
            "parity": parity,
        }
        seal(stage, manifest)  # the plugin's own validation, before publishing
        publish(stage, out_dir)
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


def tag_meanings_section(tag_names: Sequence[str]) -> list[dict[str, Any]]:
    """manifest.audio.tag_meanings: each tag's lexicon concept (None when
    its label names nothing the lexicon knows) and the concepts it says are
    absent, fixed here so that a bundle's tags mean what they meant when it
    was made, whatever a later lexicon reads into their names."""
    return [
        {"concept": meaning.concept, "absent": list(meaning.absent)}
        for meaning in read_tag_meanings(tag_names)
    ]


def _audio_section(
    model: ClapModel,
    max_windows: int,
    keep_float: tuple[str, ...] | None,
    probe_info: dict[str, Any] | None,
) -> dict[str, Any]:
    """manifest.audio; `keep_float` None means the graph is not quantized."""
    audio_cfg = model.config.audio
    section: dict[str, Any] = {
        "file": "audio.onnx",
        "sample_rate": audio_cfg.sample_rate,
        "window_seconds": audio_cfg.window_seconds,
        "max_windows": max_windows,
        "quantization": (
            "static int8 QDQ, per-channel weights; float: log-mel front end"
            + "".join(f", {f}" for f in keep_float)
            if keep_float is not None
            else "none"
        ),
    }
    if model.tag_names:
        section["tags"] = list(model.tag_names)
        section["tag_meanings"] = tag_meanings_section(model.tag_names)
    if model.audio.probes is not None:
        section["probes"] = {
            "attributes": list(model.audio.probes.names),
            "method": "logistic regression on the window-averaged backbone "
            "features (trainer.probes), for the attributes no backbone tag "
            "names",
            **(probe_info or {}),
        }
    return section


def export_bundle(
    run_dir_or_checkpoint: Path | str,
    out_dir: Path | str,
    *,
    probe_data: Path | str | None = None,
    probe_c: float = 0.1,
    probe_min_clips: int = 10,
    **options: Any,
) -> Path:
    """Export a training run (or one checkpoint) as a model bundle folder.

    The checkpoint's own config (a checkpoint rebuilds its model alone) sets
    the architecture, the calibration windows and the default name, whether
    the run folder or one of its step files is given; a run-folder
    config.yaml is not read. The manifest's metrics are the validation
    logged at the checkpoint's step, or the last one before it
    (`last_eval_metrics`), and `training.metrics_source` says which.

    options: export_model_bundle's keywords — version (required),
      name (default: `default_bundle_name` of the config),
      calibration_audio: [N, window] float32 windows at the model's sample
      rate (or 1-D audio, cut into windows) — real music, ideally from the
      validation split (`calibration_from_data`); or calibration_data, a
      data directory whose valid split gives them at the model's rate and
      window; neither falls back to synthetic signals and says so in
      manifest.parity.calibration; calibration_texts, max_windows,
      max_tokens, quantize, thresholds.
    probe_data: a data directory whose training split fits attribute probes
      for what the backbone's tagger does not name (trainer.probes), each
      from at least `probe_min_clips` clips with and without it; they join
      the `tags` output.
    Raises ExportError if an option is invalid, if ONNX parity is below
    `thresholds` or if the plugin would refuse the bundle; nothing is
    written to out_dir then.
    """
    check_options(
        name=options.get("name"),
        version=options.get("version"),
        max_windows=options.get("max_windows", 8),
    )
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
    step = int(ckpt.get("step", 0))
    metrics = last_eval_metrics(run_dir, step)
    training = {
        "data": ", ".join(
            # Older checkpoints: data_dirs as --data spelt them, and the
            # resolved folders beside them.
            ckpt.get("data_dirs_resolved")
            or ckpt.get("data_dirs")
            or [str(ckpt.get("data", ckpt.get("data_dir", "")))]
        ),
        "recipe": cfg.name,
        "checkpoint": checkpoint.resolve().name,
        "step": step,
        "metrics": metrics,
        "metrics_source": metrics_source(metrics, step),
        "config": cfg.to_dict(),
    }
    return export_model_bundle(
        model, cfg, out_dir, training=training, probe_info=probe_info, **options
    )


def export_untrained(cfg: Config, out_dir: Path | str, **options: Any) -> Path:
    """Export `cfg`'s model as built, untrained (the random-weights baseline of
    the benchmark; pretrained parts keep their weights), seeded by the config.

    `options` are export_model_bundle's (version among them; the name
    defaults to `default_bundle_name(cfg.name, untrained=True)`).
    """
    from trainer.models import build_model

    if options.get("name") is None:
        options["name"] = default_bundle_name(cfg.name, untrained=True)
    check_options(
        name=options["name"],
        version=options.get("version"),
        max_windows=options.get("max_windows", 8),
    )
    torch.manual_seed(cfg.train.seed)
    training = {
        "data": "",
        "recipe": f"{cfg.name}, untrained heads (random-weights baseline)",
        "step": 0,
        "metrics": {},
        "metrics_source": "none: untrained",
        "config": cfg.to_dict(),
    }
    return export_model_bundle(
        build_model(cfg.model), cfg, out_dir, training=training, **options
    )
