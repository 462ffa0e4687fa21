"""Decoding every format into windows, and every kind of bad file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from clap_helpers import FORMATS, HIGH_HZ, LOW_HZ, MID_HZ, signal_for, write_audio

from beetsplug.clap import audio
from beetsplug.clap.audio import AudioError, load_windows, plan_windows, pool_embeddings

RATE = 16000


def dominant_hz(window: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(window))
    return float(np.fft.rfftfreq(len(window), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_to_mono_windows_at_the_model_rate(
    corpus: dict[str, Path], fmt: str
) -> None:
    # 5 s of a 150 Hz tone, 44.1 kHz stereo (opus: 48 kHz).
    windows = load_windows(corpus[fmt], RATE, 1.0, 4)
    assert windows.dtype == np.float32
    assert windows.shape == (4, RATE)
    assert np.abs(windows).max() <= 1.0
    for window in windows:
        assert dominant_hz(window) == pytest.approx(LOW_HZ, abs=2)
    # Stereo is averaged, not summed: the 0.4 sine keeps its level (lossy
    # codecs ring a little).
    rms = np.sqrt(np.mean(windows**2))
    assert rms == pytest.approx(0.4 / np.sqrt(2), rel=0.12)


def test_windows_are_spread_across_the_track(tmp_path: Path) -> None:
    # 4 s low, 4 s mid, 4 s high: three windows must see all three parts.
    parts = [signal_for(k, 4.0, 22050) for k in ("low", "mid", "high")]
    path = write_audio(tmp_path / "steps.flac", data=np.concatenate(parts), rate=22050)
    windows = load_windows(path, RATE, 1.0, 3)
    assert [round(dominant_hz(w)) for w in windows] == [
        round(LOW_HZ),
        round(MID_HZ),
        round(HIGH_HZ),
    ]


def test_plan_windows_skips_edges_and_never_overruns() -> None:
    rate = 100
    total, window = 100 * rate, 3 * rate
    starts = plan_windows(total, window, 8, rate)
    assert len(starts) == 8
    assert starts == sorted(starts)
    assert starts[0] >= 0.05 * total  # intro skipped
    assert starts[-1] + window <= 0.95 * total  # fade-out skipped
    assert plan_windows(total, window, 1, rate) == [(total - window) // 2]
    # A track that only just holds a window uses all of it.
    assert plan_windows(window + 10, window, 8, rate) == [5]
    assert plan_windows(window - 1, window, 8, rate) == [0]


def test_max_windows_bounds_the_count(corpus: dict[str, Path]) -> None:
    assert load_windows(corpus["wav"], RATE, 1.0, 2).shape == (2, RATE)
    # A 5 s track holds at most four 1 s windows inside its edges.
    assert len(load_windows(corpus["wav"], RATE, 1.0, 50)) == 4


def test_short_track_is_repeated_to_fill_a_window(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "short.wav", "low", seconds=1.5, rate=RATE)
    windows = load_windows(path, RATE, 3.0, 4)
    assert windows.shape == (1, 3 * RATE)
    n = int(1.5 * RATE)
    np.testing.assert_allclose(windows[0, :n], windows[0, n : 2 * n], atol=1e-6)


def test_silent_windows_are_dropped_when_others_have_sound(tmp_path: Path) -> None:
    data = np.concatenate(
        [signal_for("silent", 6.0, RATE), signal_for("low", 6.0, RATE)]
    )
    windows = load_windows(
        write_audio(tmp_path / "half.wav", data=data, rate=RATE), RATE, 1.0, 4
    )
    assert 0 < len(windows) < 4
    assert all(dominant_hz(w) == pytest.approx(LOW_HZ, abs=2) for w in windows)


def test_pool_embeddings_is_unit_mean_and_zero_safe() -> None:
    pooled = pool_embeddings(np.array([[1.0, 0.0], [0.0, 1.0]], np.float32))
    np.testing.assert_allclose(pooled, [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)
    zero = pool_embeddings(np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32))
    np.testing.assert_allclose(zero, [0.0, 0.0])


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.flac", r"^file not found$"),
        (lambda d: _bytes(d / "zero.mp3", b""), r"^empty file \(0 bytes\)$"),
        (
            lambda d: write_audio(d / "short.wav", "low", seconds=0.5),
            r"^too short \(0\.5 s; at least 1 s needed\)$",
        ),
        (
            lambda d: write_audio(d / "silent.flac", "silent", seconds=5.0),
            r"^silent \(every window below -70 dBFS\)$",
        ),
        (
            lambda d: _bytes(d / "notes.mp3", b"not audio at all\n" * 200),
            r"^unreadable audio \(corrupt or not audio\): ",
        ),
        (
            lambda d: _bytes(d / "notes.m4a", b"not audio at all\n" * 200),
            r"^unreadable audio \(corrupt or not audio\): ",
        ),
    ],
    ids=["missing", "zero-byte", "half-second", "silent", "text-as-mp3", "text-as-m4a"],
)
def test_bad_files_give_one_line_reasons(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(AudioError, match=message) as info:
        load_windows(make(tmp_path), RATE, 1.0, 4)
    assert "\n" not in str(info.value)


def test_corrupt_flac_body_is_unreadable(tmp_path: Path) -> None:
    good = write_audio(tmp_path / "good.flac", "low", seconds=5.0)
    data = bytearray(good.read_bytes())
    rng = np.random.default_rng(0)
    data[200:] = rng.integers(0, 256, len(data) - 200, dtype=np.uint8).tobytes()
    bad = _bytes(tmp_path / "corrupt.flac", bytes(data))
    with pytest.raises(AudioError, match=r"^unreadable audio"):
        load_windows(bad, RATE, 1.0, 4)


def _cut(path: Path, keep: float | int) -> Path:
    """A copy of `path` cut to `keep` bytes (an int) or that share of them."""
    data = path.read_bytes()
    size = keep if isinstance(keep, int) else int(len(data) * keep)
    return _bytes(path.with_name(f"cut-{path.name}"), data[:size])


def _ffmpeg_mp3(src: Path, dst: Path, *extra: str) -> Path:
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(src)]
    subprocess.run([*cmd, "-c:a", "libmp3lame", *extra, str(dst)], check=True)
    return dst


@pytest.mark.parametrize("fmt", ["flac", "mp3", "wav", "aiff"])
def test_a_file_cut_short_is_truncated_by_its_header(tmp_path: Path, fmt: str) -> None:
    # 40 s of tone cut to 30 %: what survives decodes, but the header knows
    # (FLAC's sample count, the mp3's Xing frame count, the data size).
    good = write_audio(tmp_path / f"good.{fmt}", "high", seconds=40.0, rate=RATE)
    with pytest.raises(AudioError) as info:
        load_windows(_cut(good, 0.3), RATE, 1.0, 4)
    message = str(info.value)
    assert message.startswith("truncated: header says 40 s, 1"), message
    assert message.endswith(" s decodable"), message


@pytest.mark.parametrize("fmt", ["ogg", "opus"])
def test_an_ogg_stream_cut_inside_a_page_is_truncated(tmp_path: Path, fmt: str) -> None:
    # Ogg declares no length: a cut shows as a last page the file does not
    # hold completely. Cut 100 bytes into a page to be sure of that.
    good = write_audio(tmp_path / f"good.{fmt}", "high", seconds=40.0, rate=RATE)
    data = good.read_bytes()
    page = data.find(b"OggS", len(data) // 3)
    cut = _cut(good, page + 100)
    with pytest.raises(
        AudioError,
        match=r"^truncated: the file ends inside an Ogg page, 1\d s decodable$",
    ):
        load_windows(cut, RATE, 1.0, 4)


def test_a_cut_beyond_the_last_window_is_still_truncated(tmp_path: Path) -> None:
    # One window from the middle decodes fine; the probe before the
    # declared end is what finds the cut.
    good = write_audio(tmp_path / "good.flac", "high", seconds=40.0, rate=RATE)
    assert len(load_windows(good, RATE, 1.0, 1)) == 1
    with pytest.raises(AudioError, match=r"^truncated: header says 40 s, 3\d s"):
        load_windows(_cut(good, 0.8), RATE, 1.0, 1)


def test_a_small_cut_with_a_quiet_start_is_truncated_not_silent(
    tmp_path: Path,
) -> None:
    quiet_start = np.concatenate(
        [signal_for("silent", 20.0, 44100), signal_for("high", 180.0, 44100)]
    )
    good = write_audio(tmp_path / "good.flac", data=quiet_start, rate=44100)
    with pytest.raises(AudioError, match=r"^truncated: header says 200 s, ") as info:
        load_windows(_cut(good, 10_000 * 20), RATE, 1.0, 4)
    assert "silent" not in str(info.value)
    with pytest.raises(AudioError, match=r"truncated.*: header says 200 s, "):
        load_windows(_cut(good, 10_000), RATE, 1.0, 4)


def test_vbr_mp3s_are_not_mistaken_for_truncated(tmp_path: Path) -> None:
    # Real VBR files: a quiet minute then loud noise makes the bitrate swing
    # from the lowest to the highest. With a Xing header the length is
    # exact; without one it is only an estimate from the first (quiet,
    # low-bitrate) frame, far beyond the real length, and is not judged.
    rate = 44100
    music = np.concatenate(
        [signal_for("silent", 60.0, rate), signal_for("noise", 30.0, rate)]
    )
    src = write_audio(tmp_path / "src.wav", data=music, rate=rate)
    xing = _ffmpeg_mp3(src, tmp_path / "xing.mp3", "-q:a", "2")
    bare = _ffmpeg_mp3(src, tmp_path / "bare.mp3", "-q:a", "2", "-write_xing", "0")
    assert audio.declared_seconds(str(xing)) == pytest.approx(90.0, abs=0.1)
    assert audio.declared_seconds(str(bare)) is None
    for path in (xing, bare):
        assert len(load_windows(path, RATE, 1.0, 4)) >= 1
    # The Xing-less file cut short cannot be told from a short one: its
    # windows come from what is there.
    assert len(load_windows(_cut(bare, 0.5), RATE, 1.0, 4)) >= 1


def test_seeking_decodes_only_the_windows_and_the_end_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A good FLAC is never decoded whole: the whole-file reader is not used.
    good = write_audio(tmp_path / "good.flac", "high", seconds=40.0, rate=RATE)
    calls: list[str] = []
    real = audio._read_all
    monkeypatch.setattr(
        audio, "_read_all", lambda sf, path: calls.append(path) or real(sf, path)
    )
    assert len(load_windows(good, RATE, 1.0, 4)) == 4
    assert calls == []
    with pytest.raises(AudioError, match=r"^truncated"):
        load_windows(_cut(good, 0.5), RATE, 1.0, 4)
    assert len(calls) == 1


def test_truncated_to_the_header_is_unreadable(tmp_path: Path) -> None:
    good = write_audio(tmp_path / "good.mp3", "low", seconds=30.0)
    cut = _bytes(tmp_path / "cut.mp3", good.read_bytes()[:1500])
    with pytest.raises(AudioError, match=r"^unreadable audio") as info:
        load_windows(cut, RATE, 1.0, 4)
    assert "\n" not in str(info.value)


def test_long_tracks_without_libsndfile_support_seek_per_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lower the one-pass limit so a short m4a takes the per-window path.
    monkeypatch.setattr(audio, "FFMPEG_ONE_PASS_SECONDS", 5.0)
    parts = [signal_for(k, 4.0, 22050) for k in ("low", "mid", "high")]
    path = write_audio(tmp_path / "steps.m4a", data=np.concatenate(parts), rate=22050)
    windows = load_windows(path, RATE, 1.0, 3)
    assert [round(dominant_hz(w), -1) for w in windows] == [150, 800, 3000]


def test_wav_with_wrong_suffix_is_still_read(tmp_path: Path) -> None:
    # libsndfile sniffs the content; the suffix only picks the first decoder.
    path = tmp_path / "really-wav.m4a"
    sf.write(path, signal_for("low", 3.0, RATE), RATE, format="WAV")
    assert load_windows(path, RATE, 1.0, 2).shape == (2, RATE)


def test_ffmpeg_seeks_to_the_windows_of_a_long_track(tmp_path: Path) -> None:
    # 24 s with three 1 s windows: over SEEK_RATIO times what they cover,
    # so ffmpeg reads only the windows' spans, in one process.
    parts = [signal_for(k, 8.0, 22050) for k in ("low", "mid", "high")]
    path = write_audio(tmp_path / "long.m4a", data=np.concatenate(parts), rate=22050)
    seeked = audio._seeked_ffmpeg(str(path), RATE, 1.0, 3)
    assert seeked is not None
    assert [len(s) for s in seeked] == [RATE] * 3
    windows = load_windows(path, RATE, 1.0, 3)
    assert [round(dominant_hz(w), -1) for w in windows] == [150, 800, 3000]
    # The same spans as a whole-file decode (up to the codec's priming
    # offset, which shifts the phase, not the content or its level).
    whole = audio.segments_from_array(audio._read_ffmpeg(str(path), RATE), RATE, 1.0, 3)
    for a, b in zip(seeked, whole, strict=True):
        assert dominant_hz(a) == pytest.approx(dominant_hz(b), abs=2)
        assert np.std(a) == pytest.approx(np.std(b), rel=0.05)
