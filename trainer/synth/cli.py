"""Command line of the corpus: `python -m trainer synth`, `python -m trainer.synth`."""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

# (flag, type, default, help) of each valued option; a default of None makes
# the option required.
_OPTIONS: tuple[tuple[str, type, Any, str | None], ...] = (
    ("--out", Path, None, "data directory to create"),
    ("--clips", int, None, "number of clips (all splits)"),
    ("--seed", int, 0, None),
    ("--workers", int, 0, "render processes (default: one per core)"),
    (
        "--pair-share",
        float,
        0.5,
        "share of base pieces rendered as a minimal pair (default 0.5)",
    ),
    ("--valid-share", float, 0.1, None),
    ("--test-share", float, 0.1, None),
    (
        "--shift-share",
        float,
        0.1,
        "share of base pieces rendered with TimGM6mb for test_shift",
    ),
    ("--duration", float, 10.0, "clip length in seconds"),
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trainer synth",
        description="Render a synthetic music corpus with exact labels and pairs.",
    )
    for flag, kind, default, text in _OPTIONS:
        p.add_argument(
            flag, type=kind, default=default, required=default is None, help=text
        )
    p.add_argument(
        "--keep-midi",
        action="store_true",
        help="also write each piece's MIDI under midi/",
    )
    p.add_argument("--quiet", action="store_true")
    return p


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be (a scheduler ending the job)."""

    signum = signal.SIGTERM


def main(argv: list[str] | None = None) -> int:
    """Build a corpus; 0 on success, 2 with a one-line error on bad input, and
    one line with 130 on Ctrl-C or 143 on SIGTERM (128 + the signal)."""
    from beetsplug.clap.runguard import terminate_like_interrupt
    from trainer.synth.corpus import (
        CorpusConfig,
        build_corpus,
        is_unfinished,
        log_stderr,
    )
    from trainer.synth.fluid import SynthError
    from trainer.synth.voice import VoiceError

    args = _parser().parse_args(argv)
    # Every field of the config is an option of the same name.
    config = CorpusConfig(
        **{f.name: getattr(args, f.name) for f in fields(CorpusConfig)}
    )
    try:
        with terminate_like_interrupt(_Terminated):
            summary = build_corpus(config, log=None if args.quiet else log_stderr)
    except KeyboardInterrupt as exc:
        left = (
            f"; {args.out} is unfinished: the same command removes it and starts again"
            if is_unfinished(args.out)
            else ""
        )
        print(f"synth: interrupted{left}", file=sys.stderr)
        return 128 + int(getattr(exc, "signum", signal.SIGINT))
    except (ValueError, SynthError, VoiceError) as exc:
        print(f"synth: error: {exc}", file=sys.stderr)
        return 2
    splits = ", ".join(f"{k} {v['clips']}" for k, v in summary["splits"].items())
    print(
        f"synth: wrote {summary['clips']} clips to {args.out} ({splits}) "
        f"at {summary['render']['clips_per_minute']:.0f} clips/min"
    )
    return 0
