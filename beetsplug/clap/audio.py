"""Decoding: mono windows at the model's rate, spread across each track."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Shorter tracks are rejected: a sound effect under a second says little about
# music, and repeating it to fill a window would mostly embed the repetition.
MIN_SECONDS = 1.0
# Windows whose RMS is below -70 dBFS count as silence; a track whose every
# window is silent is an error rather than a vector of noise floor.
SILENCE_RMS = 10 ** (-70 / 20)
# Skip this share of the track at each end (intros, fades, trailing silence),
# at most EDGE_MAX_SECONDS, when the rest still holds a window.
EDGE_FRACTION = 0.05
EDGE_MAX_SECONDS = 10.0
# libsndfile decodes these itself (mp3 through mpg123, opus through libopus);
# everything else goes to ffmpeg.
SOUNDFILE_SUFFIXES = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".mp3",
        ".ogg",
        ".oga",
        ".opus",
        ".aiff",
        ".aif",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
    }
)
# ffmpeg seeks to each window (one process, one input per window) when the
# track is longer than SEEK_RATIO times what the windows cover, or longer
# than FFMPEG_ONE_PASS_SECONDS whatever the windows (bounding memory);
# otherwise it decodes the whole file in one pass. A 3-minute m4a: ~0.4 s
# decoded whole, ~0.1 s for two seeked windows.
SEEK_RATIO = 3.0
FFMPEG_ONE_PASS_SECONDS = 1200.0
FFMPEG_TIMEOUT_SECONDS = 300.0


class AudioError(Exception):
    """A track that cannot be embedded; the message is a one-line reason."""


def pool_embeddings(emb: np.ndarray) -> np.ndarray:
    """One vector for a track: the mean of its windows, L2-normalised."""
    from .model import l2_normalize

    return l2_normalize(emb.mean(axis=0, keepdims=True))[0]


def plan_windows(total: int, window: int, max_windows: int, rate: float) -> list[int]:
    """Start offsets (in samples) of up to `max_windows` windows of `window`
    samples spread evenly over a track of `total` samples.

    The edges are skipped when what is left still holds a window, so a long
    intro or fade-out does not dominate the pooled vector.
    """
    if total <= window:
        return [0]
    margin = int(min(EDGE_FRACTION * total, EDGE_MAX_SECONDS * rate))
    lo, hi = margin, total - margin
    if hi - lo < window:
        lo, hi = 0, total
    count = max(1, min(max_windows, (hi - lo) // window))
    if count == 1:
        return [lo + (hi - lo - window) // 2]
    step = (hi - lo - window) / (count - 1)
    return [lo + round(i * step) for i in range(count)]


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    """Exactly `length` samples: trimmed, or repeated to fill (short tracks)."""
    import numpy as np

    if len(x) >= length:
        return x[:length]
    return np.resize(x, length)  # np.resize repeats the data cyclically


def _mono(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1) if x.ndim == 2 else x


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    import numpy as np

    if src == dst or len(x) == 0:
        return np.asarray(x, np.float32)
    import soxr

    return soxr.resample(x, src, dst, quality="HQ").astype(np.float32, copy=False)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def _finish(
    segments: list[np.ndarray], native_rate: int, sample_rate: int, samples: int
) -> np.ndarray:
    """Resample native-rate mono segments, fit them to `samples`, drop
    silent windows, and clip to [-1, 1] as the contract promises."""
    import numpy as np

    out = []
    for seg in segments:
        win = _fit(_resample(seg, native_rate, sample_rate), samples)
        out.append(win)
    windows = np.clip(np.stack(out), -1.0, 1.0).astype(np.float32)
    rms = np.sqrt(np.mean(np.square(windows, dtype=np.float64), axis=1))
    loud = rms >= SILENCE_RMS
    if not loud.any():
        raise AudioError("silent (every window below -70 dBFS)")
    return windows[loud]


def _check_length(frames: int, rate: int, promised: float | None = None) -> None:
    """Reject too little audio: "too short" for a short track, "truncated or
    corrupt" when the header (`promised` seconds) said there was more."""
    if frames <= 0 or not rate:
        raise AudioError(
            "unreadable audio (corrupt or not audio): no audio frames decoded"
        )
    seconds = frames / rate
    if seconds >= MIN_SECONDS:
        return
    if promised is not None and promised >= MIN_SECONDS:
        raise AudioError(
            "unreadable audio (truncated or corrupt): "
            f"header says {promised:.1f} s, only {seconds:.1f} s decodable"
        )
    raise AudioError(f"too short ({seconds:.1f} s; at least {MIN_SECONDS:g} s needed)")


