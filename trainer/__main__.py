"""Command line of the trainer: `python -m trainer {synth,train,evaluate,export,...}`.

Only argument parsing and dispatch live here; each subcommand's work is in its
own module (open_clip keeps its library and its trainer apart the same way).
Errors a user can fix print one line and exit with status 2, a refused
path as `PATH: reason` (missing, read-only, full, no permission ...); Ctrl-C
prints one line (for `train`: what was saved, where a resume continues) and
exits with status 130, and SIGTERM stops `train` and `synth` the same way with
status 143.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from pathlib import Path

EXIT_USAGE = 2
# Subcommands whose modules own their command line (teammates' modules).
DELEGATED = frozenset({"synth"})
# What the `train` extra brings that the plugin's own install does not (the
# import names of pyproject's [train]): a trainer command without them says
# so in one line. The packaged text encoder and musicnn are looked up as
# files, each with its own one-line error.
TRAIN_EXTRA_MODULES = frozenset(
    {
        "torch",
        "transformers",
        "onnx",
        "pyarrow",
        "librosa",
        "matplotlib",
        "pretty_midi",
    }
)
# Exceptions whose message is meant for the user (one line, no traceback).
USER_ERRORS = frozenset(
    {
        "RunError",
        "DataError",
        "AudioDecodeError",  # escapes only when no clip at all can be read
        "ExportError",
        "BundleError",
        "CheckpointError",
        "SynthError",
    }
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer",
        description="Train, evaluate and export the beets-clap audio-text model.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Listed for --help; their own modules parse their options.
    sub.add_parser(
        "synth", help="render the synthetic corpus (exact labels)", add_help=False
    )
    train = sub.add_parser(
        "train",
        help="train a model (one device, or one process per GPU under torchrun)",
        description="Train a model. Under torchrun each process runs this command; "
        "rank 0 writes RUN/.",
    )
    train.add_argument(
        "--config",
        help="a name in trainer/configs/ (tiny, clap_default, msd_negation) or a YAML "
        "file; with --resume leave it out: the run's own config.yaml is used "
        "(one given must hold the same values)",
    )
    train.add_argument(
        "--data",
        required=True,
        type=Path,
        action="append",
        help="data directory; repeat it to train on several together (the "
        "synthetic and the real-recording corpus); the first holds the feature cache",
    )
    train.add_argument("--run-dir", required=True, type=Path, help="run folder")
    train.add_argument(
        "--max-steps", type=int, help="total optimizer steps (sets train.max_steps)"
    )
    train.add_argument(
        "--resume", metavar="latest|CHECKPOINT", help="continue a run from a checkpoint"
    )
    train.add_argument(
        "--init-from",
        metavar="BUNDLE",
        help="start from an exported bundle's trained weights, e.g. "
        "models/clap-default (sets train.init_from; a new run only)",
    )
    train.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: GPU if any)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override config values, e.g. --set train.lr=3e-4 loss.objective=slap",
    )

    _add_evaluate(sub)

    retag = sub.add_parser(
        "retag",
        help="append the MSD tagger's tags to a bundle that emits only MTT's",
        description="Re-export a bundle whose audio graph emits only the MTT "
        "tagger's tags with the MSD tagger's appended (same weights, same "
        "embedding; trainer/export/retag.py).",
    )
    _add_bundle_copy_arguments(retag)
    retag.add_argument(
        "--check-data",
        type=Path,
        help="a data folder whose clips check the appended tags against the "
        "PyTorch port (default: generated test signals)",
    )

    uint8 = sub.add_parser(
        "uint8-weights",
        help="rewrite an older bundle's int8 weights as uint8 (exact on every CPU)",
        description="Copy a bundle with its graphs' int8 weights stored as uint8: "
        "the same model, which onnxruntime computes exactly on x86 CPUs without "
        "VNNI too (trainer/export/rewrite.py).",
    )
    _add_bundle_copy_arguments(uint8)

    from trainer.realcorpus import add_arguments as add_real_corpus

    add_real_corpus(
        sub.add_parser(
            "real-corpus",
            help="build the real-recording training corpus from pinned packages",
            description="Fetch the pinned Debian music packages of "
            "trainer/realcorpus_sources.json, cut their tracks into clips, tag "
            "them with the pretrained taggers and caption what they are sure of.",
        )
    )

    export = sub.add_parser("export", help="export a run as an int8 ONNX model bundle")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--run-dir",
        type=Path,
        help="run folder (its latest checkpoint) or one checkpoint .pt of it",
    )
    source.add_argument(
        "--untrained",
        metavar="CONFIG",
        help="export CONFIG's model as built, untrained (the random-weights "
        "baseline of the benchmark; pretrained parts keep their weights)",
    )
    export.add_argument(
        "--out", required=True, type=Path, help="bundle folder to write"
    )
    export.add_argument(
        "--name",
        help="bundle name (default: clap-<config name>, clap_ not doubled and _ "
        "as -: clap_default gives clap-default)",
    )
    export.add_argument("--version", default="0.1.0", help="bundle version")
    export.add_argument(
        "--calibration-data",
        type=Path,
        help="data directory whose valid split calibrates int8 (default: synthetic)",
    )
    export.add_argument(
        "--max-windows",
        type=int,
        default=8,
        help="windows the plugin embeds per track (a positive integer; default 8)",
    )
    export.add_argument(
        "--probes",
        type=Path,
        metavar="DATA",
        help="fit attribute probes on DATA's training split for the attributes "
        "the backbone's tagger does not name; they join the tags output",
    )
    export.add_argument(
        "--max-tokens",
        type=int,
        help="the bundle's text truncation (default: at least 128, whatever "
        "length the model trained on)",
    )
    export.add_argument(
        "--no-quantize", action="store_true", help="ship fp32 graphs (no int8)"
    )
    return parser


def _add_bundle_copy_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a command that writes a changed copy of a bundle."""
    parser.add_argument("--bundle", type=Path, required=True, help="bundle folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--version", required=True, help="the new bundle's version")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    from trainer.evaluate.metrics import TOP_K
    from trainer.splits import CAPTION_COLUMNS

    p = sub.add_parser(
        "evaluate",
        help="retrieval + negation benchmarks of a bundle (last line: JSON)",
        description="Retrieval and negation benchmark of model bundles.",
    )
    p.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    p.add_argument(
        "--data", type=Path, required=True, help="data directory (docs/training.md)"
    )
    p.add_argument(
        "--split",
        action="append",
        dest="splits",
        help="split(s) to evaluate (default: test, and test_shift when present)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="another bundle evaluated the same way, e.g. random=DIR blind=DIR",
    )
    p.add_argument(
        "--out", type=Path, help="output folder (default: eval/ beside the bundle)"
    )
    p.add_argument(
        "--max-clips", type=int, help="at most N clips per split (whole base pieces)"
    )
    p.add_argument(
        "--negation-weight",
        type=float,
        help="layer-2 weight (default: the bundle's query.negation_weight, else 0.5)",
    )
    p.add_argument(
        "--tag-weight",
        type=float,
        help="layer-2 weight of the tagger's evidence (default: the plugin's, "
        "for bundles with tags)",
    )
    p.add_argument(
        "--affirmed-tag-weight",
        type=float,
        help="layer-2 weight of the tagger's evidence for the attributes a query "
        "asks for (default: the plugin's, for bundles with tags)",
    )
    p.add_argument(
        "--speech-weight",
        type=float,
        help="layer-2 weight of the speech penalty for descriptions that want no "
        "voice (default: the plugin's)",
    )
    p.add_argument(
        "--caption-column", default="caption_writing", choices=CAPTION_COLUMNS
    )
    p.add_argument(
        "--min-relevant",
        type=int,
        default=TOP_K,
        help=f"negated retrieval: clips with A and not B a query needs "
        f"(default {TOP_K})",
    )
    p.add_argument("--threads", type=int, help="onnxruntime threads")
    p.add_argument("--quiet", action="store_true")


