"""Incremental indexing: items -> decoded windows -> embeddings -> store."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .audio import AudioError, DecoderUnavailableError, file_size
from .results import counted
from .runguard import (
    IndexingError,
    Terminated,
    check_environment,
    exclusive_run,
    stopped,
    terminate_like_interrupt,
)
from .store import Embedded, Failed, ItemState, Store
from .track import DecoderFailed, decode, decoder_notes_hidden, embed_here, file_stat
from .workers import Log, Workers, pooled, remove_stale_spools

if TYPE_CHECKING:
    from .model import Bundle

Progress = Callable[[int, int], None]

# The commands' view of a run; IndexingError and stopped (runguard) and
# file_stat (track) are theirs too.
__all__ = [
    "IndexingError",
    "Plan",
    "Progress",
    "Summary",
    "Work",
    "file_stat",
    "plan",
    "reason_for",
    "results",
    "run",
    "stopped",
    "window_cap",
]


@dataclass(frozen=True)
class Work:
    """One item to (re)embed and why."""

    item_id: int
    path: str
    # new, changed, failed before, other bundle, other max_windows, forced
    reason: str
    # Why the run will record it as failed without decoding anything (the
    # file is missing or out of reach), for --pretend; None when it may work.
    problem: str | None = None


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


def window_cap(bundle: Bundle, max_windows: int | None) -> int:
    """The windows per track a run embeds: clap.max_windows, or the
    bundle's own when that is 0 (None)."""
    return max_windows or bundle.max_windows


def reason_for(
    state: ItemState | None,
    mtime: float,
    size: int,
    bundle: str,
    max_windows: int,
    force: bool,
) -> str | None:
    """Why an item needs embedding, or None when its vector is current.

    `max_windows` is the run's window cap (`window_cap`): a vector embedded
    with another cap is not what this run would make. A row that records no
    cap (0) counts as current: its cap is unknown, and re-embedding a whole
    library on a guess is left to --force.
    """
    if force:
        return "forced"
    if state is None:
        return "new"
    if state.bundle != bundle:
        return "other bundle"
    if state.status != "ok":
        return "failed before"
    if state.max_windows not in (0, max_windows):
        return "other max_windows"
    if state.size != size or abs(state.mtime - mtime) > 1e-6:
        return "changed"
    return None


def plan(
    items: Iterable[tuple[int, str]],
    states: dict[int, ItemState],
    bundle: str,
    max_windows: int,
    force: bool = False,
) -> Plan:
    """Decide, from file stats and recorded state, what to embed with a
    window cap of `max_windows`."""
    result = Plan()
    for item_id, path in items:
        mtime, size = file_stat(path)
        state = states.get(item_id)
        why = reason_for(state, mtime, size, bundle, max_windows, force)
        if why is None:
            result.unchanged += 1
        else:
            # file_stat says (0, 0) for a file it cannot stat: ask why.
            problem = _unreachable(path) if not (mtime or size) else None
            result.todo.append(Work(item_id, path, why, problem))
    return result


def _unreachable(path: str) -> str | None:
    """The reason a run records for a file it cannot reach (audio.file_size's
    "file not found"), None when the file is there."""
    try:
        file_size(path)
    except AudioError as exc:
        return str(exc)
    return None


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
            with decoder_notes_hidden():
                decoded = decode(*a)
            yield embed_here(bundle, decoded)
        return
    onnx_path = str(bundle.path / bundle.manifest["audio"]["file"])
    workers = Workers(jobs, onnx_path, worker_threads)
    with contextlib.closing(pooled(args, workers, log)) as outcomes:
        for outcome in outcomes:
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
    """Embed `todo` and store the vectors, one transaction per batch, holding
    the library's index lock (`exclusive_run`).

    Per-item failures are recorded (status 'failed' and the reason) and the
    run goes on; they are retried next time. An interruption (Ctrl-C,
    SIGTERM) loses at most the batch in flight; SIGTERM then exits with
    status 143 (runguard.stopped), Ctrl-C's KeyboardInterrupt goes on to
    the caller (an import stage leaves it to beets; clap-index exits 130).
    A broken environment or another run in progress raises IndexingError
    before anything is changed.
    """
    try:
        with terminate_like_interrupt(interrupt_once=True), exclusive_run(store):
            check_environment(todo)
            remove_stale_spools()
            # Rows of items removed from the library (beets deletes items on
            # its own connection, which cannot reach the vector tables).
            store.purge_missing()
            summary = _run(
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
            # And those removed while it ran (beet rm beside a long run).
            store.purge_missing()
            return summary
    except DecoderUnavailableError as exc:
        raise IndexingError(str(exc)) from exc
    except Terminated:
        raise stopped(signal.SIGTERM, log) from None


def _keeps_vector(state: ItemState | None, bundle: str, failed: Failed) -> bool:
    """Whether a failure leaves the item's vector of this bundle as it is:
    one not shown to be the file's (DecoderFailed) on exactly the file that
    was embedded (same mtime and size), or a file out of reach (missing, no
    access: file_stat's (0, 0)), which says nothing of its sound - an
    unmounted drive comes back, and `beet update` removes what is gone."""
    if state is None or state.status != "ok" or state.bundle != bundle:
        return False
    if not (failed.mtime or failed.size):
        return True
    return (
        isinstance(failed, DecoderFailed)
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
    windows = window_cap(bundle, max_windows)
    batch: list[Embedded | Failed] = []

    def flush() -> None:
        done = [r for r in batch if isinstance(r, Embedded)]
        failed, kept = [], []
        for r in batch:
            if not isinstance(r, Failed):
                continue
            # A vector is only ever replaced by its new one: a failure that
            # says nothing of the file's sound leaves the vector (and its
            # state) as they were.
            if _keeps_vector(states.get(r.item_id), bundle.identity, r):
                kept.append(r)
            else:
                failed.append(r)
        store.write_batch(bundle.identity, done, failed, max_windows=windows)
        summary.embedded += len(done)
        for f in failed:
            summary.failed.append((by_id[f.item_id], f.error))
        for f in kept:
            summary.failed.append((by_id[f.item_id], f"{f.error} (kept its vector)"))
        if log is not None:
            # Per-track detail for -v, as each batch is written; failures are
            # said once, by the caller, when the run ends.
            for e in done:
                log.debug(
                    "embedded: {} ({})",
                    by_id[e.item_id].path,
                    counted(e.windows, "window"),
                )
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
