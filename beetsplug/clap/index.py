"""Incremental indexing: items -> decoded windows -> embeddings -> store."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .audio import (
    AudioError,
    DecoderUnavailableError,
    FfmpegMissingError,
    check_decoders,
    load_windows,
    needs_ffmpeg,
    pool_embeddings,
)
from .store import Embedded, Failed, ItemState, Store

if TYPE_CHECKING:
    import numpy as np

    from .model import Bundle

# Tracks queued per worker: enough to keep workers busy while the main
# process writes a batch.
AHEAD_PER_JOB = 4

Progress = Callable[[int, int], None]
# decode()'s arguments: item id, path, sample rate, window seconds, windows.
DecodeArgs = tuple[int, str, int, float, int]
CRASH_ERROR = "decoder crashed on this file"
# beets' logger (str.format-style placeholders).
Log = logging.Logger | logging.LoggerAdapter
# Workers' result folders: "beets-clap-<pid of the indexing process>-<random>",
# so that the next run can tell (and remove) those whose owner is gone.
SPOOL_PREFIX = "beets-clap-"
_SPOOL_NAME = re.compile(re.escape(SPOOL_PREFIX) + r"(\d+)-[^/]+")
# One run at a time per library: an exclusive lock on this file beside the
# database (released by the kernel however the run ends).
LOCK_SUFFIX = ".clap-index.lock"
# Where workers cannot wait on their parent's exit (no pidfd), they look
# this often whether it is still there.
PARENT_POLL_SECONDS = 1.0


class IndexingError(Exception):
    """A run that cannot start or go on: another run holds the library, or
    the environment is broken (a decoder library, ffmpeg for every file, a
    worker that cannot open the model). One line; the run changes nothing
    more (batches already committed are complete and kept)."""


@dataclass(frozen=True)
class DecoderFailed(Failed):
    """A failure whose cause is not shown to be the file (ffmpeg missing, a
    decoder bug or crash, a model error): an item whose file is unchanged
    since it was embedded keeps its vector rather than losing it."""


@dataclass(frozen=True)
class Work:
    """One item to (re)embed and why."""

    item_id: int
    path: str
    reason: str  # new, changed, failed before, other bundle, forced


@dataclass
class Plan:
    """Which items need embedding; the rest are unchanged."""

    todo: list[Work] = field(default_factory=list)
    unchanged: int = 0


@dataclass
class Summary:
    """What a run did, for the final report."""

    embedded: int = 0
    unchanged: int = 0
    failed: list[tuple[Work, str]] = field(default_factory=list)
    dropped: int = 0  # rows of another bundle removed before the run


@dataclass(frozen=True)
class Decoded:
    """Decoded windows of one item (in-process indexing), or an error."""

    item_id: int
    windows: np.ndarray | None
    error: str | None
    mtime: float
    size: int
    file_fault: bool = True  # the error's cause is the file itself

    def failed(self) -> Failed:
        kind = Failed if self.file_fault else DecoderFailed
        return kind(self.item_id, self.error or "", self.mtime, self.size)


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


def file_stat(path: str) -> tuple[float, int]:
    """(mtime, size), or (0, 0) for a file that cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return 0.0, 0
    return st.st_mtime, st.st_size


def reason_for(
    state: ItemState | None, mtime: float, size: int, bundle: str, force: bool
) -> str | None:
    """Why an item needs embedding, or None when its vector is current."""
    if force:
        return "forced"
    if state is None:
        return "new"
    if state.bundle != bundle:
        return "other bundle"
    if state.status != "ok":
        return "failed before"
    if state.size != size or abs(state.mtime - mtime) > 1e-6:
        return "changed"
    return None


def plan(
    items: Iterable[tuple[int, str]],
    states: dict[int, ItemState],
    bundle: str,
    force: bool = False,
) -> Plan:
    """Decide, from file stats and recorded state, what to embed."""
    result = Plan()
    for item_id, path in items:
        mtime, size = file_stat(path)
        why = reason_for(states.get(item_id), mtime, size, bundle, force)
        if why is None:
            result.unchanged += 1
        else:
            result.todo.append(Work(item_id, path, why))
    return result