def _evaluate(args: argparse.Namespace) -> int:
    """Run the benchmark; the last stdout line is the JSON result."""
    from trainer.evaluate import EvaluateError, run, to_json

    log = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    try:
        result = run(args, log)
    except EvaluateError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(to_json(result))
    return 0


def _train(args: argparse.Namespace) -> int:
    from trainer.checkpoint import RunError, resolve_config
    from trainer.train import train

    if args.resume and args.init_from is not None:
        raise RunError(
            f"--init-from starts a new run from a bundle's weights; --resume "
            f"{args.resume} continues the checkpoint's: leave out --init-from, "
            "or train a new run (another --run-dir)"
        )
    overrides = list(args.overrides)
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    if args.init_from is not None:
        overrides.append(f"train.init_from={args.init_from}")
    cfg = resolve_config(args.config, overrides, args.run_dir, args.resume)
    try:
        train(cfg, args.data, args.run_dir, resume=args.resume, device=args.device)
    except RuntimeError as exc:
        from trainer.dist import peer_stopped

        if not peer_stopped(exc):
            raise
        # The rank that stopped first printed why; the rest say only this.
        raise RunError(
            "another rank stopped (see its message); this rank stops too"
        ) from None
    return 0


def _export(args: argparse.Namespace) -> int:
    from trainer.config import load_config
    from trainer.export import ExportError, export_bundle, export_untrained

    if args.out.exists() and not args.out.is_dir():
        # Found before the export's work, not when its files are copied.
        raise ExportError(f"--out {args.out} is a file, not a bundle folder")
    # The architecture, calibration windows and default name come from the
    # checkpoint's own config (or --untrained's), inside the export.
    options = {
        "name": args.name,
        "version": args.version,
        "calibration_data": args.calibration_data,
        "max_windows": args.max_windows,
        "max_tokens": args.max_tokens,
        "quantize": not args.no_quantize,
    }
    if args.untrained:
        out = export_untrained(load_config(args.untrained), args.out, **options)
    else:
        out = export_bundle(args.run_dir, args.out, probe_data=args.probes, **options)
    print(out)
    return 0


