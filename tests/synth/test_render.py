"""Labels match the audio: independent stems; a pair partner is the mix minus a stem."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from trainer.synth import render, voice
from trainer.synth.compose import PieceSpec, compose
from trainer.synth.corpus import SPLITS, CorpusConfig, plan

LSB = 1 / 32768  # one step of the 16-bit FLAC


@pytest.fixture(scope="module")
def synths() -> dict[str, render.ChannelSynth]:
    return {
        name: render.ChannelSynth(path, render.RENDER_RATE)
        for name, path in render.SOUNDFONTS.items()
    }


def _rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


def test_pair_partner_is_the_mix_minus_the_stem(
    corpus: Path, small_config: CorpusConfig, synths: dict[str, render.ChannelSynth]
) -> None:
    """Re-render each paired piece from its spec: the corpus's FLACs equal
    gain * sum(stems) and gain * sum(stems - removed) to 16-bit precision, and
    the removed stem is loud."""
    specs = {s.piece_id: s for s in plan(small_config)}
    rows = [
        r
        for s in SPLITS
        for r in pq.read_table(corpus / "captions" / f"{s}.parquet").to_pylist()
    ]
    checked = set()
    for row in rows:
        if not row["pair_id"] or not row["track_id"].endswith("-b"):
            continue
        spec = specs[row["base_piece"]]
        piece = compose(spec)
        stems = render.render_stems(piece, synths[spec.soundfont])
        gain = 10 ** (json.loads(row["attributes"])["gain_db"] / 20)
        removed = piece.variants[1].removed[0]
        full, _ = sf.read(
            corpus / "audio" / row["path"].replace("-b.flac", "-a.flac"),
            dtype="float32",
        )
        without, _ = sf.read(corpus / "audio" / row["path"], dtype="float32")
        assert np.abs(full - render.mix(stems, gain)).max() <= 2 * LSB
        assert np.abs(without - render.mix(stems, gain, (removed,))).max() <= 2 * LSB
        difference = full - without
        assert np.abs(difference - gain * stems[removed]).max() <= 3 * LSB
        # What was removed is clearly audible, and nothing else changed.
        assert _rms_db(gain * stems[removed]) > -40
        assert _rms_db(difference) > -40
        checked.add(row["pair_attribute"].split(":")[0])
    assert checked == {"drums", "vocals", "instrument"}


def test_stems_render_independently(synths: dict[str, render.ChannelSynth]) -> None:
    """A score rendered without its drum part equals the full render minus the
    drum stem: no energy of the drums leaks into other channels, and none of
    theirs into the drums."""
    piece = compose(PieceSpec(3, 9, "test", "FluidR3_GM", "rock", "drums", 4.0))
    synth = synths["FluidR3_GM"]
    stems = render.render_stems(piece, synth)
    midi_stems = {p.stem for p in piece.parts if p.espeak_voice is None}
    assert "drums" in midi_stems
    assert len(midi_stems) >= 3
    without_drums = render.render_stems(piece, synth, only=midi_stems - {"drums"})
    only_drums = render.render_stems(piece, synth, only={"drums"})
    assert "drums" not in without_drums
    for stem, audio in without_drums.items():
        np.testing.assert_array_equal(audio, stems[stem])
    np.testing.assert_array_equal(only_drums["drums"], stems["drums"])
    # Raw channels: the drum channel is silent when the drum part is not played.
    programs, events, channels = render.score_events(
        piece, synth.sample_rate, midi_stems - {"drums"}
    )
    raw = synth.render(programs, events, int(2 * synth.sample_rate))
    assert np.abs(raw[channels["drums"]]).max() == 0.0
    assert all(np.abs(raw[channels[s]]).max() > 0 for s in midi_stems - {"drums"})


def test_every_stem_sounds_with_both_soundfonts(
    synths: dict[str, render.ChannelSynth],
) -> None:
    for i, (name, style) in enumerate(
        (("FluidR3_GM", "jazz"), ("TimGM6mb", "hip hop"))
    ):
        piece = compose(PieceSpec(40 + i, 1, "test", name, style, "vocals", 4.0))
        stems = render.render_stems(piece, synths[name])
        assert set(stems) == {p.stem for p in piece.parts}
        for stem, audio in stems.items():
            assert _rms_db(audio) > -45, (name, stem)


def test_sung_words_hit_their_pitch() -> None:
    for espeak_voice, pitch in (("en", 52), ("en+f2", 64)):
        sung = voice.sing("la", espeak_voice, pitch, 1.0, 16000)
        f0 = voice.estimate_f0(sung, 16000)
        assert abs(12 * np.log2(f0 / voice.midi_to_hz(pitch))) < 0.5, (
            espeak_voice,
            pitch,
            f0,
        )


def test_mix_gain_sets_energy_loudness_and_peak_limit() -> None:
    rng = np.random.default_rng(0)
    stems = {
        "a": rng.standard_normal(16000).astype(np.float32) * 0.1,
        "b": np.sin(np.arange(16000) / 5).astype(np.float32) * 0.1,
    }
    for energy, target in (("soft", -25.0), ("medium energy", -20.0)):
        gain = render.mix_gain(stems, energy)
        assert abs(_rms_db(render.mix(stems, gain)) - target) < 0.01
    spiky = {"a": np.r_[np.ones(1), np.zeros(15999)].astype(np.float32)}
    assert np.abs(
        render.mix(spiky, render.mix_gain(spiky, "loud"))
    ).max() == pytest.approx(0.98)
