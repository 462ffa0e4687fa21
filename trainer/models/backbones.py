"""Audio backbones on log-mel patches: small CNN/ResNet, and pretrained musicnn.

Every backbone maps log-mel [N, 1, n_mels, frames] to a dict with
`features` [N, feature_dim] (what the projection reads) and, when it can tag,
`tags` [N, T] probabilities named by `tag_names`. `freeze` keeps a pretrained
part fixed, batch-norm statistics included (a frozen module stays in eval
mode even under `model.train()`, or fine-tuning on synthetic audio would
still wash its statistics out).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainer.models.musicnn import LABELS, MODEL_NAMES, Musicnn, checkpoint_dir
from trainer.models.tfcheckpoint import read_checkpoint

FREEZE_CHOICES = ("none", "partial", "full")
MUSICNN_FEATURES = ("penultimate", "pooled", "pooled_bn", "tags")
# How a second tagger's tag names are told apart from the first's.
TAG_PREFIXES = {"MTT_musicnn": "mtt:", "MSD_musicnn": "msd:"}


class Backbone(nn.Module):
    """Base: feature size, tag names and freezing shared by all backbones."""

    feature_dim: int
    tag_names: list[str]
    # Names of submodules (attribute names on the module path) whose
    # Conv/Gemm stay float in the int8 export: layers that lose too much at
    # 8 bits or run slower quantized.
    keep_float: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.tag_names = []
        self._frozen: list[nn.Module] = []

    def frozen_parts(self, level: str) -> list[nn.Module]:
        """Modules to freeze at `level`; subclasses refine "partial"."""
        return [self] if level == "full" else []

    def freeze(self, level: str) -> None:
        if level not in FREEZE_CHOICES:
            raise ValueError(
                f"freeze_backbone must be one of {', '.join(FREEZE_CHOICES)}, "
                f"not {level!r}"
            )
        self._frozen = self.frozen_parts(level)
        for module in self._frozen:
            module.requires_grad_(False)
        self._hold_frozen_in_eval()

    def _hold_frozen_in_eval(self) -> None:
        # Flags set directly: calling .eval() on `self` (freeze "full")
        # would re-enter this train() override.
        for module in self._frozen:
            for sub in module.modules():
                sub.training = False

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        self._hold_frozen_in_eval()
        return self


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _global_pool(x: torch.Tensor) -> torch.Tensor:
    """[N, C, F, T] -> [N, 2C]: mean over frequency, then max and mean over time.

    Max + mean over time is musicnn's back-end pooling; it keeps both "is it
    there at all" (max) and "how much of the time" (mean).
    """
    x = x.mean(dim=2)
    return torch.cat([x.amax(dim=2), x.mean(dim=2)], dim=1)


class CnnBackbone(Backbone):
    """Four conv-BN-ReLU blocks with 2x2 max-pooling (channels c, 2c, 4c, 4c)."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        widths = [channels, 2 * channels, 4 * channels, 4 * channels]
        self.input_bn = nn.BatchNorm2d(1)  # log-mel scale differs per corpus
        blocks, c_in = [], 1
        for width in widths:
            blocks.append(nn.Sequential(_conv_bn(c_in, width), nn.MaxPool2d(2)))
            c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = 2 * widths[-1]

    def frozen_parts(self, level: str) -> list[nn.Module]:
        if level == "partial":
            return [self.input_bn, *self.blocks[: len(self.blocks) // 2]]
        return super().frozen_parts(level)

    def forward(self, logmel: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": _global_pool(self.blocks(self.input_bn(logmel)))}


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(c_out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetBackbone(Backbone):
    """A ResNet-style stem + four stages of basic blocks (strides 1, 2, 2, 2)."""

    def __init__(self, channels: int = 32, blocks_per_stage: int = 1) -> None:
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1)
        self.stem = _conv_bn(1, channels, stride=2)
        widths = [channels, 2 * channels, 4 * channels, 8 * channels]
        stages, c_in = [], channels
        for i, width in enumerate(widths):
            layers = []
            for j in range(blocks_per_stage):
                layers.append(
                    _BasicBlock(c_in, width, stride=2 if i > 0 and j == 0 else 1)
                )
                c_in = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.feature_dim = 2 * widths[-1]

    def frozen_parts(self, level: str) -> list[nn.Module]:
        if level == "partial":
            return [self.input_bn, self.stem, *self.stages[:2]]
        return super().frozen_parts(level)

    def forward(self, logmel: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": _global_pool(self.stages(self.stem(self.input_bn(logmel))))}


def _parse_features(spec: str) -> list[str]:
    parts = [p.strip() for p in spec.split("+") if p.strip()]
    bad = [p for p in parts if p not in MUSICNN_FEATURES]
    if not parts or bad:
        raise ValueError(
            f"musicnn features {spec!r}: join one or more of "
            f"{', '.join(MUSICNN_FEATURES)} with '+'"
        )
    return parts


class MusicnnBackbone(Backbone):
    """One or two musicnn networks, their outputs concatenated.

    pretrained: "MTT_musicnn" | "MSD_musicnn" | "MTT_musicnn+MSD_musicnn", or ""
      for one randomly initialised musicnn. MTT carries presence/absence
      knowledge (drums, vocals, instruments), MSD genre knowledge (design.md).
    features: which musicnn outputs feed the projection, '+'-joined:
      "penultimate" (200 per net), "pooled" (1506), "pooled_bn" (1506, `pooled`
      standardised by the tagger's own batch norm), "tags" (50 probabilities).
      The penultimate layer is a 200-d bottleneck trained for 50 tags; the
      pooled front- and mid-end features keep timbre and rhythm detail the
      tags never needed.
    emit_tags: expose every tagger's probabilities as `tags`, the MTT net's
      first (presence words a query can negate: drums, vocals, instruments),
      then the MSD net's (genre, mood, era, vocalist gender) under names
      prefixed "msd:" so that the eight labels both nets use stay apart.
      They stay the pretrained taggers' only while their layers are frozen:
      with freeze "none"/"partial" fine-tuning moves them too.
    freeze: "partial" fixes musicnn's own front end (input BN, timbral and
      temporal convolutions) and trains the mid- and back-end; "full" fixes all.
    """

    # Left float by static int8 quantization: the mid-end reads a
    # concatenation of five differently scaled branches through one
    # per-tensor activation scale, which int8 cannot fit, and the tall k x 1
    # temporal convolutions on one input channel gain nothing as QLinearConv.
    # Both are cheap in float (models/README.md, "Quantization").
    keep_float = ("midend", "temporal")

    def __init__(
        self,
        pretrained: str = "MTT_musicnn",
        *,
        features: str = "penultimate",
        emit_tags: bool = False,
        load_weights: bool = True,
    ) -> None:
        super().__init__()
        names = (
            [p.strip() for p in pretrained.split("+") if p.strip()]
            if pretrained
            else []
        )
        bad = [n for n in names if n not in MODEL_NAMES]
        if bad or len(set(names)) != len(names):
            raise ValueError(
                f"pretrained {pretrained!r}: use MTT_musicnn, MSD_musicnn "
                "or MTT_musicnn+MSD_musicnn"
            )
        if emit_tags and not names:
            raise ValueError(
                "emit_tags needs pretrained musicnn weights (random tags mean nothing)"
            )
        self.model_names = names or ["random"]
        self.nets = nn.ModuleDict({name: Musicnn() for name in self.model_names})
        if load_weights:
            for name in names:
                self.nets[name].load_tf_weights(read_checkpoint(checkpoint_dir(name)))
        self.features = _parse_features(features)
        net = next(iter(self.nets.values()))
        sizes = {
            "penultimate": net.penultimate_dim,
            "pooled": net.pooled_dim,
            "pooled_bn": net.pooled_dim,
            "tags": net.num_classes,
        }
        self.feature_dim = len(self.nets) * sum(sizes[p] for p in self.features)
        self.emit_tags = emit_tags
        # MTT first: its names are the ones bundles have always carried.
        self.tag_sources = (
            sorted(names, key=lambda n: n != "MTT_musicnn") if emit_tags else []
        )
        self.tag_names = [
            label if i == 0 else f"{TAG_PREFIXES[source]}{label}"
            for i, source in enumerate(self.tag_sources)
            for label in LABELS[source]
        ]

    def frozen_parts(self, level: str) -> list[nn.Module]:
        if level == "full":
            return [self]
        parts: list[nn.Module] = []
        for net in self.nets.values():
            if level == "partial":
                parts += [net.input_bn, net.timbral, net.temporal]
            # Heads the features never read get no gradient: frozen, they
            # stay out of DDP's unused-parameter check, and a tag head that
            # only feeds `tags` keeps its pretrained statistics.
            if "tags" not in self.features:
                parts.append(net.output)
                if "penultimate" not in self.features:
                    parts += [net.dense, net.dense_bn]
                    if "pooled_bn" not in self.features:
                        parts.append(net.pool_bn)
        return parts

    def forward(self, logmel: torch.Tensor) -> dict[str, torch.Tensor]:
        # musicnn's patch for S samples is S // hop frames (librosa's
        # time_to_frames + 1): one fewer than a centred STFT yields.
        patch = logmel[..., :-1]
        chunks, tags, out = [], {}, {}
        for name, net in self.nets.items():
            result = net(patch)
            probs = torch.sigmoid(result["logits"])
            for part in self.features:
                chunks.append(probs if part == "tags" else result[part])
            tags[name] = probs
        out["features"] = torch.cat(chunks, dim=1)
        if self.tag_sources:
            out["tags"] = torch.cat([tags[name] for name in self.tag_sources], dim=1)
        return out


def build_backbone(
    backbone: str,
    *,
    channels: int = 32,
    pretrained: str = "",
    features: str = "penultimate",
    emit_tags: bool = False,
    freeze: str = "none",
    load_weights: bool = True,
) -> Backbone:
    """The backbone the config names (`cnn` | `resnet` | `musicnn`), frozen as asked."""
    if backbone == "musicnn":
        net: Backbone = MusicnnBackbone(
            pretrained,
            features=features,
            emit_tags=emit_tags,
            load_weights=load_weights,
        )
    elif backbone in {"cnn", "resnet"}:
        if pretrained:
            raise ValueError(
                f"pretrained {pretrained!r} needs backbone: musicnn, not {backbone}"
            )
        if emit_tags:
            raise ValueError(
                f"emit_tags needs a pretrained tagger (backbone: musicnn), "
                f"not {backbone}"
            )
        net = CnnBackbone(channels) if backbone == "cnn" else ResNetBackbone(channels)
    else:
        raise ValueError(
            f"unknown audio backbone {backbone!r}: choose cnn, resnet or musicnn"
        )
    net.freeze(freeze)
    return net
