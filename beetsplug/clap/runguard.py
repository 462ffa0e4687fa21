"""A clap-index run's guards: the environment check, the run lock, signals."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .audio import DecoderUnavailableError, check_decoders, needs_ffmpeg

if TYPE_CHECKING:
    from .index import Work
    from .store import Store
    from .workers import Log

# One run at a time per library: an exclusive lock on this file beside the
# database (released by the kernel however the run ends).
LOCK_SUFFIX = ".clap-index.lock"


class IndexingError(Exception):
    """A run that cannot start or go on: another run holds the library, or
    the environment is broken (a decoder library, ffmpeg for every file, a
    worker that cannot open the model). One line; the run changes nothing
    more (batches already committed are complete and kept)."""


def check_environment(todo: Sequence[Work]) -> None:
    """Stop before anything changes when no file of `todo` could be
    decoded whatever it holds: the decoding libraries do not work, or
    every file needs ffmpeg and there is none. Raises IndexingError."""
    if not todo:
        return
    try:
        check_decoders()
    except DecoderUnavailableError as exc:
        raise IndexingError(str(exc)) from exc
    if shutil.which("ffmpeg") is None and all(needs_ffmpeg(w.path) for w in todo):
        kinds = sorted(
            {os.path.splitext(w.path)[1].lower() or "no suffix" for w in todo}
        )
        raise IndexingError(
            f"ffmpeg is not installed and none of the {len(todo)} file(s) to "
            f"embed ({', '.join(kinds[:5])}) can be read without it: install "
            "ffmpeg, then run clap-index again"
        )


def _database_file(store: Store) -> str | None:
    """The file behind the store's main database (None: in memory)."""
    for _, name, file in store.conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return file or None
    return None


def _lock_file(fd: int) -> bool:
    """Take an exclusive lock on an open file without waiting."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def exclusive_run(store: Store) -> Iterator[None]:
    """Hold the library's index lock for a run; IndexingError when another
    process holds it. The kernel drops the lock when its holder ends,
    however it ends, so a killed run never blocks the next one. A folder
    where the lock file cannot be made (read-only) runs unlocked: nothing
    can be written there anyway, and the database says so."""
    db = _database_file(store)
    if db is None:
        yield
        return
    try:
        fd = os.open(db + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        if not _lock_file(fd):
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                holder = os.read(fd, 32).decode("ascii", "replace").strip()
            except OSError:  # Windows: the holder's locked byte
                holder = ""
            raise IndexingError(
                "another clap-index run is in progress on this library"
                + (f" (pid {holder})" if holder.isdigit() else "")
                + ": wait for it to finish, then run clap-index again"
            )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock


class Terminated(BaseException):
    """SIGTERM, raised in the main thread where Ctrl-C raises
    KeyboardInterrupt, so that the same clean-ups run."""


@contextlib.contextmanager
def terminate_like_interrupt(
    raising: type[BaseException] = Terminated,
    *,
    again: Literal["kill", "ignore"] = "kill",
    enabled: bool = True,
    interrupt_once: bool = False,
) -> Iterator[None]:
    """SIGTERM stops a run as Ctrl-C does (`raising` is raised where
    KeyboardInterrupt would be, so batches in flight are rolled back,
    workers stopped, spools removed) instead of killing the process on the
    spot. The one helper of the plugin and the trainer (train, synth).

    `again` is what a later SIGTERM does while the run stops: "kill" ends
    the process at once (a user who means it); "ignore" lets it finish
    (torchrun passes the scheduler's SIGTERM on to each rank a second
    time), and SIGTERM stays ignored once the run was stopped so, as the
    process is ending and its exit status must stay 128 + SIGTERM. Off the
    main thread (Python runs handlers there only) or not `enabled`, SIGTERM
    is left as it is.

    With `interrupt_once`, Ctrl-C (SIGINT, where Python's own handler has
    it) raises KeyboardInterrupt once too, and a later SIGINT while the run
    stops - either way - is ignored, and stays so: the process is ending
    with 128 + the signal. A second KeyboardInterrupt would cut the clean-up
    short half-way: Python 3.11 then takes the pool's manager thread, whose
    join it broke, for ended, and the interpreter's exit waits for ever on
    workers that were never told to stop.
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False
    interrupts = (
        interrupt_once and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )

    def stop(exception: type[BaseException]) -> None:
        nonlocal stopping
        if stopping:  # "ignore", or a SIGINT already on its way in
            return
        stopping = True
        if interrupts:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if again == "kill":
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise exception

    def on_sigterm(signum: int, frame: Any) -> None:
        stop(raising)

    def on_sigint(signum: int, frame: Any) -> None:
        stop(KeyboardInterrupt)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    if interrupts:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        if interrupts and not stopping:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if stopping and again == "ignore":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif previous is None:  # a handler not set from Python
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        else:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_deferred(
    signums: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for a step that must not be cut in
    two, and deliver the first one that came, to the handler it would have
    met, once the step is over.

    Starting a worker is such a step: stopped between the forkserver's
    fork and the pool's record of the new process, the run cannot stop a
    worker it does not know of, and that worker, still reading its start-up
    data, finds the pool's semaphores already removed and prints a
    traceback beside the run's one line. Blocking the signals in this
    thread would not do: they can land on any thread, and Python runs the
    handler in the main thread wherever it is. Off the main thread (where
    handlers cannot be set, nor run) nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        caught.append(signum)

    previous: dict[int, Any] = {}
    try:
        for signum in signums:
            handler = signal.getsignal(signum)
            if handler is not None:  # None: set outside Python; left alone
                previous[signum] = signal.signal(signum, hold)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            # Through whatever handler is back: raises KeyboardInterrupt
            # or runguard's Terminated here, ends the process (SIG_DFL),
            # or nothing (SIG_IGN).
            signal.raise_signal(caught[0])


def stopped(signum: int, log: Log | None) -> SystemExit:
    """What ends a run a signal stopped (SIGINT from Ctrl-C, SIGTERM), once
    its clean-ups have run: the one line that says so, and the exit status
    a shell gives a process the signal ended (128 + the signal), so that
    `beet clap-index && next` stops there too."""
    if log is not None:
        log.warning(
            "clap-index stopped ({}): finished batches are kept; run it again to go on",
            signal.Signals(signum).name,
        )
    return SystemExit(128 + signum)
