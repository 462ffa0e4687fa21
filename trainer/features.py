"""Frozen-backbone feature cache: embed crops once, train the heads many times.

With `freeze_backbone: full` the log-mel front end and the backbone are a
fixed function of the audio, and they are most of the audio tower's cost
(docs/benchmarks.md, "Where the time goes"). Computing them
once per fixed crop turns hours of CPU training into minutes: only the
projection heads and the text tower run per step. The crops are the
plugin's windows (evenly spread, `eval_offsets`), so what the heads learn on
is what the plugin will feed them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.config import Config
from trainer.data import (
    AudioDecodeError,
    Clip,
    ClipDataset,
    eval_offsets,
    fit_length,
    read_audio,
)

Log = Callable[[str], None]


def can_cache(cfg: Config) -> bool:
    """Whether the audio tower below its projection is frozen (cacheable)."""
    return cfg.model.audio.freeze_backbone == "full"


def settings_key(cfg: Config, crops: int) -> str:
    """What the features of one clip depend on besides the clip: the audio
    model settings, the sample rate and the number of crops."""
    digest = hashlib.sha256()
    digest.update(json.dumps(vars(cfg.model.audio), sort_keys=True).encode())
    digest.update(f"{cfg.data.sample_rate}/{crops}".encode())
    if not cfg.model.audio.pretrained_backbone:
        # A backbone with no pretrained weights is drawn from the seed.
        digest.update(f"/seed {cfg.train.seed}".encode())
    return digest.hexdigest()[:16]


def cache_key(cfg: Config, clips: Sequence[Clip], crops: int) -> str:
    """Identity of a cache: the audio model settings, the crops and the clip files.

    Anything that changes the backbone's output changes the key, so a stale
    cache is never read; the training run's other settings (text side,
    losses, augmentation) don't, so ablations share one cache.
    """
    return _key(settings_key(cfg, crops), [clip_identity(clip) for clip in clips])


def _key(settings: str, idents: Sequence[str]) -> str:
    digest = hashlib.sha256(settings.encode())
    for ident in idents:
        digest.update(ident.encode() + b"\n")
    return digest.hexdigest()[:16]


def clip_identity(clip: Clip) -> str:
    """One clip file as a cache key and a cache row stand for it.

    The resolved path, so the same corpus named another way (`--data syn`,
    `--data $PWD/syn`, a symlink) is the same cache; size and mtime_ns, so a
    file rewritten in place (a rebuilt corpus, even with the same bytes) is
    computed again.
    """
    try:
        path = clip.audio.resolve()
    except (OSError, RuntimeError):  # a symlink loop: no file to read either
        path = clip.audio.absolute()
    try:
        stat = path.stat()
    except OSError:
        return f"{path}\t-1\t-1"
    return f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}"


# Beside each cache file, the index of what its rows are (settings, clips).
INDEX_SUFFIX = ".clips.json"


def _earlier_rows(
    cache_dir: Path, settings: str, wanted: Sequence[str]
) -> tuple[dict[int, np.ndarray], int]:
    """Rows of earlier caches with the same settings for the clips `wanted`
    names (by clip_identity): {position in wanted: features [crops, F]}, and
    how many earlier caches gave some. Rows of clips unreadable then are
    not taken: they are tried again."""
    where = {ident: n for n, ident in enumerate(wanted)}
    found: dict[int, np.ndarray] = {}
    sources = 0
    for index_file in sorted(cache_dir.glob(f"audio-features-*{INDEX_SUFFIX}")):
        try:
            index = json.loads(index_file.read_text())
            if index.get("settings") != settings:
                continue
            features = np.load(
                index_file.with_name(
                    index_file.name.removesuffix(INDEX_SUFFIX) + ".npy"
                ),
                mmap_mode="r",
            )
        except (OSError, ValueError):
            continue  # an unreadable earlier cache is no cache
        if len(features) != len(index.get("clips", ())):
            continue
        took = 0
        for row, ident in enumerate(index["clips"]):
            n = where.get(ident)
            if n is None or n in found:
                continue
            value = np.asarray(features[row])
            if np.isfinite(value).all():
                found[n] = value
                took += 1
        sources += bool(took)
        if len(found) == len(wanted):
            break
    return found, sources


def _clip_windows(
    clip: Clip, sample_rate: int, seconds: float, crops: int
) -> np.ndarray:
    x = read_audio(clip.audio, sample_rate)
    if x.size == 0:
        raise AudioDecodeError(f"{clip.audio}: no samples")
    n = round(seconds * sample_rate)
    total = len(x) / sample_rate
    starts = [round(o * sample_rate) for o in eval_offsets(total, seconds, crops)]
    return np.stack([fit_length(x[s:], n) for s in starts])


@torch.no_grad()
def build_features(
    audio_tower: torch.nn.Module,
    clips: Sequence[Clip],
    cfg: Config,
    crops: int,
    cache_dir: Path,
    *,
    batch_windows: int = 64,
    log: Log = print,
) -> np.ndarray:
    """Backbone features [clips, crops, F] (NaN rows for unreadable clips), cached.

    The cache file is written atomically, so an interrupted build is redone
    rather than read half-written. Clips an earlier cache of the same
    settings in `cache_dir` holds (the same file: resolved path, size and
    mtime) are taken from it, so adding clips to a corpus computes only the
    new ones and rewriting one computes only that one.
    """
    # The key holds every clip's size and mtime, so a cache found under it
    # is of these very files: reading it whole needs no further check.
    idents = [clip_identity(clip) for clip in clips]
    settings = settings_key(cfg, crops)
    path = cache_dir / f"audio-features-{_key(settings, idents)}.npy"
    if path.exists():
        features = np.load(path, mmap_mode="r")
        log(f"feature cache: {path} ({features.shape[0]} clips x {crops} crops)")
        return np.asarray(features)

    reused, sources = _earlier_rows(cache_dir, settings, idents)
    out: np.ndarray | None = None
    if reused:
        width = next(iter(reused.values())).shape[-1]
        out = np.full((len(clips), crops, width), np.nan, np.float32)
        for row, value in reused.items():
            out[row] = value
        log(
            f"feature cache: {len(reused)} of {len(clips)} clips from "
            f"{sources} earlier cache(s), computing {len(clips) - len(reused)}"
        )

    seconds = cfg.model.audio.window_seconds
    rate = cfg.data.sample_rate
    was_training = audio_tower.training
    audio_tower.eval()
    pending: list[tuple[int, np.ndarray]] = []
    failed = 0
    first_failure = ""
    start = time.perf_counter()

    def flush() -> None:
        nonlocal out
        if not pending:
            return
        windows = torch.from_numpy(np.concatenate([w for _, w in pending]))
        feats = audio_tower.backbone(audio_tower.frontend(windows))["features"]
        feats = feats.float().numpy().reshape(len(pending), crops, -1)
        if out is None:
            out = np.full((len(clips), crops, feats.shape[-1]), np.nan, np.float32)
        for (row, _), value in zip(pending, feats, strict=True):
            out[row] = value
        pending.clear()

    todo = [row for row in range(len(clips)) if row not in reused]
    for done, row in enumerate(todo, 1):
        try:
            pending.append((row, _clip_windows(clips[row], rate, seconds, crops)))
        except AudioDecodeError as exc:
            failed += 1
            first_failure = first_failure or " ".join(str(exc).split())
            continue
        if len(pending) * crops >= batch_windows:
            flush()
        if done % 500 == 0:
            rate_s = done / (time.perf_counter() - start)
            log(f"feature cache: {done}/{len(todo)} clips ({rate_s:.1f}/s)")
    flush()
    audio_tower.train(was_training)
    if out is None:
        # The command line prints this as its one line: say how many and why.
        raise AudioDecodeError(
            f"no readable clip among the {len(clips)} clips to compute features "
            f"from (first: {first_failure})"
        )
    tmp = path.with_suffix(".tmp.npy")
    # The index that lets a later cache of other clips take these rows;
    # written after the features, so an index never names a missing file.
    index_path = path.with_name(path.stem + INDEX_SUFFIX)
    tmp_index = index_path.with_suffix(".tmp")
    writing = tmp  # the file a failure is named by
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(tmp, out)
        tmp.replace(path)
        writing = tmp_index
        tmp_index.write_text(json.dumps({"settings": settings, "clips": idents}))
        tmp_index.replace(index_path)
    except OSError as exc:
        # No partial file stays (it would keep a full disk full), and the
        # error names the cache file even when write(), not open(), failed.
        for partial in (tmp, tmp_index):
            with contextlib.suppress(OSError):  # the folder may not be one
                partial.unlink(missing_ok=True)
        if exc.filename:
            raise
        # numpy says only "N requested and M written" of a short write.
        reason = exc.strerror or f"{exc} (is the disk full?)"
        raise OSError(exc.errno, reason, str(writing)) from exc
    log(
        f"feature cache: wrote {path} ({len(clips)} clips, {len(reused)} reused, "
        f"{failed} unreadable, {time.perf_counter() - start:.0f} s)"
    )
    return out


class CachedClipDataset(ClipDataset):
    """ClipDataset whose "audio" is cached backbone features, not waveforms.

    Training draws one of a clip's cached crops at random (the cached
    counterpart of a random crop); evaluation returns all of them, which the
    model averages like the plugin averages windows.
    """

    def __init__(
        self,
        clips: list[Clip],
        features: np.ndarray,
        *args: Any,
        pooled_prob: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(clips, *args, **kwargs)
        if len(features) != len(clips):
            raise ValueError("feature cache and clip list differ in length")
        if not 0.0 <= pooled_prob <= 1.0:
            raise ValueError(f"pooled_crops_prob must be in [0, 1], not {pooled_prob}")
        self.features = features
        self.pooled_prob = pooled_prob
        self.rows = {id(clip): row for row, clip in enumerate(clips)}

    def _row(self, clip: Clip) -> np.ndarray:
        value = self.features[self.rows[id(clip)]]
        if np.isnan(value).any():
            raise AudioDecodeError(f"{clip.audio}: unreadable when the cache was built")
        return value

    def _train_audio(self, clip: Clip, rng: random.Random) -> np.ndarray:
        """One cached crop, or (pooled_prob) the mean of all of them, which is
        what the audio tower does with a multi-window input."""
        value = self._row(clip)
        if self.pooled_prob and rng.random() < self.pooled_prob:
            return np.ascontiguousarray(value.mean(axis=0))
        return np.ascontiguousarray(value[rng.randrange(len(value))])

    def _eval_audio(self, clip: Clip) -> np.ndarray:
        return np.ascontiguousarray(self._row(clip))
