"""The data directory reader: splits, decoding, crops, skipped clips."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from trainer.config import DataConfig
from trainer.data import (
    CAPTION_COLUMNS,
    AudioDecodeError,
    Clip,
    ClipDataset,
    DataError,
    eval_caption,
    read_audio,
    read_split,
)

SR = 16000


def _tone(seconds: float, freq: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _clip(path: Path, tags: list[str] | None = None) -> Clip:
    return Clip(track_id=path.stem, audio=path, tags=tags or ["rock"], captions={})


def test_fixture_split_counts_missing_and_prefers_npy(fixture_data: Path) -> None:
    clips, stats = read_split(fixture_data, "train")
    assert stats.rows == 12
    assert (
        stats.missing_audio == 1
    )  # the corrupt one exists and is only found at decode time
    assert len(clips) == 11
    twins = [c for c in clips if c.audio.suffix == ".npy"]
    assert twins, "fixture rows whose path is .mp3 must resolve to their .npy twin"
    assert all(not c.audio.with_suffix(".mp3").exists() for c in twins)
    first = clips[0]
    assert first.absent
    assert not set(first.absent) & set(first.tags)
    assert first.attributes is not None
    assert first.attributes["style"] in first.tags


def test_published_lp_musiccaps_schema_and_shards_load(tmp_path: Path) -> None:
    """The HF parquet as published: sharded names, no extra columns, null captions."""
    (tmp_path / "captions").mkdir()
    audio_dir = tmp_path / "audio" / "3" / "0"
    audio_dir.mkdir(parents=True)
    sf.write(
        audio_dir / "303545.clip.mp3", _tone(4.0, 440.0, 22050), 22050, format="MP3"
    )
    sf.write(
        audio_dir / "303546.clip.mp3", _tone(4.0, 220.0, 44100), 44100, format="MP3"
    )
    schema = pa.schema(
        [
            ("track_id", pa.string()),
            ("title", pa.string()),
            ("artist_name", pa.string()),
            ("release", pa.string()),
            ("year", pa.int64()),
            ("tag", pa.list_(pa.string())),
            *[(c, pa.string()) for c in CAPTION_COLUMNS],
            ("path", pa.string()),
        ]
    )

    def shard(i: int, rel: str, caption: str | None) -> None:
        row = {
            "track_id": [f"TRAAA{i}"],
            "title": ["t"],
            "artist_name": ["a"],
            "release": ["r"],
            "year": [0],
            "tag": [["Rock", "female vocalists"]],
            "caption_writing": [caption],
            "caption_summary": ["summary"],
            "caption_paraphrase": [None],
            "caption_attribute_prediction": ["attr"],
            "path": [rel],
        }
        name = f"train-0000{i}-of-00003-abc{i}.parquet"
        pq.write_table(pa.table(row, schema=schema), tmp_path / "captions" / name)

    shard(0, "3/0/303545.clip.mp3", "A rock song.")
    shard(1, "3/0/303546.clip.mp3", None)
    shard(2, "3/0/999999.clip.mp3", "missing audio")
    clips, stats = read_split(tmp_path, "train")
    assert (stats.rows, stats.missing_audio, len(clips)) == (3, 1, 2)
    assert clips[0].tags == ["rock", "female vocalists"]
    assert "caption_paraphrase" not in clips[0].captions
    assert (
        "caption_writing" not in clips[1].captions
    )  # null caption dropped, not "None"
    assert clips[0].absent is None
    assert clips[0].attributes is None
    ds = ClipDataset(clips, DataConfig(crop_seconds=2.0), train=True)
    item = ds[1]
    assert item["audio"].shape == (2 * SR,)
    assert item["skipped"] == 0
    assert np.abs(item["audio"]).max() > 0.1
    # The benchmark keeps the row whose audio is missing, to report it.
    kept, kept_stats = read_split(tmp_path, "train", keep_missing_audio=True)
    assert [c.track_id for c in kept] == ["TRAAA0", "TRAAA1", "TRAAA2"]
    assert kept_stats.missing_audio == 1
    assert not kept[2].audio.exists()
    assert kept[2].audio == tmp_path / "audio" / "3/0/999999.clip.mp3"


def test_missing_split_is_a_one_line_error(fixture_data: Path) -> None:
    with pytest.raises(DataError, match=r"no captions/nonexistent\.parquet$"):
        read_split(fixture_data, "nonexistent")


def test_caption_columns_must_be_in_the_split_unless_lp_musiccaps_ones(
    tmp_path: Path,
) -> None:
    """A column asked for that the split lacks used to read as empty: every
    sentence caption gone, silently. LP-MusicCaps' own stay optional."""
    (tmp_path / "captions").mkdir()
    table = pa.table(
        {"path": ["a.wav"], "tag": [["rock"]], "my_caption": ["A rock song."]}
    )
    pq.write_table(table, tmp_path / "captions" / "train.parquet")

    def read(columns: list[str]) -> list[Clip]:
        return read_split(
            tmp_path, "train", caption_columns=columns, keep_missing_audio=True
        )[0]

    assert read(["my_caption"])[0].captions == {"my_caption": "A rock song."}
    assert read(list(CAPTION_COLUMNS))[0].captions == {}  # tags only: loads
    with pytest.raises(DataError) as caught:
        read(["my_caption", "caption_nope"])
    assert str(caught.value) == (
        f"data directory {tmp_path}: train captions have no column 'caption_nope' "
        "to take captions from (its columns: path, tag, my_caption)"
    )


