"""The synthetic corpus: composed pieces with exact labels and minimal pairs."""

from __future__ import annotations

from trainer.synth.cli import main

__all__ = ["main"]
