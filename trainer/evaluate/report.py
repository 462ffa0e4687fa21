"""One benchmark run: a bundle and its baselines on each split, as JSON and a PNG.

Every metric of a bundle on a split comes from `evaluate_split`; `run`
writes the result to OUT/<name>-<version>-<identity>-<data folder>.json
(and .png; `_report_stem`) and returns it; the command line prints it as
its last line (`to_json`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trainer.evaluate.clips import (
    Clip,
    EvaluateError,
    TextEmbedder,
    embed_clips,
    has_split,
    load_split,
)
from trainer.evaluate.metrics import TOP_K
from trainer.evaluate.plot import plot
from trainer.evaluate.protocols import (
    caption_retrieval,
    conjunctive_retrieval,
    negated_retrieval,
    negation_protocols,
    pair_accuracy,
)
from trainer.splits import CAPTION_COLUMNS, CAPTIONS_DIR

FORMAT = 1


def evaluate_split(
    bundle,
    clips: list[Clip],
    cache_dir: Path | None,
    weight: float,
    caption_column: str,
    min_relevant: int = TOP_K,
    log: Callable[[str], None] | None = None,
    tag_weight: float = 0.0,
    affirmed_tag_weight: float = 0.0,
    speech_weight: float = 0.0,
    split: str = "split",
) -> dict:
    """Every metric of one bundle on one split; EvaluateError if none of
    the split's clips could be read (its metrics would all be empty)."""
    audio, tags, skipped = embed_clips(bundle, clips, cache_dir, log)
    keep = [i for i, c in enumerate(clips) if c.track_id not in skipped]
    if not keep:
        first = clips[0]
        raise EvaluateError(
            f"split {split}: none of its {len(clips)} clips could be read "
            f"({first.audio}: {skipped[first.track_id]})"
        )
    if log:
        unread = f"; {len(skipped)} unreadable, skipped" if skipped else ""
        log(
            f"evaluate: {bundle.name} on {split}: "
            f"{len(keep)} of {len(clips)} clips scored{unread}"
        )
    clips = [clips[i] for i in keep]
    audio = audio[keep]
    tags = tags[keep] if tags is not None else None
    embed = TextEmbedder(bundle)
    main = caption_retrieval(audio, clips, embed, caption_column)
    by_column = {}
    for column in CAPTION_COLUMNS:
        res = (
            main
            if column == caption_column
            else caption_retrieval(audio, clips, embed, column)
        )
        if res:
            by_column[column] = {
                "text_to_music_R@10": res["text_to_music"]["R@10"],
                "music_to_text_R@10": res["music_to_text"]["R@10"],
            }
    negation = negation_protocols(audio, clips, embed)
    # What both protocols of descriptions ranked as the plugin ranks them read.
    ranked = (
        audio,
        clips,
        embed,
        weight,
        min_relevant,
        tags,
        bundle.tag_names if tags is not None else (),
        tag_weight,
        affirmed_tag_weight,
        speech_weight,
    )
    return {
        "clips": len(clips),
        "skipped": skipped,
        "caption_column": caption_column,
        "text_to_music": main.get("text_to_music"),
        "music_to_text": main.get("music_to_text"),
        "by_caption_column": by_column,
        "negation": {k: v for k, v in negation.items() if k != "curves"},
        "minimal_pairs": pair_accuracy(audio, clips, embed),
        "negated_retrieval": negated_retrieval(*ranked),
        "conjunctions": conjunctive_retrieval(*ranked),
        "curves": {
            "text_to_music": main.get("curve", []),
            **{f"negation_{k}": v for k, v in negation.get("curves", {}).items()},
        },
    }


def _load_bundle(path: Path, threads: int | None, option: str):
    """The bundle an `option` (--bundle, --baseline NAME) names; a refusal
    starts with the option."""
    from beetsplug.clap.model import Bundle, BundleError

    try:
        return Bundle.load(path, threads=threads, folder_hint="give a bundle folder")
    except BundleError as exc:
        run = path.parent.parent if path.suffix == ".pt" else path
        hint = (
            f" ({run} is a training run: export it first, python -m trainer "
            f"export --run-dir {run} --out BUNDLE)"
            if (run / "checkpoints").is_dir()
            else ""
        )
        raise EvaluateError(f"{option}: {exc}{hint}") from None


def _bundle_info(bundle) -> dict:
    return {
        "name": bundle.name,
        "version": bundle.version,
        "identity": bundle.identity,
        "path": str(bundle.path),
        "embedding_dim": bundle.embedding_dim,
    }


def _weight_arg(flag: str, value: float | None, default: float) -> float:
    """A ranking weight from the command line (the plugin's default if not
    given), in the range the plugin's config accepts."""
    value = default if value is None else value
    if not 0 <= value <= 10:  # NaN too: it compares false
        raise EvaluateError(f"{flag} must be a number in 0..10")
    return value


