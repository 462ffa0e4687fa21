"""Planning and composition: labels are consistent before any audio exists."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from trainer import vocab
from trainer.synth import styles
from trainer.synth.compose import PieceSpec, compose, pair_candidates
from trainer.synth.corpus import CorpusConfig, plan
from trainer.synth.labels import absent_terms, present_terms


def _config(**kw) -> CorpusConfig:
    return CorpusConfig(out=Path("/nonexistent"), **{"clips": 600, "seed": 3, **kw})


def test_plan_counts_splits_and_soundfonts() -> None:
    specs = plan(_config())
    clips = sum(2 if s.pair else 1 for s in specs)
    assert clips == 600
    by_split = Counter(s.split for s in specs)
    assert set(by_split) == {"train", "valid", "test", "test_shift"}
    assert by_split["test_shift"] == round(len(specs) * 0.1)
    assert by_split["train"] > 6 * by_split["test"]
    assert {s.soundfont for s in specs if s.split == "test_shift"} == {"TimGM6mb"}
    assert {s.soundfont for s in specs if s.split != "test_shift"} == {"FluidR3_GM"}
    assert set(Counter(s.style for s in specs)) == set(vocab.STYLES)


def test_plan_pairs_cover_kinds_and_families() -> None:
    specs = plan(_config(clips=2000))
    pairs = Counter(s.pair for s in specs if s.pair)
    assert pairs["drums"] > 50
    assert pairs["vocals"] > 50
    families = {p.split(":", 1)[1] for p in pairs if p.startswith("instrument:")}
    # Every family some style can remove; choir goes with the vocals pairs.
    assert families == set(vocab.INSTRUMENTS) - {"choir"}
    for spec in specs:
        if spec.pair == "drums":
            assert styles.STYLE_SPECS[spec.style].drums_prob > 0


def test_plan_is_deterministic_and_seeded() -> None:
    assert plan(_config()) == plan(_config())
    assert plan(_config()) != plan(_config(seed=4))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"clips": 0}, "--clips"),
        ({"pair_share": 1.5}, "pair-share"),
        ({"duration": 1.0}, "--duration"),
    ],
)
def test_plan_rejects_bad_input(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan(_config(**kw))


def test_compose_rejects_impossible_pair() -> None:
    with pytest.raises(ValueError, match="cannot carry the minimal pair 'drums'"):
        compose(PieceSpec(0, 0, "train", "FluidR3_GM", "classical", "drums", 10.0))


@pytest.mark.parametrize("style", vocab.STYLES)
def test_every_style_composes_consistent_labels(style: str) -> None:
    spec_table = styles.STYLE_SPECS[style]
    options = pair_candidates(style)
    requests = [
        None,
        *options["drums"],
        *options["vocals"],
        *(f"instrument:{f}" for f in options["instrument"]),
    ]
    for i, pair in enumerate(requests):
        piece = compose(PieceSpec(i, 11, "train", "FluidR3_GM", style, pair, 10.0))
        attrs = piece.attributes
        assert attrs["style"] == style
        assert spec_table.tempo[0] <= attrs["tempo_bpm"] <= spec_table.tempo[1]
        assert attrs["tempo"] == styles.tempo_word(attrs["tempo_bpm"])
        assert attrs["mood"] == styles.mood_word(
            attrs["mode"], attrs["tempo"], attrs["energy"]
        )
        assert attrs["mood"] in (
            vocab.MOODS_MAJOR if attrs["mode"] == "major" else vocab.MOODS_MINOR
        )
        instruments = attrs["instruments"]
        assert len(instruments) == len(set(instruments))
        assert set(instruments) <= set(vocab.INSTRUMENTS)
        for group in styles.EXCLUSIVE_GROUPS:
            assert len(group & set(instruments)) <= 1, (style, instruments)
        stems = {p.stem for p in piece.parts}
        assert stems == {i for i in instruments if i != "choir"} | (
            {"drums"} if attrs["drums"] else set()
        ) | ({"vocals"} if attrs["vocals"] else set())
        assert ("choir" in instruments) == (attrs["vocal_kind"] == "choir")
        for part in piece.parts:  # every labelled part really plays
            assert part.notes or part.voice_notes, (style, part.stem)
            assert all(0 <= n.start < 10.0 and n.end > n.start for n in part.notes)
        if pair is None:
            assert [v.removed for v in piece.variants] == [()]
        else:
            removed = piece.variants[1].removed[0]
            assert removed in stems
            if pair.startswith("instrument:"):
                assert removed == pair.split(":", 1)[1]
                assert len(stems - {removed, "drums", "vocals"}) >= 1


def test_drums_use_channel_ten_kits() -> None:
    piece = compose(PieceSpec(5, 2, "train", "FluidR3_GM", "rock", "drums", 10.0))
    drums = next(p for p in piece.parts if p.stem == "drums")
    assert drums.is_drum
    assert drums.program in styles.DRUM_KITS.values()
    assert piece.attributes["drum_kit"] in styles.DRUM_KITS
    midi = piece.midi()
    assert [i.is_drum for i in midi.instruments].count(True) == 1


def test_absent_terms_respect_implications() -> None:
    tags = [
        "classical",
        "violin",
        "piano",
        "choir",
        "vocals",
        "slow tempo",
        "sad",
        "soft",
    ]
    absent = absent_terms(tags, "classical")
    assert "strings" not in absent  # a violin is a string instrument
    assert "vocals" not in absent
    assert "choir" not in absent
    assert "drums" in absent
    assert "cello" in absent
    assert "jazz" in absent
    assert not set(absent) & present_terms(tags)