def _retag(args: argparse.Namespace) -> int:
    from trainer.export import calibration_from_data, synthetic_calibration_audio
    from trainer.export.retag import retag_bundle

    if args.check_data:
        windows, _texts = calibration_from_data(args.check_data)
    else:
        windows = synthetic_calibration_audio()
    print(retag_bundle(args.bundle, args.out, version=args.version, windows=windows))
    print(args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        # synth parses its own (larger) option set, help included.
        args = argparse.Namespace(command=argv[0])
    else:
        args = _parser().parse_args(argv)
    try:
        if args.command == "synth":
            from trainer.synth import main as synth_main

            return synth_main(argv[1:]) or 0
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "train":
            return _train(args)
        if args.command == "retag":
            return _retag(args)
        if args.command == "uint8-weights":
            from trainer.export.rewrite import uint8_bundle

            counts = uint8_bundle(args.bundle, args.out, version=args.version)
            rewritten = ", ".join(f"{k} {v}" for k, v in counts.items())
            print(f"int8 initializers rewritten as uint8: {rewritten}")
            print(args.out)
            return 0
        if args.command == "real-corpus":
            from trainer.realcorpus import run as real_corpus

            return real_corpus(args)
        return _export(args)
    except KeyboardInterrupt as exc:
        # A training run says what it saved and where a resume continues.
        print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
        # 128 + the signal, as a shell reports a process it ended: 130 for
        # Ctrl-C, 143 for a scheduler's SIGTERM (RunInterrupted.signum).
        return 128 + int(getattr(exc, "signum", signal.SIGINT))
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in TRAIN_EXTRA_MODULES:
            raise
        prefix = ERROR_PREFIXES.get(args.command, "error:")
        print(
            f"{prefix} {exc.name} is not installed: the trainer needs the train "
            "extra (pip install -e '.[train]')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except Exception as exc:
        line = user_error(exc)
        if line is None:
            raise
        prefix = ERROR_PREFIXES.get(args.command, "error:")
        print(f"{prefix} {line}", file=sys.stderr)
        return EXIT_USAGE


# Commands whose own errors start otherwise than "error:"; the errors this
# module reports for them start the same way.
ERROR_PREFIXES = {
    "evaluate": "evaluate: error:",
    "real-corpus": "real-corpus: error:",
    "synth": "synth: error:",
}
# A filesystem's refusals that a write can meet without a path to name
# (a full disk at write(), not at open()): said without one rather than
# as a traceback.
_FILESYSTEM_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EROFS", "EFBIG", "EACCES", "EPERM", "EIO")
    if hasattr(errno, name)
)


def user_error(exc: BaseException) -> str | None:
    """The one line an error that is the user's to fix prints, None for a bug.

    An OSError from the filesystem (a path that is missing, a file, read-only,
    on a full disk, not writable ...) is `PATH: reason`, whatever its errno.
    """
    if isinstance(exc, OSError) and exc.strerror:
        if exc.filename:
            return f"{exc.filename}: {exc.strerror}"
        if exc.errno in _FILESYSTEM_ERRNOS:
            return exc.strerror
    # Matched by name so that `synth` need not import torch to know them.
    if (
        isinstance(exc, FileNotFoundError | ValueError)
        or type(exc).__name__ in USER_ERRORS
    ):
        return str(exc)
    return None


def _exit_rank(code: int) -> None:
    """End a torchrun rank that Ctrl-C or SIGTERM stopped, once it has said
    what it saved and left its process group: without the interpreter's
    teardown, where a collective library's thread still joinable at exit
    can abort the process ("terminate called without an active exception",
    SIGABRT), which the launcher would report instead of the signal's
    status."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    status = main()
    if status in (130, 143) and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _exit_rank(status)
    sys.exit(status)
