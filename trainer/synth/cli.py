"""Command line of the corpus: `python -m trainer synth`, `python -m trainer.synth`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trainer synth",
        description="Render a synthetic music corpus with exact labels and pairs.",
    )
    p.add_argument("--out", type=Path, required=True, help="data directory to create")
    p.add_argument(
        "--clips", type=int, required=True, help="number of clips (all splits)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="render processes (default: one per core)",
    )
    p.add_argument(
        "--pair-share",
        type=float,
        default=0.5,
        help="share of base pieces rendered as a minimal pair (default 0.5)",
    )
    p.add_argument("--valid-share", type=float, default=0.1)
    p.add_argument("--test-share", type=float, default=0.1)
    p.add_argument(
        "--shift-share",
        type=float,
        default=0.1,
        help="share of base pieces rendered with TimGM6mb for test_shift",
    )
    p.add_argument(
        "--duration", type=float, default=10.0, help="clip length in seconds"
    )
    p.add_argument(
        "--keep-midi",
        action="store_true",
        help="also write each piece's MIDI under midi/",
    )
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Build a corpus; 0 on success, 2 with a one-line error on bad input."""
    from trainer.synth.corpus import CorpusConfig, build_corpus, log_stderr
    from trainer.synth.fluid import SynthError
    from trainer.synth.voice import VoiceError

    args = _parser().parse_args(argv)
    config = CorpusConfig(
        out=args.out,
        clips=args.clips,
        seed=args.seed,
        pair_share=args.pair_share,
        valid_share=args.valid_share,
        test_share=args.test_share,
        shift_share=args.shift_share,
        duration=args.duration,
        workers=args.workers,
        keep_midi=args.keep_midi,
    )
    try:
        summary = build_corpus(config, log=None if args.quiet else log_stderr)
    except (ValueError, SynthError, VoiceError) as exc:
        print(f"synth: error: {exc}", file=sys.stderr)
        return 2
    splits = ", ".join(f"{k} {v['clips']}" for k, v in summary["splits"].items())
    print(
        f"synth: wrote {summary['clips']} clips to {args.out} ({splits}) "
        f"at {summary['render']['clips_per_minute']:.0f} clips/min"
    )
    return 0