def test_resampling_keeps_pitch_and_duration(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(2.0, 1000.0, 44100), 44100)
    x = read_audio(path, SR)
    assert abs(len(x) - 2 * SR) <= 2
    spectrum = np.abs(np.fft.rfft(x))
    peak_hz = np.argmax(spectrum) * SR / len(x)
    assert abs(peak_hz - 1000.0) < 2.0
    part = read_audio(path, SR, offset=0.5, seconds=1.0)
    assert abs(len(part) - SR) <= 2
    np.testing.assert_allclose(
        part[1000:2000], x[SR // 2 + 1000 : SR // 2 + 2000], atol=2e-3
    )


def test_ffmpeg_fallback_decodes_what_libsndfile_cannot(tmp_path: Path) -> None:
    path = tmp_path / "tone.m4a"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=500:duration=1.5",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
    )
    x = read_audio(path, SR)
    assert abs(len(x) / SR - 1.5) < 0.1
    peak_hz = np.argmax(np.abs(np.fft.rfft(x))) * SR / len(x)
    assert abs(peak_hz - 500.0) < 5.0


def test_int16_npy_is_scaled_to_unit_range(tmp_path: Path) -> None:
    path = tmp_path / "clip.npy"
    np.save(path, (_tone(1.0, 300.0) * 32767).astype(np.int16))
    x = read_audio(path, SR)
    assert x.dtype == np.float32
    assert 0.45 < np.abs(x).max() <= 0.5


def test_short_clip_is_padded_by_repetition(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    audio = (
        np.random.default_rng(0).uniform(-0.5, 0.5, int(1.25 * SR)).astype(np.float32)
    )
    sf.write(path, audio, SR, subtype="FLOAT")
    ds = ClipDataset([_clip(path)], DataConfig(crop_seconds=3.0), train=True)
    x = ds[0]["audio"]
    n = len(audio)
    assert x.shape == (3 * SR,)
    np.testing.assert_array_equal(x[:n], audio)
    np.testing.assert_array_equal(x[n : 2 * n], audio)  # repeated, not zero-padded


def test_training_crops_are_random_but_reproducible(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    ramp = np.linspace(-1, 1, 10 * SR, dtype=np.float32)  # position readable from value
    sf.write(path, ramp, SR, subtype="FLOAT")
    ds = ClipDataset([_clip(path)], DataConfig(crop_seconds=2.0), train=True, seed=3)
    starts = []
    for epoch in range(6):
        ds.epoch = epoch
        a, b = ds[0]["audio"], ds[0]["audio"]
        np.testing.assert_array_equal(a, b)  # same (seed, epoch, index): same crop
        starts.append(int(np.argmin(np.abs(ramp - a[0]))))
    assert len(set(starts)) == 6  # a new crop every epoch
    assert all(0 <= s <= 8 * SR for s in starts)


def test_eval_crops_are_fixed_and_span_the_clip(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    ramp = np.linspace(-1, 1, 9 * SR, dtype=np.float32)
    sf.write(path, ramp, SR, subtype="FLOAT")
    ds = ClipDataset(
        [_clip(path)], DataConfig(crop_seconds=3.0, eval_crops=3), train=False
    )
    crops = ds[0]["audio"]
    assert crops.shape == (3, 3 * SR)
    np.testing.assert_allclose(crops[0][0], ramp[0], atol=1e-6)
    np.testing.assert_allclose(crops[1][0], ramp[3 * SR], atol=1e-4)
    np.testing.assert_allclose(crops[2][-1], ramp[-1], atol=1e-4)
    ds.epoch = 5
    np.testing.assert_array_equal(ds[0]["audio"], crops)


def test_corrupt_clip_is_replaced_and_counted(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    sf.write(good, _tone(3.0, 440.0), SR)
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00garbage" * 100)
    empty_npy = tmp_path / "empty.npy"
    np.save(empty_npy, np.zeros(0, dtype=np.float32))
    clips = [_clip(bad), _clip(good), _clip(empty_npy)]
    ds = ClipDataset(clips, DataConfig(crop_seconds=2.0), train=True)
    item = ds[0]
    assert item["skipped"] >= 1
    assert item["index"] != 0
    assert str(bad) in item["skip_reasons"][0]
    assert item["audio"].shape == (2 * SR,)
    assert ds[2]["skipped"] >= 1  # an empty array is no clip either


def test_all_clips_unreadable_fails_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEnonsense")
    ds = ClipDataset([_clip(bad)], DataConfig(crop_seconds=1.0), train=True)
    with pytest.raises(
        DataError, match=r"^no readable clip after 1 tries \(last: .*bad\.wav"
    ):
        ds[0]
    with pytest.raises(AudioDecodeError):
        read_audio(bad, SR)


def test_eval_caption_prefers_configured_columns(fixture_data: Path) -> None:
    clips, _ = read_split(fixture_data, "valid")
    clip = clips[0]
    assert eval_caption(clip) == clip.captions["caption_writing"]
    assert eval_caption(clip, ["caption_summary"]) == clip.captions["caption_summary"]
    assert eval_caption(Clip("x", clip.audio, ["jazz", "piano"], {})) == "jazz, piano"
