"""The decoding worker processes: their start, their spools, their deaths."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .runguard import IndexingError, signals_deferred
from .store import Embedded, Failed
from .track import DecoderFailed, decode, embed_track, file_stat, stderr_to_devnull

if TYPE_CHECKING:
    import numpy as np

# Tracks queued per worker: enough to keep workers busy while the main
# process writes a batch.
AHEAD_PER_JOB = 4

# decode()'s arguments: item id, path, sample rate, window seconds, windows.
DecodeArgs = tuple[int, str, int, float, int]
CRASH_ERROR = "decoder crashed on this file"
# beets' logger (str.format-style placeholders).
Log = logging.Logger | logging.LoggerAdapter

# Workers' result folders: "beets-clap-<pid of the indexing process>-<random>",
# so that the next run can tell (and remove) those whose owner is gone.
SPOOL_PREFIX = "beets-clap-"
_SPOOL_NAME = re.compile(re.escape(SPOOL_PREFIX) + r"(\d+)-[^/]+")
# Where workers cannot wait on their parent's exit (no pidfd), they look
# this often whether it is still there.
PARENT_POLL_SECONDS = 1.0
# How long a stopped run gives its terminated workers before it kills them.
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class Outcome:
    """A worker's answer for one item: its pooled vector (and tags) in a
    spool file, or an error.

    Results cross the pipe as a few hundred bytes, which a pipe writes
    atomically: a worker killed mid-answer (a crash, the OOM killer) cannot
    leave half a message that would hang the pool's reader for ever.
    """

    item_id: int
    error: str | None
    mtime: float
    size: int
    windows: int = 0
    spool: str | None = None  # .npy: float32 [D (+ T)], the vector then tags
    file_fault: bool = True

    def result(self, dim: int) -> Embedded | Failed:
        """The store's record for this item (the spool file is deleted)."""
        import numpy as np

        if self.spool is None:
            kind = Failed if self.file_fault else DecoderFailed
            return kind(self.item_id, self.error or "", self.mtime, self.size)
        try:
            flat = np.load(self.spool)
        finally:
            os.unlink(self.spool)
        tags = flat[dim:] if len(flat) > dim else None
        return Embedded(
            self.item_id, flat[:dim], tags, self.mtime, self.size, self.windows
        )


class AudioEncoder:
    """A worker's own audio.onnx session: only the audio tower, opened from
    a bundle the main process has already validated."""

    def __init__(self, onnx_path: str, threads: int) -> None:
        import onnxruntime as ort

        from .model import session_options

        self.session = ort.InferenceSession(
            onnx_path,
            sess_options=session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        self.input = self.session.get_inputs()[0].name
        names = {o.name for o in self.session.get_outputs()}
        self.outputs = ["embedding"] + (["tags"] if "tags" in names else [])

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """One track's windows -> its pooled vector, then its mean tags."""
        return embed_track(
            windows, lambda w: self.session.run(self.outputs, {self.input: w})
        )


# Set in each worker process by _worker_init: its encoder, or why it has none.
_ENCODER: AudioEncoder | None = None
_INIT_ERROR: str | None = None


def embed_spooled(spool_dir: str, *args: Any) -> Outcome:
    """Worker entry point: decode and embed one file; the vector (and tags)
    go to a spool file, errors come back as values."""
    import numpy as np

    if _ENCODER is None:
        raise IndexingError(_INIT_ERROR or "decoding worker started without a model")
    decoded = decode(*args)
    if decoded.windows is None:
        return Outcome(
            decoded.item_id,
            decoded.error,
            decoded.mtime,
            decoded.size,
            file_fault=decoded.file_fault,
        )
    try:
        flat = _ENCODER.embed(decoded.windows)
    except Exception as exc:  # a model failure on odd input: this item only
        return Outcome(
            decoded.item_id,
            f"embedding failed: {type(exc).__name__}: {exc}",
            decoded.mtime,
            decoded.size,
            file_fault=False,
        )
    path = os.path.join(spool_dir, f"{decoded.item_id}.npy")
    np.save(path, flat.astype(np.float32))
    return Outcome(
        decoded.item_id,
        None,
        decoded.mtime,
        decoded.size,
        windows=len(decoded.windows),
        spool=path,
    )


def _spool_base() -> str | None:
    """Where spools go: RAM where Linux offers it, else the temp folder."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but another user's (EPERM)
        return True
    return True


def remove_stale_spools(base: str | None = None) -> int:
    """Delete this user's spool folders whose indexing process is gone (a
    run killed before it could clean up). Returns how many were removed."""
    base = base or _spool_base() or tempfile.gettempdir()
    removed = 0
    try:
        entries = list(os.scandir(base))
    except OSError:
        return 0
    for entry in entries:
        match = _SPOOL_NAME.fullmatch(entry.name)
        if not match or int(match[1]) == os.getpid():
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if hasattr(os, "getuid") and entry.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not _pid_alive(int(match[1])):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def _spool_dir() -> str:
    """A private folder for workers' results, named for this process."""
    base = _spool_base()
    remove_stale_spools(base)
    return tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-", dir=base)


