"""musicnn without TensorFlow: the checkpoint reader and the PyTorch port.

The port is checked against outputs of the original TF graph, computed once
by tests/trainer/data/make_musicnn_reference.py and committed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest_models import reference_waveforms

from trainer.models.frontend import LogMelFrontend
from trainer.models.musicnn import (
    MSD_LABELS,
    MTT_LABELS,
    PATCH_FRAMES,
    Musicnn,
    checkpoint_dir,
    load_musicnn,
)
from trainer.models.tfcheckpoint import CheckpointError, masked_crc32c, read_checkpoint

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"

# Shapes of every weight in build_musicnn (TF HWIO kernels, [in, out] dense).
EXPECTED_SHAPES = {
    "conv2d/kernel": (7, 38, 1, 204),
    "conv2d_1/kernel": (7, 67, 1, 204),
    "conv2d_2/kernel": (128, 1, 1, 51),
    "conv2d_3/kernel": (64, 1, 1, 51),
    "conv2d_4/kernel": (32, 1, 1, 51),
    "conv2d_5/kernel": (7, 561, 1, 64),
    "conv2d_6/kernel": (7, 64, 1, 64),
    "conv2d_7/kernel": (7, 64, 1, 64),
    "dense/kernel": (1506, 200),
    "dense_1/kernel": (200, 50),
    "batch_normalization/gamma": (1,),
    "batch_normalization_9/moving_variance": (1506,),
    "batch_normalization_10/beta": (200,),
}


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return read_checkpoint(checkpoint_dir("MTT_musicnn"))


@pytest.fixture(scope="module")
def patches() -> tuple[list[str], torch.Tensor]:
    """The reference clips as 187-frame log-mel patches from our front end."""
    names = [str(n) for n in np.load(REFERENCE)["clips"]]
    clips = reference_waveforms()
    wave = torch.from_numpy(np.stack([clips[n] for n in names]))
    with torch.no_grad():
        return names, LogMelFrontend()(wave)[..., :PATCH_FRAMES]


def test_reader_finds_every_weight_with_its_shape(weights):
    for name, shape in EXPECTED_SHAPES.items():
        assert weights[name].shape == shape, name
        assert weights[name].dtype == np.float32
    # 8 convs + 2 dense (kernel, bias) and 11 batch norms x 4 statistics.
    assert len(weights) == 10 * 2 + 11 * 4
    assert sum(w.size for w in weights.values()) == 792_079  # musicnn's ~0.8M
    assert not any(k.endswith(("/Adam", "/Adam_1")) for k in weights)


def test_reader_can_include_optimizer_slots():
    everything = read_checkpoint(checkpoint_dir("MSD_musicnn"), skip_optimizer=False)
    assert everything["dense_1/kernel/Adam"].shape == (200, 50)
    assert everything["dense_1/kernel/Adam_1"].shape == (200, 50)
    # 64 weights; two Adam slots per trainable one (20 conv/dense, 22 BN
    # gamma/beta; moving statistics have none); beta1_power, beta2_power.
    assert len(everything) == 64 + 2 * 42 + 2


def test_crc_matches_tensorflow_values(weights):
    # CRC-32C check value for "123456789" is 0xE3069283; TF stores it masked.
    crc = 0xE3069283
    masked = ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
    assert masked_crc32c(b"123456789") == masked
    verified = read_checkpoint(checkpoint_dir("MTT_musicnn"), verify=True)
    assert np.array_equal(verified["dense_1/bias"], weights["dense_1/bias"])


def test_reader_detects_corrupt_data(tmp_path, weights):
    folder = tmp_path / "MTT_musicnn"
    shutil.copytree(checkpoint_dir("MTT_musicnn"), folder)
    data = folder / ".data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    # Flip a byte inside dense_1/bias: find its float32 bytes in the file.
    needle = weights["dense_1/bias"].tobytes()
    at = bytes(raw).find(needle)
    assert at > 0
    raw[at + 5] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"crc mismatch in dense_1/bias"):
        read_checkpoint(folder, verify=True)
    # Without verification the (wrong) value is read as stored.
    stored = read_checkpoint(folder)["dense_1/bias"]
    assert not np.array_equal(stored, weights["dense_1/bias"])


def test_reader_rejects_non_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match=r"cannot read index"):
        read_checkpoint(tmp_path / "nothing")
    (tmp_path / "bad.index").write_bytes(b"x" * 100)
    with pytest.raises(CheckpointError, match=r"not a TensorFlow index \(bad SSTable"):
        read_checkpoint(tmp_path / "bad")
    folder = tmp_path / "truncated"
    folder.mkdir()
    shutil.copy(checkpoint_dir("MTT_musicnn") / ".index", folder / ".index")
    (folder / ".data-00000-of-00001").write_bytes(b"\0" * 1000)
    with pytest.raises(CheckpointError, match=r"data file truncated"):
        read_checkpoint(folder)


@pytest.fixture(scope="module")
def outputs(patches) -> dict[str, dict[str, torch.Tensor]]:
    """The port's outputs on the reference patches, per pretrained model."""
    with torch.no_grad():
        return {m: load_musicnn(m)(patches[1]) for m in ("MTT_musicnn", "MSD_musicnn")}


