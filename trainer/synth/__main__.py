"""`python -m trainer.synth`: the same command as `python -m trainer synth`."""

from __future__ import annotations

from trainer.synth.cli import main

raise SystemExit(main())