def decode(
    item_id: int, path: str, sample_rate: int, window_seconds: float, max_windows: int
) -> Decoded:
    """Worker entry point: decode one file; its errors come back as values.

    A broken decoding environment (DecoderUnavailableError) is raised: it
    is no file's fault and must stop the run, not fail every track.
    """
    mtime, size = file_stat(path)
    try:
        windows = load_windows(path, sample_rate, window_seconds, max_windows)
    except DecoderUnavailableError:
        raise
    except FfmpegMissingError as exc:
        return Decoded(item_id, None, str(exc), mtime, size, file_fault=False)
    except AudioError as exc:
        return Decoded(item_id, None, str(exc), mtime, size)
    except Exception as exc:  # a decoder bug must not stop the whole run
        error = f"decoding failed: {type(exc).__name__}: {exc}"
        return Decoded(item_id, None, error, mtime, size, file_fault=False)
    return Decoded(item_id, windows, None, mtime, size)


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
        return _embed_track(
            windows, lambda w: self.session.run(self.outputs, {self.input: w})
        )


def _embed_track(
    windows: np.ndarray, run_one: Callable[[np.ndarray], Sequence[np.ndarray]]
) -> np.ndarray:
    """Pooled vector (then mean tags, if any) of a track, one window per
    model call: with musicnn-sized activations a batch of 8 windows peaks at
    ~0.9 GB in onnxruntime's arena against ~0.18 GB for one, and one at a
    time is no slower per window on CPU."""
    import numpy as np

    from .model import l2_normalize

    embs, tags = [], []
    for i in range(len(windows)):
        out = run_one(np.ascontiguousarray(windows[i : i + 1], dtype=np.float32))
        embs.append(out[0])
        if len(out) > 1 and out[1] is not None:
            tags.append(out[1])
    vector = pool_embeddings(l2_normalize(np.concatenate(embs)))
    if not tags:
        return vector
    return np.concatenate([vector, np.concatenate(tags).mean(axis=0)])


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
    kills it (kill -9 included): workers hold ~200 MB each and would
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
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
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
    return multiprocessing.get_context(
        "forkserver" if "forkserver" in methods else "spawn"
    )


@dataclass(frozen=True)
class _Workers:
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


def _isolated(workers: _Workers, spool_dir: str, args: DecodeArgs) -> Outcome:
    """Embed one file in a process of its own, so that a decoder crash
    marks that file as failed instead of stopping the run."""
    with workers.executor(1) as executor:
        try:
            return executor.submit(embed_spooled, spool_dir, *args).result()
        except BrokenProcessPool:
            mtime, size = file_stat(args[1])
            return Outcome(args[0], CRASH_ERROR, mtime, size, file_fault=False)


def _pooled(
    args: Sequence[DecodeArgs], workers: _Workers, log: Log | None = None
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
    queue: deque[DecodeArgs], workers: _Workers, spool_dir: str, log: Log | None
) -> Iterator[Outcome]:
    """_pooled's loop: one pool, then a new one after each breakage."""
    while queue:
        executor = workers.executor()
        pending: deque[tuple[DecodeArgs, Future[Outcome]]] = deque()
        try:
            while queue or pending:
                try:
                    while queue and len(pending) < AHEAD_PER_JOB * workers.jobs:
                        future = executor.submit(embed_spooled, spool_dir, *queue[0])
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
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


def embed_here(bundle: Bundle, decoded: Decoded) -> Embedded | Failed:
    """Embed one decoded item with the main process's bundle."""
    if decoded.windows is None:
        return decoded.failed()
    flat = _embed_track(decoded.windows, bundle.embed_audio)
    dim = bundle.embedding_dim
    return Embedded(
        decoded.item_id,
        flat[:dim],
        flat[dim:] if len(flat) > dim else None,
        decoded.mtime,
        decoded.size,
        len(decoded.windows),
    )


