"""One track's turn: stat and decode its file, embed its windows, its record."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .audio import (
    AudioError,
    DecoderUnavailableError,
    FfmpegMissingError,
    load_windows,
    pool_embeddings,
)
from .store import Embedded, Failed

if TYPE_CHECKING:
    import numpy as np

    from .model import Bundle


@dataclass(frozen=True)
class DecoderFailed(Failed):
    """A failure whose cause is not shown to be the file (ffmpeg missing, a
    decoder bug or crash, a model error): an item whose file is unchanged
    since it was embedded keeps its vector rather than losing it."""


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


def file_stat(path: str) -> tuple[float, int]:
    """(mtime, size), or (0, 0) for a file that cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return 0.0, 0
    return st.st_mtime, st.st_size


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


def stderr_to_devnull() -> None:
    """Point this process's fd 2 at /dev/null: libmpg123 (inside
    libsndfile) writes its notes there, past Python's sys.stderr."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
    finally:
        os.close(devnull)


@contextlib.contextmanager
def decoder_notes_hidden() -> Iterator[None]:
    """Standard error (fd 2) goes to /dev/null while this process decodes,
    when no other Python thread could be writing to it.

    libmpg123 (inside libsndfile) prints its resync notes ("part2_3_length
    too large ...") straight to fd 2 for mp3s that decode fine, which read
    as errors; a decoding error comes back as a value, never printed.
    Workers silence fd 2 for good; in this process only `clap-index -j 1`
    does, one file at a time. With other threads alive (beets' import
    pipeline, `auto`), their messages would be lost with the notes, so fd 2
    is left alone there."""
    if threading.active_count() > 1:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no fd 2 at all
        yield
        return
    try:
        stderr_to_devnull()
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def embed_track(
    windows: np.ndarray, run_one: Callable[[np.ndarray], Sequence[np.ndarray]]
) -> np.ndarray:
    """Pooled vector (then mean tags, if any) of a track, one window per
    model call: onnxruntime's arena grows with the batch's musicnn-sized
    activations, and one at a time is no slower per window on CPU
    (docs/benchmarks.md)."""
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


def embed_here(bundle: Bundle, decoded: Decoded) -> Embedded | Failed:
    """Embed one decoded item with the main process's bundle."""
    if decoded.windows is None:
        return decoded.failed()
    flat = embed_track(decoded.windows, bundle.embed_audio)
    dim = bundle.embedding_dim
    return Embedded(
        decoded.item_id,
        flat[:dim],
        flat[dim:] if len(flat) > dim else None,
        decoded.mtime,
        decoded.size,
        len(decoded.windows),
    )
