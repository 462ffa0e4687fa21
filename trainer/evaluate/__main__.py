"""`python -m trainer.evaluate ...` is `python -m trainer evaluate ...`."""

from __future__ import annotations

import sys

from trainer.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
