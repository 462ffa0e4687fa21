"""Decoding: mono windows at the model's rate, spread across each track."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
# otherwise it decodes the whole file in one pass. Seeking skips decoding
# what no window reads, so it wins on long tracks; one pass wins when the
# windows cover much of the track (docs/benchmarks.md).
SEEK_RATIO = 3.0
FFMPEG_ONE_PASS_SECONDS = 1200.0
FFMPEG_TIMEOUT_SECONDS = 300.0
# A file is truncated when it decodes to less than its header declares by
# more than both of these. Headers that are trusted give exact lengths
# (FLAC's sample count, a WAV/AIFF data size, an MP4 duration, an mp3's
# Xing/Info/VBRI frame count; encoder delay and padding are milliseconds),
# so the margin only absorbs junk or a damaged frame at the end. An mp3
# without such a header has an estimated length (file size over the first
# frame's bitrate, off by any factor on VBR files) and is never judged.
TRUNCATED_FRACTION = 0.10
TRUNCATED_SECONDS = 1.0
# How much audio just before the declared end is read to prove the file
# really reaches it (seeking decoders skip everything between windows).
END_PROBE_SECONDS = 0.25
# The largest Ogg page: 27-byte header, 255 lacing values, 255 x 255 bytes.
_OGG_MAX_PAGE = 27 + 255 + 255 * 255
_OGG_SUFFIXES = frozenset({".ogg", ".oga", ".opus"})
# Frames per read when decoding a whole file: libsndfile drops a read that
# hits a decoding error, so small reads keep most of a cut file's audio.
_READ_BLOCK = 4096


class AudioError(Exception):
    """A track that cannot be embedded; the message is a one-line reason."""


class FfmpegMissingError(AudioError):
    """This file needs ffmpeg, which is not installed: the file may be
    fine, so a vector it already has is kept."""


class DecoderUnavailableError(Exception):
    """The decoding environment is broken (a library that cannot be
    imported or does not work): no file can be decoded, so a run stops
    before it records anything. The message is one line."""


def _import_failure(
    module: str, package: str, exc: BaseException
) -> DecoderUnavailableError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return DecoderUnavailableError(
        f"cannot decode audio: {module} does not work ({reason}); "
        f"reinstall it (pip install --force-reinstall {package})"
    )


def _soundfile() -> Any:
    """The soundfile module, or DecoderUnavailableError (it loads libsndfile at
    import: a missing or broken library fails there, as OSError)."""
    try:
        import soundfile
    except Exception as exc:
        raise _import_failure("soundfile", "soundfile", exc) from exc
    return soundfile


def _soxr() -> Any:
    try:
        import soxr
    except Exception as exc:
        raise _import_failure("soxr", "soxr", exc) from exc
    return soxr


def check_decoders() -> None:
    """Prove the decoding libraries work before a run changes anything:
    import them, then write, read back and resample a short tone in
    memory. Raises DecoderUnavailableError with one line naming the culprit."""
    import io

    import numpy as np

    sf = _soundfile()
    soxr = _soxr()
    tone = (0.1 * np.sin(np.arange(4410) * 0.1)).astype(np.float32)
    try:
        buf = io.BytesIO()
        sf.write(buf, tone, 22050, format="WAV")
        buf.seek(0)
        back, _ = sf.read(buf, dtype="float32")
        assert len(back) == len(tone), "wrong length read back"
    except Exception as exc:
        raise _import_failure("soundfile", "soundfile", exc) from exc
    try:
        out = soxr.resample(back, 22050, 16000, quality="HQ")
        assert abs(len(out) - 3200) <= 1, "wrong length resampled"
    except Exception as exc:
        raise _import_failure("soxr", "soxr", exc) from exc


def needs_ffmpeg(path: str) -> bool:
    """Whether libsndfile cannot read this kind of file (by its suffix)."""
    return os.path.splitext(path)[1].lower() not in SOUNDFILE_SUFFIXES


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _is_truncated(decodable: float, declared: float | None) -> bool:
    if declared is None:
        return False
    short = declared - decodable
    return short > TRUNCATED_SECONDS and short > TRUNCATED_FRACTION * declared


def _truncated(declared: float, decodable: float) -> AudioError:
    """A cut file; under a second decodable is as likely a corrupt body
    (a decoder that gives up early), and the message says both."""
    what = (
        "truncated"
        if decodable >= MIN_SECONDS
        else ("unreadable audio (truncated or corrupt)")
    )
    return AudioError(
        f"{what}: header says {_seconds(declared)} s, {_seconds(decodable)} s decodable"
    )


def declared_seconds(path: str) -> float | None:
    """The length the container's header declares, when it is trustworthy
    (see TRUNCATED_FRACTION); None when unknown or only estimated."""
    try:
        import mutagen

        info = mutagen.File(path)
        if info is None:
            return None
        length = float(info.info.length)
        mode = getattr(info.info, "bitrate_mode", None)
    except Exception:  # mutagen raises many unrelated types on odd files
        return None
    if mode is not None and str(mode).endswith("UNKNOWN"):
        return None  # an mp3 without a Xing/Info/VBRI frame count
    return length if length > 0 and math.isfinite(length) else None


def _ogg_cut(path: str) -> bool:
    """Whether the file ends inside an Ogg page (cut short): a complete
    stream ends with a whole page, whose length its header states."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _OGG_MAX_PAGE))
            tail = f.read()
    except OSError:
        return False
    at = tail.rfind(b"OggS")
    if at < 0:
        return False
    header = tail[at : at + 27]
    if len(header) < 27:
        return True
    segments = header[26]
    lacing = tail[at + 27 : at + 27 + segments]
    if len(lacing) < segments:
        return True
    return at + 27 + segments + sum(lacing) > len(tail)


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
    return _soxr().resample(x, src, dst, quality="HQ").astype(np.float32, copy=False)


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