def segments_from_array(
    mono: np.ndarray, rate: int, window_seconds: float, max_windows: int
) -> list[np.ndarray]:
    """The native-rate segments `plan_windows` picks from a decoded mono array."""
    window = math.ceil(window_seconds * rate)
    starts = plan_windows(len(mono), window, max_windows, rate)
    return [mono[s : s + window] for s in starts]


def _read_soundfile(
    path: str, window_seconds: float, max_windows: int
) -> tuple[list[np.ndarray], int]:
    """Native-rate mono segments read by seeking (only the windows used)."""
    import soundfile as sf

    with sf.SoundFile(path) as f:
        rate, frames = f.samplerate, f.frames
        window = math.ceil(window_seconds * rate)
        if not f.seekable() or frames <= 0:
            mono = _mono(f.read(dtype="float32", always_2d=True))
            _check_length(len(mono), rate)
            return segments_from_array(mono, rate, window_seconds, max_windows), rate
        _check_length(frames, rate)
        segments = []
        for start in plan_windows(frames, window, max_windows, rate):
            f.seek(start)
            segments.append(
                _mono(
                    f.read(min(window, frames - start), dtype="float32", always_2d=True)
                )
            )
        if all(len(s) >= min(window, frames) // 2 for s in segments):
            return segments, rate
        # The header promised more frames than the file holds (a truncated
        # file): decode what is really there and plan again.
        f.seek(0)
        mono = _mono(f.read(dtype="float32", always_2d=True))
    _check_length(len(mono), rate, promised=frames / rate)
    return segments_from_array(mono, rate, window_seconds, max_windows), rate


def _ffmpeg_duration(path: str) -> float | None:
    """Track length from the container header, without decoding."""
    try:
        import mutagen

        info = mutagen.File(path)
        length = float(info.info.length) if info is not None else 0.0
    except Exception:  # mutagen raises many unrelated types on odd files
        return None
    return length if length > 0 else None


def _ffmpeg_pcm(
    path: str,
    sample_rate: int,
    spans: Sequence[tuple[float, float]] = (),
) -> np.ndarray:
    """Mono float32 PCM at `sample_rate` from ffmpeg: the whole file, or the
    given (start, seconds) spans one after the other, each padded or cut to
    exactly its length (one process, one seeking input per span)."""
    import numpy as np

    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioError(
            "unreadable audio: libsndfile cannot decode it and ffmpeg is not installed"
        )
    cmd = [exe, "-v", "error", "-nostdin"]
    for start, seconds in spans:
        cmd += ["-ss", f"{start:.3f}", "-t", f"{seconds:.3f}", "-i", path]
    if spans:
        trims = ";".join(
            f"[{i}:a:0]apad=whole_dur={sec:.3f},atrim=duration={sec:.3f}[w{i}]"
            for i, (_, sec) in enumerate(spans)
        )
        joined = "".join(f"[w{i}]" for i in range(len(spans)))
        cmd += [
            "-filter_complex",
            f"{trims};{joined}concat=n={len(spans)}:v=0:a=1[out]",
            "-map",
            "[out]",
        ]
    else:
        cmd += ["-i", path, "-map", "0:a:0", "-vn"]
    # Two channels out (mono is duplicated, surround downmixed by ffmpeg),
    # averaged here: ffmpeg's own stereo-to-mono adds the channels at -3 dB,
    # which would make the same song louder than through libsndfile.
    cmd += ["-ac", "2", "-ar", str(sample_rate), "-f", "f32le", "-"]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(
            f"unreadable audio: ffmpeg took over {FFMPEG_TIMEOUT_SECONDS:g} s"
        ) from exc
    if proc.returncode != 0:
        detail = _last_line(proc.stderr.decode("utf-8", "replace"))
        # ffmpeg prefixes the message with the path, which the caller knows.
        detail = detail.removeprefix(f"{path}: ")
        raise AudioError(f"unreadable audio (corrupt or not audio): {detail}")
    usable = len(proc.stdout) - len(proc.stdout) % 8
    stereo = np.frombuffer(proc.stdout[:usable], dtype="<f4").reshape(-1, 2)
    return stereo.mean(axis=1, dtype=np.float32)


def _seeked_ffmpeg(
    path: str, sample_rate: int, window_seconds: float, max_windows: int
) -> list[np.ndarray] | None:
    """Only the windows' spans, when the header gives a length that makes
    seeking worth it; None to decode the whole file instead."""
    import numpy as np

    duration = _ffmpeg_duration(path)
    covered = window_seconds * max_windows
    if duration is None or duration <= min(
        FFMPEG_ONE_PASS_SECONDS, SEEK_RATIO * covered
    ):
        return None
    window = math.ceil(window_seconds * sample_rate)
    starts = plan_windows(int(duration * sample_rate), window, max_windows, sample_rate)
    try:
        pcm = _ffmpeg_pcm(
            path, sample_rate, [(s / sample_rate, window_seconds) for s in starts]
        )
    except AudioError:
        return None  # the whole-file pass gives the clearer error
    if len(pcm) < len(starts) * window // 2:
        return None
    return list(np.array_split(pcm, len(starts)))


def _read_ffmpeg(path: str, sample_rate: int) -> np.ndarray:
    """The whole file at `sample_rate`, mono, checked for length."""
    pcm = _ffmpeg_pcm(path, sample_rate)
    _check_length(len(pcm), sample_rate, promised=_ffmpeg_duration(path))
    return pcm


def load_windows(
    path: str | bytes | os.PathLike[str],
    sample_rate: int,
    window_seconds: float,
    max_windows: int,
) -> np.ndarray:
    """Decode `path` into at most `max_windows` mono windows [n, S] at
    `sample_rate`, S = round(window_seconds * sample_rate), peak in [-1, 1].

    Raises AudioError with a one-line reason for anything that cannot be
    embedded (missing, empty, unreadable, too short, silent).
    """
    path = os.fsdecode(path)
    samples = round(window_seconds * sample_rate)
    if max_windows < 1:
        raise ValueError("max_windows must be at least 1")
    try:
        size = os.stat(path).st_size
    except FileNotFoundError as exc:
        raise AudioError("file not found") from exc
    except OSError as exc:
        raise AudioError(f"cannot read file: {exc.strerror or exc}") from exc
    if size == 0:
        raise AudioError("empty file (0 bytes)")

    suffix = os.path.splitext(path)[1].lower()
    if suffix in SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            segments, rate = _read_soundfile(path, window_seconds, max_windows)
            return _finish(segments, rate, sample_rate, samples)
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError):
            # libsndfile refused it: some variants (or misnamed files) are
            # still decodable by ffmpeg, whose error messages are also the
            # clearer ones when neither can read the file.
            pass
    seeked = _seeked_ffmpeg(path, sample_rate, window_seconds, max_windows)
    if seeked is not None:
        try:
            return _finish(seeked, sample_rate, sample_rate, samples)
        except AudioError:
            pass  # e.g. a header longer than the audio: every span silent
    pcm = _read_ffmpeg(path, sample_rate)
    return _finish(
        segments_from_array(pcm, sample_rate, window_seconds, max_windows),
        sample_rate,
        sample_rate,
        samples,
    )
