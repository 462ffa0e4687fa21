"""Incremental indexing: items -> decoded windows -> embeddings -> store."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .audio import AudioError, load_windows, pool_embeddings
from .store import Embedded, Failed, ItemState, Store

if TYPE_CHECKING:
    import numpy as np

    from .model import Bundle

# Decoded tracks waiting for inference per worker: enough to keep workers
# busy while the main process runs the model, few enough to bound memory.
AHEAD_PER_JOB = 4

Progress = Callable[[int, int], None]
# decode()'s arguments: item id, path, sample rate, window seconds, windows.
DecodeArgs = tuple[int, str, int, float, int]
CRASH_ERROR = "decoder crashed on this file"
# beets' logger (str.format-style placeholders).
Log = logging.Logger | logging.LoggerAdapter


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
    """A worker's answer: windows or an error, with the file's stat."""

    item_id: int
    windows: np.ndarray | None
    error: str | None
    mtime: float
    size: int
    spool: str | None = None  # .npy file holding the windows (from workers)

    def unspooled(self) -> Decoded:
        """The windows read back from the worker's spool file (deleted)."""
        if self.spool is None:
            return self
        import numpy as np

        try:
            windows = np.load(self.spool)
        finally:
            os.unlink(self.spool)
        return replace(self, windows=windows, spool=None)


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
    """Worker entry point: decode one file; errors come back as values."""
    mtime, size = file_stat(path)
    try:
        windows = load_windows(path, sample_rate, window_seconds, max_windows)
    except AudioError as exc:
        return Decoded(item_id, None, str(exc), mtime, size)
    except Exception as exc:  # a decoder bug must not stop the whole run
        return Decoded(
            item_id, None, f"decoding failed: {type(exc).__name__}: {exc}", mtime, size
        )
    return Decoded(item_id, windows, None, mtime, size)


def decode_spooled(spool_dir: str, *args: Any) -> Decoded:
    """Worker entry point: decode, and hand the windows over in a file.

    Results then cross the pipe as a few hundred bytes, which a pipe writes
    atomically: a worker killed mid-answer (a crash, the OOM killer) cannot
    leave half a message that would hang the pool's reader for ever.
    """
    import numpy as np

    decoded = decode(*args)
    if decoded.windows is None:
        return decoded
    path = os.path.join(spool_dir, f"{decoded.item_id}.npy")
    np.save(path, decoded.windows)
    return replace(decoded, windows=None, spool=path)


def _spool_dir() -> str:
    """A private folder for decoded windows, in RAM where Linux offers it."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="beets-clap-", dir=base)


def _worker_init() -> None:
    """Workers leave Ctrl-C to the main process (which rolls back cleanly)
    and keep libmpg123's resync notes off the user's terminal."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _pool_context() -> Any:
    # forkserver: workers start from a clean process, not from one that
    # holds onnxruntime threads and open SQLite handles.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context(
        "forkserver" if "forkserver" in methods else "spawn"
    )


def _executor(jobs: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        jobs, mp_context=_pool_context(), initializer=_worker_init
    )


def _isolated(spool_dir: str, args: DecodeArgs) -> Decoded:
    """Decode one file in a process of its own, so that a decoder crash
    marks that file as failed instead of stopping the run."""
    with _executor(1) as executor:
        try:
            return executor.submit(decode_spooled, spool_dir, *args).result()
        except BrokenProcessPool:
            mtime, size = file_stat(args[1])
            return Decoded(args[0], None, CRASH_ERROR, mtime, size)


def _pooled(
    args: Sequence[DecodeArgs], jobs: int, log: Log | None = None
) -> Iterator[Decoded]:
    """Decode in `jobs` processes, yielding in order, with at most
    AHEAD_PER_JOB tasks per worker queued so that decoded audio does not
    pile up while the model runs.

    A worker that dies (a decoder crash, the OOM killer) breaks the pool:
    the files that were in flight are decoded again one by one, in
    processes of their own, and the rest goes on in a new pool.
    """
    queue = deque(args)
    spool_dir = _spool_dir()
    try:
        yield from _pooled_in(queue, jobs, spool_dir, log)
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)