def run(args: argparse.Namespace, log: Callable[[str], None] | None = None) -> dict:
    """Evaluate the bundle (and baselines), write JSON + PNG; return the JSON."""
    from beetsplug.clap.search import (
        DEFAULT_AFFIRMED_TAG_WEIGHT,
        DEFAULT_SPEECH_WEIGHT,
        DEFAULT_TAG_WEIGHT,
        resolve_negation_weight,
    )

    started = time.perf_counter()
    data = args.data
    if not (data / CAPTIONS_DIR).is_dir():
        raise EvaluateError(f"{data} is not a data directory (no captions/ folder)")
    # A split named twice is evaluated once.
    splits = list(dict.fromkeys(args.splits or [])) or ["test"] + (
        ["test_shift"] if has_split(data, "test_shift") else []
    )
    baselines = []
    for spec in args.baseline:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise EvaluateError(f"--baseline {spec!r}: expected NAME=DIR")
        if name == "model" or name in [b[0] for b in baselines]:
            raise EvaluateError(f"--baseline {spec!r}: the name {name!r} is taken")
        baselines.append((name, Path(path)))
    if args.max_clips is not None and args.max_clips < 1:
        raise EvaluateError("--max-clips must be at least 1")
    clips = {s: load_split(data, s, args.max_clips) for s in splits}
    for s, c in clips.items():
        if not c:
            raise EvaluateError(f"split {s} of {data} has no clips")
    bundle = _load_bundle(args.bundle, args.threads, "--bundle")
    # Every bundle is checked before the first is evaluated: a bad baseline
    # should not cost the minutes the model's evaluation takes.
    baseline_bundles = {
        name: _load_bundle(path, args.threads, f"--baseline {name}")
        for name, path in baselines
    }
    if args.negation_weight is not None:  # None: the bundle's calibrated one
        _weight_arg("--negation-weight", args.negation_weight, 0.0)
    weight = resolve_negation_weight(args.negation_weight, bundle)
    tag_weight = _weight_arg("--tag-weight", args.tag_weight, DEFAULT_TAG_WEIGHT)
    affirmed_tag_weight = _weight_arg(
        "--affirmed-tag-weight", args.affirmed_tag_weight, DEFAULT_AFFIRMED_TAG_WEIGHT
    )
    speech_weight = _weight_arg(
        "--speech-weight", args.speech_weight, DEFAULT_SPEECH_WEIGHT
    )
    # Made once every option is known good: a refused one leaves no folder.
    out = args.out or args.bundle.resolve().parent / "eval"
    if out.exists() and not out.is_dir():
        where = "--out " if args.out else "eval/ beside the bundle, "
        raise EvaluateError(f"{where}{out} is a file, not a folder")
    stem = _report_stem(bundle, data, None if args.splits is None else splits)
    json_path, png_path = out / f"{stem}.json", out / f"{stem}.png"
    _check_replaceable(json_path, data)
    out.mkdir(parents=True, exist_ok=True)

    def evaluate_bundle(b) -> dict:
        results = {}
        for s in splits:
            results[s] = evaluate_split(
                b,
                clips[s],
                out / "cache",
                weight,
                args.caption_column,
                args.min_relevant,
                log,
                tag_weight,
                affirmed_tag_weight,
                speech_weight,
                split=s,
            )
        return {**_bundle_info(b), "results": results}

    result = {
        "benchmark": "beets-clap retrieval and negation benchmark",
        "format": FORMAT,
        "data": str(data),
        "data_resolved": str(data.resolve()),
        "splits": splits,
        "caption_column": args.caption_column,
        "negation_weight": weight,
        "tag_weight": tag_weight,
        "affirmed_tag_weight": affirmed_tag_weight,
        "speech_weight": speech_weight,
        "max_clips": args.max_clips,
        "model": evaluate_bundle(bundle),
        "baselines": {name: evaluate_bundle(b) for name, b in baseline_bundles.items()},
    }
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["outputs"] = {"json": str(json_path), "png": str(png_path)}
    json_path.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    plot(result, png_path)
    if log:
        log(f"evaluate: wrote {json_path} and {png_path.name}")
    return result


def _report_stem(bundle, data: Path, splits: list[str] | None = None) -> str:
    """The report's file name: the bundle's name, version and identity
    (sha256 of its manifest, 12 digits), the data folder's name and the
    splits when --split chose them (the default splits add nothing).

    Runs are compared by evaluating bundles that often share a name (two
    exports of one config are both clap-<config>): the identity keeps each
    bundle's report, and the splits keep a valid-split report beside the
    test one; a re-run of the same bundle on the same splits replaces its
    own.
    """
    identity = bundle.identity[:12]
    stem = f"{bundle.name}-{bundle.version}-{identity}-{data.resolve().name}"
    return stem if not splits else f"{stem}-{'+'.join(splits)}"


def _check_replaceable(report: Path, data: Path) -> None:
    """Refuse to replace a report on another data folder of the same name
    (`_report_stem` names only its last part); a re-run on the same folder
    replaces its own report, as does one over a file that holds no report."""
    try:
        earlier = json.loads(report.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(earlier, dict) or "data" not in earlier:
        return
    # Reports from before `data_resolved` hold `data` as it was given.
    made_from = Path(earlier.get("data_resolved") or earlier["data"]).resolve()
    if made_from != data.resolve():
        raise EvaluateError(
            f"{report} holds a report on {made_from}; choose another --out"
        )


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(result: dict) -> str:
    """The result as one line of JSON (numpy scalars as numbers)."""
    return json.dumps(result, default=_json_default)
