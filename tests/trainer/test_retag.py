"""Appending the MSD tagger's tags to a bundle that emits only MTT's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest_models import calibration_windows, export_tagger

from beetsplug.clap.model import Bundle
from trainer.__main__ import main
from trainer.export.graphs import ExportError
from trainer.export.retag import retag_bundle
from trainer.models.musicnn import MSD_LABELS, MTT_LABELS

BOTH = ["MTT_musicnn", "MSD_musicnn"]


@pytest.fixture(scope="module")
def mtt_only(tmp_path_factory):
    """A two-tagger model exported the old way: only MTT's tags in `tags`."""
    out = tmp_path_factory.mktemp("old") / "bundle"
    model, bundle = export_tagger(
        out, "+".join(BOTH), "tags", calibration_windows(), tag_sources=BOTH[:1]
    )
    return model, bundle


def test_retag_appends_msd_tags_and_keeps_the_rest(mtt_only, tmp_path):
    model, old = mtt_only
    windows = calibration_windows()
    parity = retag_bundle(old, tmp_path / "new", version="1.1", windows=windows)
    new = Bundle.load(tmp_path / "new", threads=1)
    before = Bundle.load(old, threads=1)
    assert new.tag_names == [*MTT_LABELS, *(f"msd:{t}" for t in MSD_LABELS)]
    assert new.manifest["version"] == "1.1"
    assert new.identity != before.identity
    emb_old, tags_old = before.embed_audio(windows)
    emb_new, tags_new = new.embed_audio(windows)
    np.testing.assert_array_equal(emb_new, emb_old)
    np.testing.assert_array_equal(tags_new[:, :50], tags_old)
    # The appended columns are the MSD net's probabilities, window-averaged
    # the way the MTT ones are.
    backbone = model.audio.backbone
    backbone.tag_sources, backbone.tag_names = BOTH, new.tag_names
    with torch.no_grad():
        ref = model.audio_tags(torch.from_numpy(windows)).numpy()
    assert np.abs(tags_new[:, 50:] - ref[:, 50:]).mean() < 0.01
    assert parity["msd_tags_mean_abs_diff"] < 0.01
    meanings = new.manifest["audio"]["tag_meanings"]
    assert len(meanings) == 100
    assert meanings[MTT_LABELS.index("no vocals")] == {
        "concept": None,
        "absent": ["vocals"],
    }
    assert meanings[50 + MSD_LABELS.index("female vocalists")]["concept"] == (
        "female vocals"
    )
    # The text tower and tokenizer are the same files.
    files = new.manifest["files"]
    assert files["text.onnx"] == before.manifest["files"]["text.onnx"]
    assert files["audio.onnx"] != before.manifest["files"]["audio.onnx"]


def test_a_bundle_with_both_taggers_is_refused(mtt_only, tmp_path):
    _model, old = mtt_only
    windows = calibration_windows()[:4]
    retag_bundle(old, tmp_path / "new", version="1.1", windows=windows)
    with pytest.raises(ExportError, match="not the MTT tagger's 50"):
        retag_bundle(
            tmp_path / "new", tmp_path / "again", version="1.2", windows=windows
        )
    assert not (tmp_path / "again").exists()


def test_retag_command_writes_the_bundle(mtt_only, tmp_path, capsys):
    _model, old = mtt_only
    out = tmp_path / "cli"
    rc = main(["retag", "--bundle", str(old), "--out", str(out), "--version", "2"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["version"] == "2"
    assert len(manifest["audio"]["tags"]) == 100
    assert str(out) in capsys.readouterr().out
