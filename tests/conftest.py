"""What every test of the suite relies on, whichever folder it is in."""

from __future__ import annotations

import signal

# A suite started from a background job (`nohup ... &`, `cmd &` in a script)
# inherits SIGINT ignored, and so would every process its tests start: the
# tests of what Ctrl-C does need Python's own handler, as in a terminal.
# A handler installed here is reset to the default in a child at exec, so
# the subprocesses get theirs too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
