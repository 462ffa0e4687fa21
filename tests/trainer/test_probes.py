"""Attribute probes: fitted on cached features, exported as more tag columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from beetsplug.clap.model import Bundle
from trainer.config import Config
from trainer.evaluate import load_split
from trainer.export import export_bundle
from trainer.models import build_model
from trainer.probes import (
    AttributeProbes,
    ProbeError,
    fit_probes,
    probes_from_data,
    uncovered_attributes,
)


def _quiet(_: str) -> None:
    pass


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels], scores[~labels]
    return float((pos[:, None] > neg[None, :]).mean())


def test_fit_probes_learns_a_linear_rule_on_raw_features() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((600, 12))
    labels = np.stack([z[:, 0] + z[:, 1] > 0, z[:, 2] - z[:, 3] > 0.5], axis=1)
    # Raw features on wildly different scales and offsets: the fit
    # standardises, and the folded weights apply to the raw values.
    scale = np.array([1e3, 1e-3, 5.0, 50.0, *np.ones(8)])
    raw = (z * scale + 7.0).astype(np.float32)
    weight, bias = fit_probes(raw[:400], labels[:400])
    assert weight.shape == (2, 12)
    assert bias.shape == (2,)
    probes = AttributeProbes(["jazz", "organ"], weight, bias)
    with torch.no_grad():
        probs = probes(torch.from_numpy(raw[400:])).numpy()
    assert ((probs >= 0) & (probs <= 1)).all()
    for k in range(2):
        assert _auc(probs[:, k], labels[400:, k]) > 0.95
    # Features the rule ignores get small weights next to those it reads.
    assert (
        np.abs(weight[0, :2] * scale[:2]).min()
        > 5 * np.abs(weight[0, 4:] * scale[4:]).max()
    )


def test_fit_probes_refuses_mismatched_input() -> None:
    with pytest.raises(ProbeError, match="pair up"):
        fit_probes(np.zeros((4, 3)), np.zeros((5, 1)))
    with pytest.raises(ProbeError, match="names for weights"):
        AttributeProbes(["a", "b"], np.zeros((1, 3), np.float32), np.zeros(1))


def test_uncovered_attributes_follow_the_plugins_tag_matching() -> None:
    tags = ["guitar", "drums", "vocals", "no vocals", "piano", "jazz"]
    got = uncovered_attributes(
        tags, ("electric guitar", "drums", "vocals", "organ", "jazz", "funk")
    )
    # "electric guitar" is covered through its head noun, as the plugin's
    # bonus for a wanted attribute finds the "guitar" tag.
    assert got == ["organ", "funk"]
    assert uncovered_attributes([], ("organ", "vocals")) == ["organ", "vocals"]
    # A second tagger's names carry its prefix: read by the label.
    assert uncovered_attributes(["msd:funk"], ("funk", "organ")) == ["organ"]


def _frozen_run(cfg: Config, run_dir: Path) -> Path:
    """A checkpoint of an untrained model whose backbone is frozen (probes
    read cached features, so only such runs can have them)."""
    cfg.model.audio.freeze_backbone = "full"
    cfg.train.cache_dir = str(run_dir / "cache")
    torch.manual_seed(0)
    model = build_model(cfg.model)
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save(
        {"model": model.state_dict(), "step": 1, "config": cfg.to_dict()},
        run_dir / "checkpoints" / "step_0000001.pt",
    )
    return run_dir


def test_probes_fit_on_the_training_split(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    cfg = tiny_cfg
    cfg.model.audio.freeze_backbone = "full"
    cfg.train.cache_dir = str(tmp_path / "cache")
    model = build_model(cfg.model).eval()
    probes = probes_from_data(model, cfg, fixture_data, min_clips=2, log=_quiet)
    assert probes is not None
    present = [c.present for c in load_split(fixture_data, "train")]
    for name in probes.names:  # only attributes both present and absent
        assert 2 <= sum(name in p for p in present) <= len(present) - 2
    assert list((tmp_path / "cache").glob("audio-features-*.npy"))
    # Too few clips for any attribute: no probes rather than degenerate ones.
    assert probes_from_data(model, cfg, fixture_data, min_clips=50, log=_quiet) is None
    cfg.model.audio.freeze_backbone = "none"
    with pytest.raises(ProbeError, match="freeze_backbone"):
        probes_from_data(model, cfg, fixture_data)


def test_exported_probes_are_tag_columns_the_plugin_reads(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    run = _frozen_run(tiny_cfg, tmp_path / "run")
    out = export_bundle(
        run,
        tmp_path / "bundle",
        name="clap-probed",
        version="0.1.0",
        max_windows=2,
        probe_data=fixture_data,
        probe_min_clips=2,
        quantize=False,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    probes = manifest["audio"]["probes"]
    assert probes["attributes"]
    assert probes["data"] == str(fixture_data)
    # The tiny backbone has no tagger: the probes are all the tags.
    assert manifest["audio"]["tags"] == probes["attributes"]
    assert manifest["parity"]["audio"]["onnx_fp32"]["tags_max_abs_diff"] < 1e-4
    bundle = Bundle.load(out)
    assert bundle.tag_names == probes["attributes"]
    windows = np.random.default_rng(1).normal(size=(3, bundle.window_samples))
    _, tags = bundle.embed_audio(windows.astype(np.float32))
    assert tags is not None
    assert tags.shape == (3, len(probes["attributes"]))
    assert ((tags >= 0) & (tags <= 1)).all()
