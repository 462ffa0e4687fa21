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


def cache_key(cfg: Config, clips: Sequence[Clip], crops: int) -> str:
    """Identity of a cache: the audio model settings, the crops and the clip files.

    Anything that changes the backbone's output changes the key, so a stale
    cache is never read; the training run's other settings (text side,
    losses, augmentation) don't, so ablations share one cache.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(vars(cfg.model.audio), sort_keys=True).encode())
    digest.update(f"{cfg.data.sample_rate}/{crops}".encode())
    for clip in clips:
        digest.update(str(clip.audio).encode())
        stat = clip.audio.stat() if clip.audio.exists() else None
        digest.update(f"{stat.st_size if stat else -1}".encode())
    return digest.hexdigest()[:16]


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
    rather than read half-written.
    """
    key = cache_key(cfg, clips, crops)
    path = cache_dir / f"audio-features-{key}.npy"
    if path.exists():
        features = np.load(path, mmap_mode="r")
        log(f"feature cache: {path} ({features.shape[0]} clips x {crops} crops)")
        return np.asarray(features)

    seconds = cfg.model.audio.window_seconds
    rate = cfg.data.sample_rate
    was_training = audio_tower.training
    audio_tower.eval()
    out: np.ndarray | None = None
    pending: list[tuple[int, np.ndarray]] = []
    failed = 0
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

    for row, clip in enumerate(clips):
        try:
            pending.append((row, _clip_windows(clip, rate, seconds, crops)))
        except AudioDecodeError:
            failed += 1
            continue
        if len(pending) * crops >= batch_windows:
            flush()
        if (row + 1) % 500 == 0:
            rate_s = (row + 1) / (time.perf_counter() - start)
            log(f"feature cache: {row + 1}/{len(clips)} clips ({rate_s:.1f}/s)")
    flush()
    audio_tower.train(was_training)
    if out is None:
        raise AudioDecodeError("no readable clip to compute features from")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    log(
        f"feature cache: wrote {path} ({len(clips)} clips, {failed} unreadable, "
        f"{time.perf_counter() - start:.0f} s)"
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
