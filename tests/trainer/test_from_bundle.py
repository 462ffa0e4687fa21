"""A run can start from an exported int8 bundle: the shipped model, fine-tuned."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest_models import calibration_windows, drum_loop, plucked_chords

from beetsplug.clap.model import Bundle, default_bundle_path
from trainer.config import Config, load_config
from trainer.export import export_bundle
from trainer.models import build_model
from trainer.models.from_bundle import BundleWeightsError, load_bundle_weights
from trainer.models.text import build_tokenizer, tokenize
from trainer.train import train

TEXTS = ["calm piano without drums", "jazz with vocals", "electronic, no vocals"]
# The shipped recipe's trainable parts on the tiny backbones: a frozen audio
# backbone (only the projection learns), the text encoder's lower layer frozen.
FROZEN = ["model.audio.freeze_backbone=full", "model.text.freeze_layers=1"]
# The tiny bundle's seed: a run from it draws the same frozen CNN (the tiny
# recipe's backbone has no pretrained weights), its heads start elsewhere.
BUNDLE_SEED = 7


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def _quiet(_: str) -> None:
    pass


def _trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
    }


def test_the_shipped_bundle_loads_back_into_its_recipe() -> None:
    """The default bundle's int8 weights, read back into the clap_default
    model (musicnn and MiniLM from their packages), give the vectors the
    plugin gets from that bundle."""
    cfg = load_config("clap_default")
    model = build_model(cfg.model).eval()
    # Music-like windows: the static int8 activations are calibrated on music
    # (a bare sine is out of their range, and no weight's doing).
    windows = np.stack(
        [
            drum_loop(),
            plucked_chords(),
            0.5 * drum_loop(seed=3) + 0.5 * plucked_chords(),
        ]
    ).astype(np.float32)
    tok = build_tokenizer(cfg.model.text)

    def embeddings() -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            audio = model.encode_audio(torch.from_numpy(windows)).numpy()
            text = model.encode_text(**tokenize(tok, TEXTS, 128)).numpy()
        return audio, text

    bundle = Bundle.load(default_bundle_path(), threads=2)
    want_audio, want_text = bundle.embed_audio(windows)[0], bundle.embed_text(TEXTS)
    fresh_audio, fresh_text = embeddings()
    assert _cos(fresh_text, want_text).max() < 0.5  # untrained heads: other vectors
    lines: list[str] = []
    change = load_bundle_weights(model, default_bundle_path(), lines.append)
    assert set(change) == {"audio", "text"}
    assert lines[0].startswith(f"init from clap-default ({bundle.version})")
    audio, text = embeddings()
    # What 8 bits and the int8 runtime leave of the same weights: the
    # export's own int8 parity bounds (audio 0.98, text 0.96).
    assert _cos(text, want_text).min() > 0.96
    assert _cos(audio, want_audio).min() > 0.98
    assert _cos(fresh_audio, want_audio).max() < 0.5


@pytest.fixture(scope="module")
def tiny_bundle(fixture_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-step run of the tiny recipe with FROZEN parts, exported int8.
    Another seed than the tests' runs, so its heads are not where theirs start."""
    tmp = tmp_path_factory.mktemp("from_bundle")
    cfg = load_config("tiny", [*FROZEN, f"train.seed={BUNDLE_SEED}"])
    train(cfg, fixture_data, tmp / "first", stop_after=2, log=_quiet)
    export_bundle(
        tmp / "first",
        tmp / "bundle",
        name="clap-tiny",
        version="0.0.1",
        calibration_audio=calibration_windows()[:, :16000],
    )
    return tmp / "bundle"