def _watch_parent(parent: int) -> None:
    """Exit this worker as soon as the indexing process `parent` is gone."""
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(parent)
        except ProcessLookupError:
            os._exit(1)
        except OSError:  # an old kernel: poll instead
            pidfd = None
    if pidfd is not None:
        import select

        select.select([pidfd], [], [])  # readable once the process has exited
    else:
        while _pid_alive(parent):
            time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _die_with(parent: int) -> None:
    """Make this worker exit when the indexing process does, whatever
    kills it (kill -9 included): each worker holds a loaded model and would
    otherwise wait for work for ever. On Linux the kernel also kills it
    when its own parent (the forkserver) goes."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(
                pr_set_pdeathsig, int(signal.SIGKILL)
            )
        except (OSError, AttributeError):
            pass
    threading.Thread(
        target=_watch_parent, args=(parent,), name="clap-parent-watch", daemon=True
    ).start()


def _worker_init(onnx_path: str, threads: int, parent: int) -> None:
    """Workers die with the indexing process, leave Ctrl-C and SIGTERM to
    it (it rolls back and stops them cleanly), keep libmpg123's resync
    notes off the user's terminal, and open their own audio session. A
    session that cannot open is reported with the first task (an
    initializer that raises only breaks the pool, which would read as a
    crash of every file)."""
    global _ENCODER, _INIT_ERROR
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stderr_to_devnull()
    try:
        _ENCODER = AudioEncoder(onnx_path, threads)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _INIT_ERROR = (
            f"a decoding worker cannot open {os.path.basename(onnx_path)}: "
            f"{type(exc).__name__}{': ' + detail if detail else ''}"
        )


def _pool_context() -> Any:
    # forkserver: workers start from a clean process, not from one that
    # holds onnxruntime threads and open SQLite handles.
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        _start_forkserver_deaf()
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _start_forkserver_deaf() -> None:
    """Start this process's forkserver (once) with Ctrl-C blocked, so that
    every worker forked from it holds SIGINT blocked from its first instant.

    A worker only ignores SIGINT once its initializer runs: a Ctrl-C in
    the instant before could print a KeyboardInterrupt traceback from the
    worker beside clap-index's one-line message. The
    blocked mask is inherited through the forkserver's exec and forks
    (multiprocessing's resource tracker is started the same way); blocked
    here only in the calling thread, so this process still gets its own
    Ctrl-C, delivered once the mask is restored. A server some other code
    started first is left as it is."""
    from multiprocessing import forkserver, resource_tracker

    if not hasattr(signal, "pthread_sigmask"):
        return
    # The resource tracker first: starting it unblocks SIGINT (its own
    # start blocks and then unblocks it), which would undo the mask below.
    resource_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@dataclass(frozen=True)
class Workers:
    """How to start workers: how many, and their encoder's settings."""

    jobs: int
    onnx_path: str
    threads: int

    def executor(self, jobs: int | None = None) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            jobs or self.jobs,
            mp_context=_pool_context(),
            initializer=_worker_init,
            initargs=(self.onnx_path, self.threads, os.getpid()),
        )


