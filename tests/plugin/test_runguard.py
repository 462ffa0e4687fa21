"""The one SIGTERM-as-interrupt helper the plugin, train and synth share:
what the first SIGTERM raises, and what a later one does while the run
stops. Real signals, sent to this process (handlers run in pytest's main
thread, at the next bytecode)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from beetsplug.clap.runguard import (
    Terminated,
    signals_deferred,
    terminate_like_interrupt,
)


class _Stop(KeyboardInterrupt):
    pass


@pytest.fixture(autouse=True)
def _keep_sigterm() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    # The handler runs before the next bytecode; nothing to wait for.


def test_the_first_sigterm_raises_the_given_exception_and_a_later_one_kills() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with pytest.raises(_Stop), terminate_like_interrupt(_Stop):
        _sigterm()
    # Raised inside: on the way out the handler before it is back.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    seen: list[object] = []
    with terminate_like_interrupt():
        try:
            _sigterm()
        except Terminated:
            seen.append(signal.getsignal(signal.SIGTERM))
    # While stopping, a second SIGTERM would end the process at once.
    assert seen == [signal.SIG_DFL]


def test_with_ignore_later_sigterms_are_ignored_and_stay_so() -> None:
    stopped = 0
    with terminate_like_interrupt(_Stop, again="ignore"):
        try:
            _sigterm()
        except _Stop:
            stopped += 1
            _sigterm()  # the launcher's copy: ignored, the run goes on
            _sigterm()
    assert stopped == 1
    # The process is ending with 128 + SIGTERM: nothing may cut it short.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def test_a_run_that_is_not_stopped_gets_the_previous_handler_back() -> None:
    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not while the helper holds SIGTERM")

    signal.signal(signal.SIGTERM, mine)
    for again in ("kill", "ignore"):
        with terminate_like_interrupt(again=again):  # type: ignore[arg-type]
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine


def test_disabled_it_leaves_sigterm_alone() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with terminate_like_interrupt(enabled=False):
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        _sigterm()  # ignored: no exception
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def test_ctrl_c_stops_once_and_later_ones_are_ignored_while_stopping() -> None:
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stopped = 0
        with terminate_like_interrupt(interrupt_once=True):
            try:
                os.kill(os.getpid(), signal.SIGINT)
            except KeyboardInterrupt:
                stopped += 1
                # Ctrl-C again, and a SIGTERM: neither cuts the clean-up
                # short (a SIGTERM ends the process, as a second one does).
                os.kill(os.getpid(), signal.SIGINT)
                assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert stopped == 1
        # The process is ending with 130: nothing may cut it short.
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        # A run not stopped gives Ctrl-C back.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with terminate_like_interrupt(interrupt_once=True):
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_sigterm_stop_ignores_a_later_ctrl_c() -> None:
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stopped = 0
        with terminate_like_interrupt(_Stop, again="ignore", interrupt_once=True):
            try:
                _sigterm()
            except _Stop:
                stopped += 1
                os.kill(os.getpid(), signal.SIGINT)  # ignored
        assert stopped == 1
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def _step(signum: int, times: int, steps: list[str]) -> None:
    """A step that must not be cut: `signum` arrives `times` during it."""
    with signals_deferred():
        for _ in range(times):
            os.kill(os.getpid(), signum)
        steps.append("finished")


def test_a_deferred_signal_arrives_once_the_step_is_over() -> None:
    """Ctrl-C inside the step does not cut it; it raises, once, as the
    step ends, through the handler that was there (runguard's own)."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        steps: list[str] = []
        with (
            pytest.raises(KeyboardInterrupt),
            terminate_like_interrupt(interrupt_once=True),
        ):
            _step(signal.SIGINT, 2, steps)
        assert steps == ["finished"]
        # runguard's handler saw it: later ones are ignored while stopping.
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_deferred_sigterm_meets_the_runs_handler_and_nothing_is_held_after() -> None:
    steps: list[str] = []
    with pytest.raises(_Stop), terminate_like_interrupt(_Stop):
        _step(signal.SIGTERM, 1, steps)
    assert steps == ["finished"]
    # An ignored signal stays ignored; a step without one raises nothing.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _step(signal.SIGTERM, 1, steps)
    _step(signal.SIGTERM, 0, steps)
    assert steps == ["finished"] * 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