def test_a_run_starts_from_a_bundle_and_fine_tunes_it(
    fixture_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    """`train.init_from` (`--init-from`): the first step starts from the
    bundle's weights, not from the initialisation."""
    cfg = load_config("tiny", FROZEN)
    reference = build_model(cfg.model)
    load_bundle_weights(reference, tiny_bundle, _quiet)
    start = _trainable(reference)

    def after_one_step(c: Config, run: Path) -> dict[str, torch.Tensor]:
        lines: list[str] = []
        train(c, fixture_data, run, stop_after=1, log=lines.append)
        ckpt = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
        model = build_model(c.model, load_weights=False)
        model.load_state_dict(ckpt["model"])
        said = [line for line in lines if line.startswith("init from")]
        assert len(said) == (2 if c.train.init_from else 0)
        return _trainable(model)

    tuned = after_one_step(
        load_config(
            "tiny",
            [*FROZEN, f"train.seed={BUNDLE_SEED}", f"train.init_from={tiny_bundle}"],
        ),
        tmp_path / "tuned",
    )
    plain = after_one_step(cfg, tmp_path / "plain")

    def farthest(weights: dict[str, torch.Tensor]) -> float:
        return max(float((weights[n] - start[n]).abs().max()) for n in start)

    # One AdamW step at lr 1e-3 (half of it in warm-up) moves a weight by
    # about 5e-4; the initialisation is another model altogether.
    assert farthest(tuned) < 0.01
    assert farthest(plain) > 0.05


def test_a_bundle_of_another_architecture_is_refused_in_one_line(
    fixture_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    """Another width: the message names the tensors, before any step."""
    frozen = load_config("tiny", FROZEN)
    wider = load_config(
        "tiny",
        [
            *FROZEN,
            f"train.seed={BUNDLE_SEED}",
            "model.embedding_dim=32",
            f"train.init_from={tiny_bundle}",
        ],
    )
    with pytest.raises(BundleWeightsError, match="does not match this model config"):
        train(wider, fixture_data, tmp_path / "wider", stop_after=1, log=_quiet)
    assert not (tmp_path / "wider" / "checkpoints").exists()
    with pytest.raises(BundleWeightsError, match=r"no manifest\.json"):
        load_bundle_weights(build_model(frozen.model), tmp_path, _quiet)


def test_a_trained_audio_backbone_is_refused_saying_why(
    fixture_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    """The export folds a backbone's batch norms into its int8 convolutions,
    which no float backbone can be read back from: a config that trains the
    backbone, or a bundle whose backbone trained, is refused in one line
    naming that, not as a list of missing tensors."""
    whole = load_config("tiny", [f"train.init_from={tiny_bundle}"])
    with pytest.raises(BundleWeightsError) as caught:
        train(whole, fixture_data, tmp_path / "whole", stop_after=1, log=_quiet)
    assert str(caught.value) == (
        f"--init-from {tiny_bundle}: this config trains the audio backbone, which "
        "a bundle holds only folded into int8 convolutions that cannot be read "
        "back; set model.audio.freeze_backbone: full, as the bundle's recipe does"
    )
    assert not (tmp_path / "whole").exists()

    # The tiny recipe's own bundle: its manifest records the trained backbone
    # (as `export` writes it for `train --config tiny`). Before, a frozen
    # config silently took its heads onto a backbone they never saw.
    trained = tmp_path / "trained"
    shutil.copytree(tiny_bundle, trained)
    manifest = json.loads((trained / "manifest.json").read_text())
    manifest["training"]["config"]["model"]["audio"]["freeze_backbone"] = "none"
    (trained / "manifest.json").write_text(json.dumps(manifest))
    message = (
        "--init-from reads bundles whose audio backbone is frozen (the pretrained "
        f"tagger); {trained}'s backbone was trained (model.audio.freeze_backbone: "
        "none), and the export folds it into int8 convolutions that cannot be "
        "read back"
    )
    for overrides in ([], FROZEN):
        cfg = load_config("tiny", [*overrides, f"train.init_from={trained}"])
        with pytest.raises(BundleWeightsError) as caught:
            train(cfg, fixture_data, tmp_path / "run", stop_after=1, log=_quiet)
        assert str(caught.value) == message
    assert not (tmp_path / "run").exists()


def test_a_frozen_backbone_drawn_from_another_seed_is_refused(
    fixture_data: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    """The tiny recipe's CNN has no pretrained weights: frozen, it is drawn
    from train.seed again, so only the bundle's own seed gives the backbone
    its heads were trained on."""
    seed = json.loads((tiny_bundle / "manifest.json").read_text())["training"][
        "config"
    ]["train"]["seed"]
    other = load_config(
        "tiny", [*FROZEN, f"train.seed={seed + 5}", f"train.init_from={tiny_bundle}"]
    )
    with pytest.raises(BundleWeightsError) as caught:
        train(other, fixture_data, tmp_path / "other", stop_after=1, log=_quiet)
    assert str(caught.value) == (
        f"--init-from {tiny_bundle}: its frozen audio backbone (cnn, no pretrained "
        f"weights) was drawn from train.seed {seed} and is rebuilt from the seed, "
        f"not read from the bundle; train with --set train.seed={seed}, not "
        f"{seed + 5}"
    )
    assert not (tmp_path / "other" / "checkpoints").exists()