def _submit(
    executor: ProcessPoolExecutor, spool_dir: str, args: DecodeArgs
) -> Future[Outcome]:
    """Queue one file. A submit may start a worker (the pool starts them
    as work comes), so a signal waits until it is over: every worker
    that exists is then one the pool knows, and a stopped run stops it."""
    with signals_deferred():
        return executor.submit(embed_spooled, spool_dir, *args)


def _isolated(workers: Workers, spool_dir: str, args: DecodeArgs) -> Outcome:
    """Embed one file in a process of its own, so that a decoder crash
    marks that file as failed instead of stopping the run."""
    executor = workers.executor(1)
    done = False
    try:
        result = _submit(executor, spool_dir, args).result()
        done = True
        return result
    except BrokenProcessPool:
        done = True
        mtime, size = file_stat(args[1])
        return Outcome(args[0], CRASH_ERROR, mtime, size, file_fault=False)
    finally:
        _shut_down(executor, at_once=not done)


def _shut_down(executor: ProcessPoolExecutor, at_once: bool) -> None:
    """Stop a pool's workers and wait for them: once their work is done,
    or `at_once` (a stopped run, whose results nobody wants) without
    waiting for the tracks they are on: terminated, and killed if they are
    still there after STOP_SECONDS. Either way no worker outlives this, so
    none is left for the interpreter's exit to wait on."""
    if at_once:
        # The pool's own workers (a private attribute: the standard library
        # has no public way to end them before Python 3.14's
        # terminate_workers).
        processes = list((getattr(executor, "_processes", None) or {}).values())
        for process in processes:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        alive = [p for p in processes if p.is_alive()]
        while alive and time.monotonic() < deadline:
            multiprocessing.connection.wait(
                [p.sentinel for p in alive], deadline - time.monotonic()
            )
            alive = [p for p in alive if p.is_alive()]
        for process in alive:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()
    # The pool's manager thread sees its workers gone (a broken pool, with
    # nothing left to run) and joins them.
    executor.shutdown(wait=True, cancel_futures=True)


def pooled(
    args: Sequence[DecodeArgs], workers: Workers, log: Log | None = None
) -> Iterator[Outcome]:
    """Decode and embed in worker processes, yielding in order, with at
    most AHEAD_PER_JOB tasks per worker queued.

    A worker that dies (a decoder crash, the OOM killer) breaks the pool:
    the files that were in flight are embedded again one by one, in
    processes of their own, and the rest goes on in a new pool.
    """
    queue = deque(args)
    spool_dir = _spool_dir()
    try:
        yield from _pooled_in(queue, workers, spool_dir, log)
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)


def _pooled_in(
    queue: deque[DecodeArgs], workers: Workers, spool_dir: str, log: Log | None
) -> Iterator[Outcome]:
    """pooled's loop: one pool, then a new one after each breakage."""
    while queue:
        executor = workers.executor()
        pending: deque[tuple[DecodeArgs, Future[Outcome]]] = deque()
        # False until this pool's work is all done: left before (the run
        # stops, or the pool broke), its workers go at once.
        finished = False
        try:
            while queue or pending:
                try:
                    while queue and len(pending) < AHEAD_PER_JOB * workers.jobs:
                        future = _submit(executor, spool_dir, queue[0])
                        pending.append((queue.popleft(), future))
                    result = pending[0][1].result()
                except BrokenProcessPool:
                    if log is not None:
                        log.warning(
                            "a decoding process died; decoding {} file(s) one by one",
                            len(pending),
                        )
                    for item, _ in pending:
                        yield _isolated(workers, spool_dir, item)
                    pending.clear()
                    break
                pending.popleft()
                yield result
            finished = True
        finally:
            _shut_down(executor, at_once=not finished)