def _pooled_in(
    queue: deque[DecodeArgs], jobs: int, spool_dir: str, log: Log | None
) -> Iterator[Decoded]:
    """_pooled's loop: one pool, then a new one after each breakage."""
    while queue:
        executor = _executor(jobs)
        pending: deque[tuple[DecodeArgs, Future[Decoded]]] = deque()
        try:
            while queue or pending:
                try:
                    while queue and len(pending) < AHEAD_PER_JOB * jobs:
                        future = executor.submit(decode_spooled, spool_dir, *queue[0])
                        pending.append((queue.popleft(), future))
                    result = pending[0][1].result()
                except BrokenProcessPool:
                    if log is not None:
                        log.warning(
                            "a decoding process died; decoding {} file(s) one by one",
                            len(pending),
                        )
                    for item, _ in pending:
                        yield _isolated(spool_dir, item).unspooled()
                    pending.clear()
                    break
                pending.popleft()
                yield result.unspooled()
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


def decoded_stream(
    todo: Sequence[Work],
    bundle: Bundle,
    max_windows: int,
    jobs: int,
    log: Log | None = None,
) -> Iterator[Decoded]:
    """Decoded items in `todo` order, in `jobs` worker processes (or here)."""
    args = [
        (w.item_id, w.path, bundle.sample_rate, bundle.window_seconds, max_windows)
        for w in todo
    ]
    jobs = max(1, min(jobs, len(todo)))
    if jobs == 1:
        for a in args:
            yield decode(*a)
        return
    yield from _pooled(args, jobs, log)


def embed_batch(
    bundle: Bundle, decoded: Sequence[Decoded]
) -> tuple[list[Embedded], list[Failed]]:
    """One model call for all windows of a batch, pooled per track."""
    import numpy as np

    done: list[Embedded] = []
    failed = [
        Failed(d.item_id, d.error or "", d.mtime, d.size)
        for d in decoded
        if d.windows is None
    ]
    good = [d for d in decoded if d.windows is not None]
    if not good:
        return done, failed
    emb, tags = bundle.embed_audio(np.concatenate([d.windows for d in good]))
    start = 0
    for d in good:
        n = len(d.windows)
        item_tags = tags[start : start + n].mean(axis=0) if tags is not None else None
        done.append(
            Embedded(
                d.item_id,
                pool_embeddings(emb[start : start + n]),
                item_tags,
                d.mtime,
                d.size,
                n,
            )
        )
        start += n
    return done, failed


def run(
    store: Store,
    bundle: Bundle,
    todo: Sequence[Work],
    *,
    jobs: int = 1,
    batch_size: int = 32,
    max_windows: int | None = None,
    progress: Progress | None = None,
    log: Log | None = None,
) -> Summary:
    """Embed `todo` and store the vectors, one transaction per batch.

    Per-item failures are recorded (status 'failed' and the reason) and the
    run goes on; they are retried next time. An interruption loses at most
    the batch in flight.
    """
    summary = Summary()
    summary.dropped = store.prepare(
        bundle.identity, bundle.embedding_dim, bundle.label, bundle.tag_names
    )
    by_id = {w.item_id: w for w in todo}
    windows = max_windows or bundle.max_windows
    batch: list[Decoded] = []

    def flush() -> None:
        done, failed = embed_batch(bundle, batch)
        store.write_batch(bundle.identity, done, failed)
        summary.embedded += len(done)
        for f in failed:
            summary.failed.append((by_id[f.item_id], f.error))
            if log is not None:
                log.debug("failed: {}: {}", by_id[f.item_id].path, f.error)
        batch.clear()

    if progress and todo:
        progress(0, len(todo))
    stream = decoded_stream(todo, bundle, windows, jobs, log)
    for done_count, decoded in enumerate(stream, start=1):
        batch.append(decoded)
        if len(batch) >= batch_size:
            flush()
        if progress:
            progress(done_count, len(todo))
    if batch:
        flush()
    return summary