def _check_length(frames: int, rate: int) -> None:
    """Reject too little audio (after the truncation check, so that a cut
    file is reported as truncated rather than short)."""
    if frames <= 0 or not rate:
        raise AudioError(
            "unreadable audio (corrupt or not audio): no audio frames decoded"
        )
    seconds = frames / rate
    if seconds < MIN_SECONDS:
        raise AudioError(
            f"too short ({seconds:.1f} s; at least {MIN_SECONDS:g} s needed)"
        )


def _check_whole(path: str, frames: int, rate: int, declared: float | None) -> None:
    """Checks on a fully decoded file: truncated (against the header, or
    an Ogg stream cut inside a page), then too short. Truncation comes
    first: a cut file's first seconds may be short or quiet."""
    decodable = frames / rate if rate else 0.0
    if declared is not None and _is_truncated(decodable, declared):
        raise _truncated(declared, decodable)
    if os.path.splitext(path)[1].lower() in _OGG_SUFFIXES and _ogg_cut(path):
        raise AudioError(
            "truncated: the file ends inside an Ogg page, "
            f"{_seconds(decodable)} s decodable"
        )
    _check_length(frames, rate)


def segments_from_array(
    mono: np.ndarray, rate: int, window_seconds: float, max_windows: int
) -> list[np.ndarray]:
    window = math.ceil(window_seconds * rate)
    starts = plan_windows(len(mono), window, max_windows, rate)
    return [mono[s : s + window] for s in starts]


def _read_all(sf: Any, path: str) -> tuple[np.ndarray, int]:
    """Every frame libsndfile can decode, from a fresh handle (a failed
    seek leaves the old one unusable), stopping at the first decoding
    error with what came before it."""
    import numpy as np

    parts = []
    with sf.SoundFile(path) as f:
        rate = f.samplerate
        while True:
            try:
                block = f.read(_READ_BLOCK, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError):
                break
            if not len(block):
                break
            parts.append(_mono(block))
    mono = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return mono, rate


def _reaches_end(sf: Any, f: Any, frames: int, rate: int) -> bool:
    """Whether the audio just before the declared end decodes."""
    probe = max(1, round(END_PROBE_SECONDS * rate))
    try:
        f.seek(max(0, frames - probe))
        return len(f.read(probe, dtype="float32")) >= probe // 2
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return False