def results(
    todo: Sequence[Work],
    bundle: Bundle,
    max_windows: int,
    jobs: int,
    worker_threads: int = 1,
    log: Log | None = None,
) -> Iterator[Embedded | Failed]:
    """Embedded or failed records for `todo`, in order.

    With one job everything runs here (the bundle's session, with its
    threads); with more, each worker process decodes and embeds whole tracks
    with its own single-threaded session: the model is most of the work,
    and separate processes use the cores better than one session's threads
    (no thread synchronisation per layer, decoding overlapped).
    """
    args = [
        (w.item_id, w.path, bundle.sample_rate, bundle.window_seconds, max_windows)
        for w in todo
    ]
    jobs = max(1, min(jobs, len(todo)))
    if jobs == 1:
        for a in args:
            yield embed_here(bundle, decode(*a))
        return
    onnx_path = str(bundle.path / bundle.manifest["audio"]["file"])
    workers = _Workers(jobs, onnx_path, worker_threads)
    with contextlib.closing(_pooled(args, workers, log)) as outcomes:
        for outcome in outcomes:
            yield outcome.result(bundle.embedding_dim)


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


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread where Ctrl-C raises
    KeyboardInterrupt, so that the same clean-ups run."""


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """SIGTERM stops a run as Ctrl-C does (batch in flight rolled back,
    workers stopped, spool removed) instead of killing the process on the
    spot. A second SIGTERM kills at once (the workers still follow)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(
    store: Store,
    bundle: Bundle,
    todo: Sequence[Work],
    *,
    jobs: int = 1,
    batch_size: int = 32,
    max_windows: int | None = None,
    worker_threads: int = 1,
    progress: Progress | None = None,
    log: Log | None = None,
) -> Summary:
    """Embed `todo` and store the vectors, one transaction per batch, holding
    the library's index lock (`exclusive_run`).

    Per-item failures are recorded (status 'failed' and the reason) and the
    run goes on; they are retried next time. An interruption (Ctrl-C,
    SIGTERM) loses at most the batch in flight; SIGTERM then exits with
    status 143. A broken environment or another run in progress raises
    IndexingError before anything is changed.
    """
    try:
        with _terminate_like_interrupt(), exclusive_run(store):
            check_environment(todo)
            remove_stale_spools()
            # Rows of items removed from the library (beets deletes items on
            # its own connection, which cannot reach the vector tables).
            store.purge_missing()
            return _run(
                store,
                bundle,
                todo,
                jobs=jobs,
                batch_size=batch_size,
                max_windows=max_windows,
                worker_threads=worker_threads,
                progress=progress,
                log=log,
            )
    except DecoderUnavailableError as exc:
        raise IndexingError(str(exc)) from exc
    except _Terminated:
        if log is not None:
            log.warning(
                "clap-index stopped (SIGTERM): finished batches are kept; "
                "run it again to go on"
            )
        raise SystemExit(128 + signal.SIGTERM) from None


def _unchanged_ok(state: ItemState | None, bundle: str, failed: Failed) -> bool:
    """Whether the item already has a vector of this bundle for exactly the
    file that just failed (same mtime and size)."""
    return (
        state is not None
        and state.status == "ok"
        and state.bundle == bundle
        and state.size == failed.size
        and abs(state.mtime - failed.mtime) <= 1e-6
    )


def _run(
    store: Store,
    bundle: Bundle,
    todo: Sequence[Work],
    *,
    jobs: int,
    batch_size: int,
    max_windows: int | None,
    worker_threads: int,
    progress: Progress | None,
    log: Log | None,
) -> Summary:
    summary = Summary()
    summary.dropped = store.prepare(
        bundle.identity, bundle.embedding_dim, bundle.label, bundle.tag_names
    )
    by_id = {w.item_id: w for w in todo}
    states = store.states()
    windows = max_windows or bundle.max_windows
    batch: list[Embedded | Failed] = []

    def flush() -> None:
        done = [r for r in batch if isinstance(r, Embedded)]
        failed, kept = [], []
        for r in batch:
            if not isinstance(r, Failed):
                continue
            # A vector is only ever replaced by its new one: a failure that
            # is not the file's, on a file unchanged since it was embedded,
            # leaves the vector (and its state) as they were.
            if isinstance(r, DecoderFailed) and _unchanged_ok(
                states.get(r.item_id), bundle.identity, r
            ):
                kept.append(r)
            else:
                failed.append(r)
        store.write_batch(bundle.identity, done, failed)
        summary.embedded += len(done)
        for f in failed:
            summary.failed.append((by_id[f.item_id], f.error))
        for f in kept:
            summary.failed.append((by_id[f.item_id], f"{f.error} (kept its vector)"))
        if log is not None:
            for f in failed + kept:
                log.debug("failed: {}: {}", by_id[f.item_id].path, f.error)
        batch.clear()

    if progress and todo:
        progress(0, len(todo))
    stream = results(todo, bundle, windows, jobs, worker_threads, log)
    # Closed on the way out, whatever the way: the workers stop and the
    # spool goes now, not whenever the generator is collected.
    with contextlib.closing(stream):
        for count, record in enumerate(stream, start=1):
            batch.append(record)
            if len(batch) >= batch_size:
                flush()
            if progress:
                progress(count, len(todo))
    if batch:
        flush()
    return summary
