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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .audio import AudioError, load_windows, pool_embeddings
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

    def result(self, dim: int) -> Embedded | Failed:
        """The store's record for this item (the spool file is deleted)."""
        import numpy as np

        if self.spool is None:
            return Failed(self.item_id, self.error or "", self.mtime, self.size)
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


# Set in each worker process by _worker_init.
_ENCODER: AudioEncoder | None = None


def embed_spooled(spool_dir: str, *args: Any) -> Outcome:
    """Worker entry point: decode and embed one file; the vector (and tags)
    go to a spool file, errors come back as values."""
    import numpy as np

    decoded = decode(*args)
    if decoded.windows is None:
        return Outcome(decoded.item_id, decoded.error, decoded.mtime, decoded.size)
    assert _ENCODER is not None, "worker started without its encoder"
    try:
        flat = _ENCODER.embed(decoded.windows)
    except Exception as exc:  # a model failure on odd input: this item only
        return Outcome(
            decoded.item_id,
            f"embedding failed: {type(exc).__name__}: {exc}",
            decoded.mtime,
            decoded.size,
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


def _spool_dir() -> str:
    """A private folder for workers' results, in RAM where Linux offers it."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="beets-clap-", dir=base)


def _worker_init(onnx_path: str, threads: int) -> None:
    """Workers leave Ctrl-C to the main process (which rolls back cleanly),
    keep libmpg123's resync notes off the user's terminal, and open their
    own audio session."""
    global _ENCODER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    _ENCODER = AudioEncoder(onnx_path, threads)


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
            initargs=(self.onnx_path, self.threads),
        )


def _isolated(workers: _Workers, spool_dir: str, args: DecodeArgs) -> Outcome:
    """Embed one file in a process of its own, so that a decoder crash
    marks that file as failed instead of stopping the run."""
    with workers.executor(1) as executor:
        try:
            return executor.submit(embed_spooled, spool_dir, *args).result()
        except BrokenProcessPool:
            mtime, size = file_stat(args[1])
            return Outcome(args[0], CRASH_ERROR, mtime, size)


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
        return Failed(decoded.item_id, decoded.error or "", decoded.mtime, decoded.size)
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
    for outcome in _pooled(args, workers, log):
        yield outcome.result(bundle.embedding_dim)


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
    batch: list[Embedded | Failed] = []

    def flush() -> None:
        done = [r for r in batch if isinstance(r, Embedded)]
        failed = [r for r in batch if isinstance(r, Failed)]
        store.write_batch(bundle.identity, done, failed)
        summary.embedded += len(done)
        for f in failed:
            summary.failed.append((by_id[f.item_id], f.error))
            if log is not None:
                log.debug("failed: {}: {}", by_id[f.item_id].path, f.error)
        batch.clear()

    if progress and todo:
        progress(0, len(todo))
    stream = results(todo, bundle, windows, jobs, worker_threads, log)
    for count, record in enumerate(stream, start=1):
        batch.append(record)
        if len(batch) >= batch_size:
            flush()
        if progress:
            progress(count, len(todo))
    if batch:
        flush()
    return summary