def _read_soundfile(
    path: str, window_seconds: float, max_windows: int
) -> tuple[list[np.ndarray], int]:
    """Native-rate mono segments read by seeking (only the windows used,
    and a short probe at the declared end to prove the file reaches it);
    a file that does not is decoded whole and checked for truncation."""
    sf = _soundfile()
    declared = declared_seconds(path)
    with sf.SoundFile(path) as f:
        rate, frames = f.samplerate, f.frames
        if declared is None and frames > 0 and not path.lower().endswith(".mp3"):
            # Formats mutagen does not read: libsndfile's count is the header's
            # (an mp3's is estimated unless mutagen found a frame count).
            declared = frames / rate
        window = math.ceil(window_seconds * rate)
        cut_ogg = os.path.splitext(path)[1].lower() in _OGG_SUFFIXES and _ogg_cut(path)
        seeking = f.seekable() and frames > 0 and not cut_ogg
        if seeking and not _is_truncated(frames / rate, declared):
            _check_length(frames, rate)
            segments = []
            for start in plan_windows(frames, window, max_windows, rate):
                try:
                    f.seek(start)
                    part = f.read(
                        min(window, frames - start), dtype="float32", always_2d=True
                    )
                except (sf.LibsndfileError, RuntimeError):
                    break
                segments.append(_mono(part))
                if len(part) < min(window, frames) // 2:
                    break
            else:
                if _reaches_end(sf, f, frames, rate):
                    return segments, rate
    # Not seekable, or the header promised more than the file holds: decode
    # what is really there, then judge it.
    mono, rate = _read_all(sf, path)
    if not len(mono):
        # Nothing at all: a corrupt body rather than a cut one; ffmpeg
        # tries too and names the problem.
        raise RuntimeError("libsndfile decoded no audio")
    _check_whole(path, len(mono), rate, declared)
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
        raise FfmpegMissingError(
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
    """Only the windows' spans (and a short probe before the declared end),
    when the header gives a length that makes seeking worth it; None to
    decode the whole file instead (which also judges truncation)."""
    import numpy as np

    duration = _ffmpeg_duration(path)
    covered = window_seconds * max_windows
    if duration is None or duration <= min(
        FFMPEG_ONE_PASS_SECONDS, SEEK_RATIO * covered
    ):
        return None
    window = math.ceil(window_seconds * sample_rate)
    starts = plan_windows(int(duration * sample_rate), window, max_windows, sample_rate)
    spans = [(s / sample_rate, window_seconds) for s in starts]
    declared = declared_seconds(path)
    if declared is not None:
        # One more window-long span ending just before the declared end (as
        # long as the others, so the split below stays exact).
        end = max(0.0, declared - END_PROBE_SECONDS - window_seconds)
        spans.append((end, window_seconds))
    try:
        pcm = _ffmpeg_pcm(path, sample_rate, spans)
    except AudioError:
        return None  # the whole-file pass gives the clearer error
    if len(pcm) < len(spans) * window // 2:
        return None
    parts = list(np.array_split(pcm, len(spans)))
    if declared is not None and not np.any(parts.pop()):
        # Spans past the end of the audio come back as apad's exact zeros.
        return None
    return parts


def _read_ffmpeg(path: str, sample_rate: int) -> np.ndarray:
    """The whole file at `sample_rate`, mono, checked for length."""
    pcm = _ffmpeg_pcm(path, sample_rate)
    _check_whole(path, len(pcm), sample_rate, declared_seconds(path))
    return pcm


def file_size(path: str) -> int:
    """The size of `path` in bytes; AudioError with the reason an index run
    records when the file cannot be reached at all (missing, no access)."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError as exc:
        raise AudioError("file not found") from exc
    except OSError as exc:
        raise AudioError(f"cannot read file: {exc.strerror or exc}") from exc


def load_windows(
    path: str | bytes | os.PathLike[str],
    sample_rate: int,
    window_seconds: float,
    max_windows: int,
) -> np.ndarray:
    """Decode `path` into at most `max_windows` mono windows [n, S] at
    `sample_rate`, S = round(window_seconds * sample_rate), peak in [-1, 1].

    Raises AudioError with a one-line reason for anything that cannot be
    embedded (missing, empty, unreadable, truncated, too short, silent),
    and DecoderUnavailableError when the decoding libraries themselves fail.
    """
    path = os.fsdecode(path)
    samples = round(window_seconds * sample_rate)
    if max_windows < 1:
        raise ValueError("max_windows must be at least 1")
    size = file_size(path)
    if size == 0:
        raise AudioError("empty file (0 bytes)")

    if not needs_ffmpeg(path):
        sf = _soundfile()
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
