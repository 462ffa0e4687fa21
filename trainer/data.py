"""Training data: a data directory's splits read into torch Datasets of audio crops.

The on-disk layout and the split reader live in trainer.splits (shared with
evaluation). Missing audio files are dropped (and counted) when a split is read;
a clip that fails to decode during training is replaced by another clip and
counted in the batch, so a few bad files out of half a million never stop a run.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from trainer.config import DataConfig
from trainer.splits import (
    AUDIO_DIR,
    CAPTION_COLUMNS,
    CAPTIONS_DIR,
    EXTRA_COLUMNS,
    LP_COLUMNS,
    NPY_SAMPLE_RATE,
    Clip,
    DataError,
    split_schema,
)
from trainer.splits import read_split as read_split  # the one split reader

# Consecutive undecodable clips tolerated before the run is declared broken:
# a few bad files are noise, fifty in a row means the data directory is wrong.
MAX_REPLACEMENTS = 50


class AudioDecodeError(Exception):
    """One clip that could not be decoded (the run goes on without it)."""


# --------------------------------------------------------------------------- audio


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out or x.size == 0:
        return x
    import soxr

    return soxr.resample(x, sr_in, sr_out).astype(np.float32, copy=False)


def _to_float_mono(x: np.ndarray) -> np.ndarray:
    if x.ndim == 2:  # [frames, channels] from soundfile, or [channels, frames] npy
        x = x.mean(axis=1 if x.shape[1] <= 8 else 0)
    if np.issubdtype(x.dtype, np.integer):  # some MSD preprocessings store int16
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    return np.ascontiguousarray(x, dtype=np.float32)


def audio_seconds(path: Path) -> float | None:
    """Duration from the header (npy shape, libsndfile); None when only a full
    decode could tell (ffmpeg-only formats)."""
    try:
        if path.suffix == ".npy":
            return len(np.load(path, mmap_mode="r")) / NPY_SAMPLE_RATE
        import soundfile as sf

        try:
            info = sf.info(str(path))
        except RuntimeError:  # libsndfile cannot read it: ffmpeg will decode it whole
            return None
        return info.frames / info.samplerate if info.frames > 0 else None
    except (OSError, ValueError, EOFError) as exc:
        raise AudioDecodeError(f"{path}: {exc}") from exc


def _ffmpeg_decode(
    path: Path, sample_rate: int, offset: float = 0.0, seconds: float | None = None
) -> np.ndarray:
    """Decode anything ffmpeg reads (m4a, wma, odd mp3s) to mono float32."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioDecodeError(
            f"{path}: libsndfile cannot read it and ffmpeg is not installed"
        )
    cmd = [ffmpeg, "-nostdin", "-v", "error"]
    if offset > 0:
        cmd += ["-ss", f"{offset:.3f}"]
    if seconds is not None:
        cmd += ["-t", f"{seconds:.3f}"]
    cmd += ["-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        # ffmpeg names the input itself ("PATH: Invalid data ..."): once is enough.
        last = reason[-1].removeprefix(f"{path}: ") if reason else "ffmpeg failed"
        raise AudioDecodeError(f"{path}: {last}")
    return np.frombuffer(proc.stdout, dtype="<f4").copy()


def read_audio(
    path: Path, sample_rate: int, offset: float = 0.0, seconds: float | None = None
) -> np.ndarray:
    """Mono float32 at `sample_rate`, from `offset` for `seconds` (to the end if None).

    Only the requested span is decoded where the format can seek (npy memory
    maps, libsndfile formats including mp3), which matters when a training
    crop is 10 s of a 30 s preview.
    """
    try:
        if path.suffix == ".npy":
            arr = np.load(path, mmap_mode="r")
            start = round(offset * NPY_SAMPLE_RATE)
            stop = None if seconds is None else start + round(seconds * NPY_SAMPLE_RATE)
            x = _to_float_mono(np.asarray(arr[start:stop] if arr.ndim == 1 else arr))
            return _resample(x, NPY_SAMPLE_RATE, sample_rate)
        import soundfile as sf

        try:
            with sf.SoundFile(str(path)) as f:
                sr = f.samplerate
                if offset > 0:
                    f.seek(int(offset * sr))
                frames = -1 if seconds is None else round(seconds * sr)
                x = f.read(frames, dtype="float32", always_2d=True)
            return _resample(_to_float_mono(x), sr, sample_rate)
        except RuntimeError:  # includes sf.LibsndfileError
            return _ffmpeg_decode(path, sample_rate, offset, seconds)
    except AudioDecodeError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise AudioDecodeError(f"{path}: {exc}") from exc


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Exactly `n` samples: cut, or repeat a short clip (musicnn's padding rule)."""
    if x.size == 0:
        raise AudioDecodeError("no samples")
    if len(x) >= n:
        return x[:n]
    return np.resize(x, n)  # np.resize repeats the array cyclically


def eval_offsets(total: float, crop: float, n: int) -> list[float]:
    """`n` fixed crop starts spread evenly over the clip (all 0 if it is short)."""
    span = max(total - crop, 0.0)
    if n <= 1:
        return [span / 2]
    return [span * k / (n - 1) for k in range(n)]


# --------------------------------------------------------------------------- dataset


def eval_caption(clip: Clip, caption_columns: Sequence[str] = CAPTION_COLUMNS) -> str:
    """The fixed text a clip is evaluated with: its first caption, else its tags."""
    for column in caption_columns:
        if column in clip.captions:
            return clip.captions[column]
    return ", ".join(clip.tags)


def sample_rng(seed: int, epoch: int, index: int, attempt: int = 0) -> random.Random:
    """A generator owned by one (epoch, example): crops and text augmentation are
    then the same whatever the worker count, world size or resume point."""
    return random.Random(f"{seed}/{epoch}/{index}/{attempt}")


class ClipDataset(Dataset):
    """Audio crops + texts of one split.

    Training items are one random `crop_seconds` crop and an augmented text
    sample; evaluation items are `eval_crops` fixed crops [C, S] and the
    clip's fixed caption. `epoch` must be set before each epoch's iterator is
    created (worker processes copy it then).
    """

    def __init__(
        self,
        clips: list[Clip],
        cfg: DataConfig,
        *,
        train: bool,
        text_fn: Callable[[Clip, random.Random], Any] | None = None,
        seed: int = 0,
    ) -> None:
        if not clips:
            raise DataError("no usable clips in this split")
        self.clips, self.cfg, self.train, self.seed = clips, cfg, train, seed
        self.text_fn = text_fn
        self.epoch = 0
        self.num_samples = round(cfg.crop_seconds * cfg.sample_rate)

    def __len__(self) -> int:
        return len(self.clips)

    def _train_audio(self, clip: Clip, rng: random.Random) -> np.ndarray:
        total = audio_seconds(clip.audio)
        crop = self.cfg.crop_seconds
        if total is not None and total > crop:
            offset = rng.uniform(0, total - crop)
            x = read_audio(clip.audio, self.cfg.sample_rate, offset, crop)
        else:  # short, or a format that must be decoded whole anyway
            x = read_audio(clip.audio, self.cfg.sample_rate)
            n = len(x) - self.num_samples
            if n > 0:
                start = rng.randrange(n + 1)
                x = x[start : start + self.num_samples]
        return fit_length(x, self.num_samples)

    def _eval_audio(self, clip: Clip) -> np.ndarray:
        x = read_audio(clip.audio, self.cfg.sample_rate)
        if x.size == 0:
            raise AudioDecodeError(f"{clip.audio}: no samples")
        total = len(x) / self.cfg.sample_rate
        crops = []
        for offset in eval_offsets(total, self.cfg.crop_seconds, self.cfg.eval_crops):
            start = round(offset * self.cfg.sample_rate)
            crops.append(fit_length(x[start:], self.num_samples))
        return np.stack(crops)

    def __getitem__(self, index: int) -> dict[str, Any]:
        skipped: list[str] = []
        tried: set[int] = set()
        current = index
        for attempt in range(MAX_REPLACEMENTS):
            tried.add(current)
            rng = sample_rng(self.seed, self.epoch, current, attempt)
            clip = self.clips[current]
            try:
                audio = (
                    self._train_audio(clip, rng)
                    if self.train
                    else self._eval_audio(clip)
                )
            except AudioDecodeError as exc:
                skipped.append(str(exc))
                if len(tried) == len(self.clips):
                    break  # every clip of the split failed
                # Deterministic replacement, so a resumed run replaces identically.
                current = rng.randrange(len(self.clips))
                continue
            if self.train:
                text = self.text_fn(clip, rng) if self.text_fn else eval_caption(clip)
            else:
                text = eval_caption(clip, self.cfg.caption_columns)
            return {
                "audio": audio,
                "text": text,
                "index": current,
                "skipped": len(skipped),
                "skip_reasons": skipped,
            }
        raise DataError(
            f"no readable clip after {len(skipped)} tries (last: {skipped[-1]})"
        )


def collate_eval(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch evaluation items; texts stay strings (tokenised by the caller)."""
    return {
        "audio": torch.from_numpy(np.stack([s["audio"] for s in samples])),
        "texts": [s["text"] for s in samples],
        "index": torch.tensor([s["index"] for s in samples], dtype=torch.long),
        "skipped": sum(s["skipped"] for s in samples),
    }


# --------------------------------------------------------------------------- fixtures


_FIXTURE_STYLES = ("rock", "jazz", "ambient", "classical", "electronic", "folk")
_FIXTURE_INSTRUMENTS = ("piano", "bass", "violin", "flute", "organ", "electric guitar")
# A distinct pitch per instrument, so a toy model has something learnable.
_FIXTURE_PITCH = {
    "piano": 262.0,
    "bass": 82.0,
    "violin": 659.0,
    "flute": 880.0,
    "organ": 392.0,
    "electric guitar": 196.0,
}


def _fixture_audio(
    rng: np.random.Generator, sr: int, seconds: float, inst: list[str], drums: bool
) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    for name in inst:
        f0 = _FIXTURE_PITCH[name]
        x += sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3)) / len(inst)
    if drums:  # noise bursts on a 120 bpm grid
        env = np.exp(-((t % 0.5) * 30.0))
        x += 0.8 * env * rng.standard_normal(t.size)
    x += 0.01 * rng.standard_normal(t.size)
    return (0.8 * x / max(np.abs(x).max(), 1e-6)).astype(np.float32)


def write_fixture(
    out: Path | str,
    n: int = 16,
    *,
    splits: dict[str, float] | None = None,
    sample_rate: int = 16000,
    seconds: float | tuple[float, float] = (1.5, 4.0),
    formats: Sequence[str] = ("wav", "flac", "npy"),
    missing: int = 0,
    corrupt: int = 0,
    seed: int = 0,
) -> Path:
    """Write a tiny data directory in exactly the Contract-3 layout.

    Audio is tones (one pitch per instrument) plus noise bursts for drums, so
    captions and audio agree; the extra `attributes`/`absent`/`pair_*`
    columns are filled like the synthetic corpus does. `missing` rows of the
    train split name files that are never written and `corrupt` rows point
    at garbage bytes, to exercise the skip paths. Returns `out`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import soundfile as sf

    from trainer import vocab

    out = Path(out)
    splits = splits or {"train": 0.5, "valid": 0.25, "test": 0.25}
    rng = np.random.default_rng(seed)
    (out / CAPTIONS_DIR).mkdir(parents=True, exist_ok=True)
    (out / AUDIO_DIR).mkdir(parents=True, exist_ok=True)
    counts = {name: max(1, round(n * share)) for name, share in splits.items()}
    serial = 0
    for split, count in counts.items():
        rows: dict[str, list[Any]] = {k: [] for k in (*LP_COLUMNS, *EXTRA_COLUMNS)}
        for i in range(count):
            style = _FIXTURE_STYLES[serial % len(_FIXTURE_STYLES)]
            k = 1 + int(rng.integers(2))
            inst = sorted(
                rng.choice(_FIXTURE_INSTRUMENTS, size=k, replace=False).tolist()
            )
            drums = bool(rng.integers(2))
            present = [style, *inst] + (["drums"] if drums else [])
            # All else the vocabulary can negate is truly absent (never voices).
            absent = [t for t in vocab.NEGATABLE if t not in present]
            dur = (
                seconds
                if isinstance(seconds, int | float)
                else float(rng.uniform(*seconds))
            )
            fmt = formats[serial % len(formats)]
            rel = f"{serial % 7}/{split}_{serial:05d}.{'mp3' if fmt == 'npy' else fmt}"
            path = out / AUDIO_DIR / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            audio = _fixture_audio(rng, sample_rate, dur, inst, drums)
            bad = split == "train" and i < missing + corrupt
            if bad and i < missing:
                pass  # named in the table, never written
            elif bad:
                path.write_bytes(b"this is not audio" * 64)
            elif fmt == "npy":  # preprocessed twin only: the mp3 itself is absent
                np.save(
                    path.with_suffix(".npy"),
                    _resample(audio, sample_rate, NPY_SAMPLE_RATE),
                )
            else:
                sf.write(str(path), audio, sample_rate)
            inst_words = " and ".join(inst)
            article = "An" if style[0] in "aeiou" else "A"
            drum_words = "with drums" if drums else "without drums"
            rows["track_id"].append(f"TRFIX{serial:06d}")
            rows["title"].append(f"Fixture {serial}")
            rows["artist_name"].append("Test Tones")
            rows["release"].append("Fixtures")
            rows["year"].append(2000 + serial % 20)
            rows["tag"].append(present)
            rows["caption_writing"].append(
                f"{article} {style} piece played on {inst_words}, {drum_words}."
            )
            rows["caption_summary"].append(f"{style} with {inst_words}")
            rows["caption_paraphrase"].append(
                f"This {style} track features {inst_words}."
            )
            rows["caption_attribute_prediction"].append(
                f"{style}, {inst_words}, {drum_words}"
            )
            rows["path"].append(rel)
            rows["attributes"].append(
                json.dumps(
                    {
                        "style": style,
                        "instruments": inst,
                        "lead": inst[0],
                        "drums": drums,
                        "vocals": False,
                        "duration": dur,
                    }
                )
            )
            rows["absent"].append(absent)
            rows["pair_id"].append(None)
            rows["pair_attribute"].append(None)
            rows["base_piece"].append(f"piece{serial:05d}")
            rows["soundfont"].append("none")
            serial += 1
        schema = split_schema()
        pq.write_table(
            pa.table(rows, schema=schema), out / CAPTIONS_DIR / f"{split}.parquet"
        )
    (out / "corpus.json").write_text(
        json.dumps(
            {
                "made_by": "trainer.data.write_fixture",
                "sample_rate": sample_rate,
                "counts": counts,
                "seed": seed,
            },
            indent=2,
        )
    )
    return out