@pytest.mark.parametrize("model", ["MTT_musicnn", "MSD_musicnn"])
def test_port_matches_original_tensorflow_graph(model, outputs):
    ref = np.load(REFERENCE)
    out = outputs[model]
    assert out["logits"].shape == (3, 50)
    assert out["penultimate"].shape == (3, 200)
    assert out["pooled"].shape == (3, 1506)
    probs = torch.sigmoid(out["logits"]).numpy()
    # pooled_bn is the dense layer's own input: the same 1506 numbers,
    # standardised by the tagger's batch norm (raw channels differ 100x).
    net = load_musicnn(model)
    expected = (out["pooled"] - net.pool_bn.running_mean) / torch.sqrt(
        net.pool_bn.running_var + net.pool_bn.eps
    ) * net.pool_bn.weight + net.pool_bn.bias
    assert torch.allclose(out["pooled_bn"], expected, atol=1e-4)
    assert out["pooled_bn"].std(dim=1).max() < out["pooled"].std(dim=1).max()
    # Front end (ours vs librosa float32) and port together.
    assert np.abs(probs - ref[f"{model}/tags"]).max() < 1e-4
    assert np.abs(out["penultimate"].numpy() - ref[f"{model}/penultimate"]).max() < 1e-3


def test_mtt_tagger_hears_drums_and_piano(patches, outputs):
    names = patches[0]
    probs = torch.sigmoid(outputs["MTT_musicnn"]["logits"]).numpy()
    row = {n: probs[i] for i, n in enumerate(names)}
    drums, piano = MTT_LABELS.index("drums"), MTT_LABELS.index("piano")
    assert row["drums"][drums] > 5 * row["sine"][drums]
    assert row["drums"][drums] > 5 * row["chords"][drums]
    assert row["chords"][piano] > 5 * row["drums"][piano]
    assert MTT_LABELS[int(np.argmax(row["drums"]))] in {"beat", "drums", "techno"}


def test_port_is_fully_convolutional_in_time():
    net = Musicnn().eval()
    for frames in (40, 250):
        with torch.no_grad():
            out = net(torch.randn(1, 1, 96, frames))
        assert out["logits"].shape == (1, 50)
        assert out["pooled"].shape == (1, 1506)


def test_label_lists_match_musicnn_configuration():
    source = (checkpoint_dir("MTT_musicnn").parent / "configuration.py").read_text()
    namespace: dict = {}
    exec(source, namespace)  # plain constants, no imports
    assert namespace["MTT_LABELS"] == MTT_LABELS
    assert namespace["MSD_LABELS"] == MSD_LABELS


def test_unknown_model_name_is_one_clear_error():
    with pytest.raises(ValueError, match=r"unknown musicnn model 'MTT': choose"):
        checkpoint_dir("MTT")
