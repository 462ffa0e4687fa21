"""Clips of a split as the benchmark judges them, embedded as the plugin embeds tracks.

Splits are read by trainer.splits (the training reader: one file or the
published shards); audio goes through the plugin's own windowing, decoding,
`Bundle` and pooling, so the numbers describe what a user gets.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from trainer import splits
from trainer.synth.labels import present_terms

EMBED_CHUNK = 32  # clips per embed_audio call


class EvaluateError(Exception):
    """Bad input to the benchmark (one-line reason)."""


@dataclass
class Clip:
    """A row of a split with what the protocols judge by: its present terms."""

    track_id: str
    audio: Path
    tags: list[str]
    captions: dict[str, str]
    attributes: dict | None = None
    absent: list[str] | None = None
    pair_id: str | None = None
    pair_attribute: str | None = None
    base_piece: str | None = None
    present: set[str] = field(default_factory=set)

    @classmethod
    def from_split(cls, row: splits.Clip) -> Clip:
        """The tags' present terms, and the style a synthetic clip was rendered in."""
        present = present_terms(row.tags)
        if row.attributes and row.attributes.get("style"):
            present.add(row.attributes["style"])
        # Every field the split row also has is carried over as it is.
        shared = {f.name for f in fields(cls)} & {f.name for f in fields(row)}
        return cls(
            **{name: getattr(row, name) for name in shared},
            base_piece=row.group or row.track_id,
            present=present,
        )


def has_split(data: Path, split: str) -> bool:
    """Whether `data` holds `split` (one parquet file or its shards)."""
    try:
        splits.split_files(data, split)
    except splits.DataError:
        return False
    return True


def load_split(data: Path, split: str, max_clips: int | None = None) -> list[Clip]:
    """The clips of one split, every shard of it, sorted by track id;
    --max-clips keeps whole base pieces (pairs together).

    A clip whose audio file is missing is kept: embedding reports it among
    the skipped clips with its reason.
    """
    if not has_split(data, split):
        path = data / splits.CAPTIONS_DIR / f"{split}.parquet"
        raise EvaluateError(
            f"{path} not found (is {data} a data directory with a {split} split?)"
        )
    try:
        rows, _stats = splits.read_split(data, split, keep_missing_audio=True)
    except splits.DataError as exc:
        raise EvaluateError(str(exc)) from None
    clips = sorted((Clip.from_split(row) for row in rows), key=lambda c: c.track_id)
    if max_clips is not None and len(clips) > max_clips:
        groups: dict[str, list[Clip]] = defaultdict(list)
        for clip in clips:
            groups[clip.base_piece].append(clip)
        kept: list[Clip] = []
        for key in sorted(groups):
            if len(kept) + len(groups[key]) > max_clips:
                break
            kept.extend(groups[key])
        clips = kept
    return clips


def windows_from_array(
    samples: np.ndarray,
    rate: int,
    sample_rate: int,
    window_seconds: float,
    max_windows: int,
) -> np.ndarray:
    """Windows of an already decoded mono array, cut exactly as load_windows cuts
    a file: the plugin's length check, window plan, resampling, cyclic fill of
    short windows, clipping, silent windows dropped."""
    from beetsplug.clap import audio

    mono = np.asarray(samples, dtype=np.float32).reshape(-1)
    audio._check_length(len(mono), rate)
    segments = audio.segments_from_array(mono, rate, window_seconds, max_windows)
    return audio._finish(
        segments, rate, sample_rate, round(window_seconds * sample_rate)
    )


def clip_windows(bundle, path: Path) -> np.ndarray:
    from beetsplug.clap.audio import load_windows

    if path.suffix == ".npy":
        # Preprocessed clips are 16 kHz mono float32 (docs/training.md).
        return windows_from_array(
            np.load(path),
            splits.NPY_SAMPLE_RATE,
            bundle.sample_rate,
            bundle.window_seconds,
            bundle.max_windows,
        )
    return load_windows(
        path, bundle.sample_rate, bundle.window_seconds, bundle.max_windows
    )


def _fingerprint(bundle, clips: list[Clip]) -> str:
    h = hashlib.sha256(bundle.identity.encode())
    for clip in clips:
        st = clip.audio.stat() if clip.audio.exists() else None
        h.update(
            f"{clip.track_id}\0{clip.audio}\0{st and st.st_size}\0"
            f"{st and st.st_mtime_ns}\n".encode()
        )
    return h.hexdigest()


def embed_clips(
    bundle,
    clips: list[Clip],
    cache_dir: Path | None,
    log: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, str]]:
    """Pooled embeddings [N, D] (skipped clips' rows are zero), mean tag
    probabilities [N, T] (bundles with tags, else None; the plugin stores
    the same per track), {track_id: reason}.

    Cached per bundle identity and clip set in cache_dir, so re-runs only
    embed text.
    """
    from beetsplug.clap.audio import AudioError, pool_embeddings

    fingerprint = _fingerprint(bundle, clips)
    cache = (
        cache_dir / f"{bundle.identity[:16]}-{fingerprint[:16]}.npz"
        if cache_dir
        else None
    )
    if cache is not None and cache.is_file():
        data = np.load(cache, allow_pickle=False)
        if str(data["fingerprint"]) == fingerprint and (
            "tags" in data or not bundle.has_tags
        ):
            skipped = json.loads(str(data["skipped"]))
            return data["embeddings"], data.get("tags"), skipped
    emb = np.zeros((len(clips), bundle.embedding_dim), dtype=np.float32)
    tag_rows = (
        np.zeros((len(clips), len(bundle.tag_names)), np.float32)
        if bundle.has_tags
        else None
    )
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    for lo in range(0, len(clips), EMBED_CHUNK):
        chunk = clips[lo : lo + EMBED_CHUNK]
        windows, owners = [], []
        for i, clip in enumerate(chunk):
            try:
                w = clip_windows(bundle, clip.audio)
            except AudioError as exc:
                skipped[clip.track_id] = str(exc)
                continue
            windows.append(w)
            owners += [lo + i] * len(w)
        if not windows:
            continue
        vectors, tags = bundle.embed_audio(np.concatenate(windows))
        owners_arr = np.asarray(owners)
        for idx in np.unique(owners_arr):
            emb[idx] = pool_embeddings(vectors[owners_arr == idx])
            if tag_rows is not None and tags is not None:
                tag_rows[idx] = tags[owners_arr == idx].mean(axis=0)
        if log and (lo // EMBED_CHUNK) % 10 == 9:
            log(
                f"evaluate: embedded {lo + len(chunk)}/{len(clips)} clips "
                f"({time.perf_counter() - started:.0f} s)"
            )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        extra = {"tags": tag_rows} if tag_rows is not None else {}
        np.savez(
            tmp,
            embeddings=emb,
            fingerprint=fingerprint,
            skipped=json.dumps(skipped),
            **extra,
        )
        tmp.replace(cache)
    return emb, tag_rows, skipped


class TextEmbedder:
    """Embeds each distinct text once per bundle (captions repeat across protocols)."""

    def __init__(self, bundle) -> None:
        self.bundle = bundle
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self._cache})
        for text, vec in zip(todo, self.bundle.embed_text(todo), strict=True):
            self._cache[text] = np.asarray(vec, dtype=np.float32)
        if not texts:
            return np.zeros((0, self.bundle.embedding_dim), np.float32)
        return np.stack([self._cache[t] for t in texts])
