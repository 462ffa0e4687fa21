"""The rendered corpus: layout, columns, splits, soundfonts, captions, determinism."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from trainer import vocab
from trainer.data import EXTRA_COLUMNS, LP_COLUMNS
from trainer.synth import main as synth_main
from trainer.synth.captions import clip_tags
from trainer.synth.corpus import SPLITS, CorpusConfig, build_corpus
from trainer.synth.labels import present_terms


def _rows(corpus: Path) -> list[dict]:
    return [
        dict(r, split=s)
        for s in SPLITS
        for r in pq.read_table(corpus / "captions" / f"{s}.parquet").to_pylist()
    ]


def test_parquet_columns_exactly_as_the_contract(corpus: Path) -> None:
    for split in SPLITS:
        schema = pq.read_schema(corpus / "captions" / f"{split}.parquet")
        assert schema.names == [*LP_COLUMNS, *EXTRA_COLUMNS]
        assert schema.field("year").type == pa.int64()
        assert schema.field("tag").type == pa.list_(pa.string())
        assert schema.field("absent").type == pa.list_(pa.string())
        for name in (
            "track_id",
            "title",
            "artist_name",
            "release",
            "path",
            "attributes",
            "pair_id",
            "pair_attribute",
            "base_piece",
            "soundfont",
            *LP_COLUMNS[6:10],
        ):
            assert schema.field(name).type == pa.string(), name


def test_audio_files_are_16k_mono_flac(corpus: Path) -> None:
    rows = _rows(corpus)
    assert len(rows) == 16
    for row in rows:
        path = corpus / "audio" / row["path"]
        assert row["path"] == f"{row['split']}/{row['track_id']}.flac"
        info = sf.info(path)
        assert (info.format, info.subtype, info.samplerate, info.channels) == (
            "FLAC",
            "PCM_16",
            16000,
            1,
        )
        assert info.frames == 4 * 16000
        audio, _ = sf.read(path)
        assert np.sqrt(np.mean(audio**2)) > 10 ** (-35 / 20)  # sounding, not silence
        assert np.abs(audio).max() <= 0.99


def test_splits_hold_out_whole_base_pieces(corpus: Path) -> None:
    rows = _rows(corpus)
    split_of_piece: dict[str, set[str]] = {}
    for row in rows:
        split_of_piece.setdefault(row["base_piece"], set()).add(row["split"])
    assert all(len(s) == 1 for s in split_of_piece.values())
    pairs: dict[str, list[dict]] = {}
    for row in rows:
        if row["pair_id"]:
            pairs.setdefault(row["pair_id"], []).append(row)
    assert pairs
    assert all(len(m) == 2 and m[0]["split"] == m[1]["split"] for m in pairs.values())
    assert {r["split"] for r in rows} == set(SPLITS)


def test_soundfonts_recorded_and_shift_split_only_timgm(corpus: Path) -> None:
    rows = _rows(corpus)
    for row in rows:
        attrs = json.loads(row["attributes"])
        assert attrs["soundfont"] == row["soundfont"]
        assert row["soundfont"] == (
            "TimGM6mb" if row["split"] == "test_shift" else "FluidR3_GM"
        )
    summary = json.loads((corpus / "corpus.json").read_text())
    assert summary["soundfonts"]["TimGM6mb"]["splits"] == ["test_shift"]
    assert summary["soundfonts"]["FluidR3_GM"]["splits"] == ["test", "train", "valid"]
    assert summary["clips"] == 16
    assert summary["seed"] == 7
    assert summary["sample_rate"] == 16000
    assert {s: v["clips"] for s, v in summary["splits"].items()} == {
        s: sum(r["split"] == s for r in rows) for s in SPLITS
    }
    assert summary["render"]["clips_per_minute"] > 0
    assert summary["render"]["cpu_seconds_per_clip"] > 0


def test_pairs_flip_exactly_one_attribute(corpus: Path) -> None:
    rows = _rows(corpus)
    kinds = set()
    for pair_id in {r["pair_id"] for r in rows if r["pair_id"]}:
        a, b = sorted(
            (r for r in rows if r["pair_id"] == pair_id), key=lambda r: r["track_id"]
        )
        attr = a["pair_attribute"]
        assert attr == b["pair_attribute"]
        assert pair_id.endswith(attr)
        term = attr.split(":", 1)[1] if attr.startswith("instrument:") else attr
        kinds.add(attr.split(":")[0])
        assert term in a["tag"]
        assert term not in b["tag"]
        assert term in b["absent"]
        assert term not in a["absent"]
        extra = {"choir"} if term == "vocals" else set()
        assert set(a["tag"]) - set(b["tag"]) <= {term} | extra
        assert set(b["tag"]) <= set(a["tag"])
        attrs_a, attrs_b = json.loads(a["attributes"]), json.loads(b["attributes"])
        same = {k for k in attrs_a if attrs_a[k] == attrs_b[k]}
        assert {
            "style",
            "tempo_bpm",
            "key",
            "mode",
            "mood",
            "energy",
            "gain_db",
        } <= same
    assert kinds == {"drums", "vocals", "instrument"}


NEGATION_PATTERNS = ("no {}", "without {}", "without any {}", "not {}", "{}-free")


def test_captions_mention_present_and_never_negate_them(corpus: Path) -> None:
    negated_somewhere = 0
    for row in _rows(corpus):
        attrs = json.loads(row["attributes"])
        assert row["tag"] == clip_tags(attrs)
        present = present_terms(row["tag"]) | {attrs["style"]}
        assert not set(row["absent"]) & present
        writing = row["caption_writing"].lower()
        for term in (
            [attrs["style"], *attrs["instruments"]]
            + ["drums"] * attrs["drums"]
            + ["vocals"] * attrs["vocals"]
        ):
            assert term in writing, (term, writing)
        captions = [row[c].lower() for c in LP_COLUMNS[6:10]]
        for text in captions:
            for term in present:
                for pattern in NEGATION_PATTERNS:
                    assert not re.search(
                        r"\b" + re.escape(pattern.format(term)) + r"\b", text
                    ), (term, text)
            if attrs["vocals"]:
                assert "instrumental" not in text
            for term in vocab.NEGATABLE:
                if re.search(
                    r"\b(no|without|without any) " + re.escape(term) + r"\b", text
                ):
                    negated_somewhere += 1
                    assert term in row["absent"], (term, text)
    assert negated_somewhere > 0  # true negations do occur


def _corpus_arrays(out: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    rows = _rows(out)
    return rows, {r["track_id"]: sf.read(out / "audio" / r["path"])[0] for r in rows}


def test_same_seed_same_corpus_regardless_of_workers(tmp_path: Path) -> None:
    base = CorpusConfig(
        out=tmp_path / "one", clips=4, seed=21, pair_share=0.5, duration=3.0, workers=1
    )
    build_corpus(base)
    build_corpus(dataclasses.replace(base, out=tmp_path / "two", workers=2))
    build_corpus(dataclasses.replace(base, out=tmp_path / "other", seed=22))
    rows_1, audio_1 = _corpus_arrays(tmp_path / "one")
    rows_2, audio_2 = _corpus_arrays(tmp_path / "two")
    rows_3, _ = _corpus_arrays(tmp_path / "other")
    assert rows_1 == rows_2
    assert audio_1.keys() == audio_2.keys()
    for key in audio_1:
        np.testing.assert_array_equal(audio_1[key], audio_2[key])
    assert [r["caption_writing"] for r in rows_1] != [
        r["caption_writing"] for r in rows_3
    ]


def test_cli_writes_corpus_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "cli"
    argv = [
        "--out",
        str(out),
        "--clips",
        "2",
        "--seed",
        "5",
        "--duration",
        "3",
        "--workers",
        "1",
        "--pair-share",
        "0",
        "--quiet",
    ]
    assert synth_main(argv) == 0
    assert "synth: wrote 2 clips" in capsys.readouterr().out
    before = sorted(p.name for p in (out / "captions").iterdir())
    assert synth_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"synth: error: {out} already holds a corpus (corpus.json); "
        "choose another --out"
    )
    assert sorted(p.name for p in (out / "captions").iterdir()) == before
    assert synth_main(["--out", str(tmp_path / "x"), "--clips", "0"]) == 2
    assert capsys.readouterr().err.strip() == "synth: error: --clips must be at least 1"
