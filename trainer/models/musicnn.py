"""PyTorch port of musicnn (Pons & Serra, 2019) loading its TF1 weights exactly.

Mirrors `musicnn/models.py:build_musicnn` (the MTT_musicnn / MSD_musicnn
configuration: 1.6x front-end filters, 64 mid-end filters, 200 back-end
units). The TF graph works on [batch, time, freq, 1]; here the patch is
[batch, 1, time, freq] (NCHW with H = time), so every TF kernel is HWIO ->
OIHW and the frequency-spanning mid-end convolutions become Conv1d over time.
BatchNorm uses TF's epsilon 1e-3. Checked against the original TF graph in
tests/trainer/test_models_musicnn.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trainer.models.tfcheckpoint import read_checkpoint

PATCH_FRAMES = 187  # 3 s at 16 kHz, hop 256: musicnn's training input length
N_MELS = 96
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization default
MODEL_NAMES = ("MTT_musicnn", "MSD_musicnn")

# musicnn/configuration.py, copied so that tag names need no import of musicnn.
MTT_LABELS = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock",
    "fast", "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian",
    "opera", "male", "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet",
    "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
    "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal",
    "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice",
    "choral",
]  # fmt: skip
MSD_LABELS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance",
    "00s", "alternative rock", "jazz", "beautiful", "metal", "chillout",
    "male vocalists", "classic rock", "soul", "indie rock", "Mellow", "electronica",
    "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues",
    "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar",
    "Hip-Hop", "70s", "party", "country", "easy listening", "sexy", "catchy", "funk",
    "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad",
    "House", "happy",
]  # fmt: skip
LABELS = {"MTT_musicnn": MTT_LABELS, "MSD_musicnn": MSD_LABELS}


def checkpoint_dir(model: str) -> Path:
    """Folder of the pretrained `model` inside the installed musicnn package.

    Found without importing musicnn (its modules import TensorFlow).
    """
    if model not in MODEL_NAMES:
        raise ValueError(
            f"unknown musicnn model {model!r}: choose {' or '.join(MODEL_NAMES)}"
        )
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "musicnn weights not found: pip install --no-deps musicnn "
            "(it ships the checkpoints)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / model
    if not (folder / ".index").exists():
        raise FileNotFoundError(f"musicnn checkpoint missing: {folder}/.index")
    return folder


class _ConvBN(nn.Module):
    """Conv -> ReLU -> BatchNorm, musicnn's order (BN after the activation)."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d, channels: int, dims: int) -> None:
        super().__init__()
        self.conv = conv
        self.bn = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(
            channels, eps=BN_EPS
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class Musicnn(nn.Module):
    """musicnn on log-mel patches [B, 1, n_mels, frames] (the front end's layout).

    `forward` returns a dict:
      logits      [B, 50]  tag logits (`sigmoid` gives musicnn's taggram values)
      penultimate [B, 200] the batch-normalised dense layer (musicnn's "penultimate")
      pooled      [B, 1506] max and mean over time of the dense front+mid-end
                  features, interleaved (max_0, mean_0, max_1, ...) as TF flattens
      pooled_bn   [B, 1506] `pooled` through the tagger's own batch norm: the same
                  information on one scale, the pretrained statistics as a fixed
                  standardisation (raw `pooled` channels differ in scale by 100x)
    Any number of frames works (musicnn is fully convolutional in time); the
    weights were trained on 187-frame patches.
    """

    def __init__(self, n_mels: int = N_MELS, num_classes: int = 50) -> None:
        super().__init__()
        self.n_mels = n_mels
        f_timbral, f_temporal, f_mid, units = int(1.6 * 128), int(1.6 * 32), 64, 200
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(
            _ConvBN(nn.Conv2d(1, f_timbral, (7, int(frac * n_mels))), f_timbral, 2)
            for frac in (0.4, 0.7)
        )
        self.temporal_kernels = (128, 64, 32)
        self.temporal = nn.ModuleList(
            _ConvBN(nn.Conv2d(1, f_temporal, (k, 1)), f_temporal, 2)
            for k in self.temporal_kernels
        )
        front_channels = 2 * f_timbral + 3 * f_temporal  # 561
        self.midend = nn.ModuleList(
            _ConvBN(nn.Conv1d(c, f_mid, 7), f_mid, 1)
            for c in (front_channels, f_mid, f_mid)
        )
        self.feature_dim = front_channels + 3 * f_mid  # 753
        self.pool_bn = nn.BatchNorm1d(2 * self.feature_dim, eps=BN_EPS)
        self.dense = nn.Linear(2 * self.feature_dim, units)
        self.dense_bn = nn.BatchNorm1d(units, eps=BN_EPS)
        self.output = nn.Linear(units, num_classes)
        self.penultimate_dim, self.pooled_dim, self.num_classes = (
            units,
            2 * self.feature_dim,
            num_classes,
        )

    def forward(self, logmel: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.input_bn(logmel.transpose(2, 3))  # [B, 1, time, freq]
        padded = F.pad(x, (0, 0, 3, 3))  # 'same' in time for the 7-tall kernels
        front = [block(padded).amax(dim=3) for block in self.timbral]
        for k, block in zip(self.temporal_kernels, self.temporal, strict=True):
            # TF 'same' for an even kernel puts the extra pad row after.
            same = F.pad(x, (0, 0, (k - 1) // 2, k // 2))
            front.append(block(same).amax(dim=3))
        features = [torch.cat(front, dim=1)]  # [B, 561, time]
        h = features[0]
        for i, block in enumerate(self.midend):
            out = block(F.pad(h, (3, 3)))
            h = out if i == 0 else out + h  # residual from the second layer on
            features.append(h)
        dense_features = torch.cat(features, dim=1)  # [B, 753, time]
        pooled = torch.stack(
            [dense_features.amax(dim=2), dense_features.mean(dim=2)], dim=2
        ).flatten(1)
        # Dropout (rate 0.5 in training) is left out: the port is for inference
        # and fine-tuning at low rates; add it outside if wanted.
        pooled_bn = self.pool_bn(pooled)
        penultimate = self.dense_bn(F.relu(self.dense(pooled_bn)))
        return {
            "logits": self.output(penultimate),
            "penultimate": penultimate,
            "pooled": pooled,
            "pooled_bn": pooled_bn,
        }

    def load_tf_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Copy a musicnn TF checkpoint ({name: array}) into this module, exactly.

        TF auto-names layers in creation order (conv2d, conv2d_1, ...), which
        `build_musicnn` fixes: timbral 7x38, 7x67; temporal 128, 64, 32; mid-end
        x3; batch_normalization follows the same order with the input BN first.
        """
        convs = [b.conv for b in (*self.timbral, *self.temporal, *self.midend)]
        bns = [self.input_bn] + [
            b.bn for b in (*self.timbral, *self.temporal, *self.midend)
        ]
        bns += [self.pool_bn, self.dense_bn]
        state: dict[str, torch.Tensor] = {}
        names = {id(m): n for n, m in self.named_modules()}

        def take(key: str, shape: tuple[int, ...]) -> torch.Tensor:
            if key not in weights:
                raise KeyError(f"musicnn checkpoint lacks {key}")
            array = np.asarray(weights[key], dtype=np.float32)
            if array.shape != shape:
                raise ValueError(
                    f"musicnn checkpoint {key}: shape {array.shape}, expected {shape}"
                )
            return torch.from_numpy(array.copy())

        for i, conv in enumerate(convs):
            tf_name = "conv2d" if i == 0 else f"conv2d_{i}"
            prefix = names[id(conv)]
            out_c, in_c, *kernel = conv.weight.shape
            if isinstance(
                conv, nn.Conv1d
            ):  # TF [7, C_in, 1, C_out] -> [C_out, C_in, 7]
                k = take(f"{tf_name}/kernel", (kernel[0], in_c, 1, out_c))
                state[f"{prefix}.weight"] = k[:, :, 0, :].permute(2, 1, 0)
            else:  # HWIO -> OIHW
                k = take(f"{tf_name}/kernel", (*kernel, in_c, out_c))
                state[f"{prefix}.weight"] = k.permute(3, 2, 0, 1)
            state[f"{prefix}.bias"] = take(f"{tf_name}/bias", (out_c,))
        for i, bn in enumerate(bns):
            tf_name = "batch_normalization" if i == 0 else f"batch_normalization_{i}"
            prefix, c = names[id(bn)], bn.num_features
            state[f"{prefix}.weight"] = take(f"{tf_name}/gamma", (c,))
            state[f"{prefix}.bias"] = take(f"{tf_name}/beta", (c,))
            state[f"{prefix}.running_mean"] = take(f"{tf_name}/moving_mean", (c,))
            state[f"{prefix}.running_var"] = take(f"{tf_name}/moving_variance", (c,))
        for tf_name, layer in (("dense", self.dense), ("dense_1", self.output)):
            prefix = names[id(layer)]
            out_f, in_f = layer.weight.shape
            state[f"{prefix}.weight"] = take(f"{tf_name}/kernel", (in_f, out_f)).T
            state[f"{prefix}.bias"] = take(f"{tf_name}/bias", (out_f,))
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise RuntimeError(
                f"musicnn weight mapping incomplete: {missing} {unexpected}"
            )


def load_musicnn(model: str) -> Musicnn:
    """Musicnn with the weights of `model` (MTT_musicnn | MSD_musicnn), eval mode."""
    net = Musicnn()
    net.load_tf_weights(read_checkpoint(checkpoint_dir(model)))
    return net.eval()
