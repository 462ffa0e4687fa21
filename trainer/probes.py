"""Attribute probes: logistic heads on the frozen backbone features.

The plugin's query layer weighs a tagger's probabilities into a negated
attribute's penalty and a wanted one's bonus (docs/queries.md), but the
pretrained musicnn tagger only names MagnaTagATune's 50 tags: nothing about
jazz, funk, saxophone, trumpet, organ or bass. A logistic regression per
such attribute on the same frozen features (penultimate layers and tags of
both nets, averaged over the windows) separates them better than the
model's text similarity does (docs/benchmarks.md). `trainer export --probes
DATA` fits them on DATA's training split (its cached backbone features),
for the corpus attributes no tag speaks about, and appends them to
audio.onnx's `tags` output after the tagger's own: the bundle contract and
the plugin are unchanged.

Probes learn whatever audio they are fitted on. Fitted on the synthetic
corpus they lift the benchmark's negated retrieval a lot, but on real
recordings several of them fire on clips without their attribute, which
is why the shipped default has none (docs/benchmarks.md, "Attribute
probes"). Fitted on real
recordings (the MSD recipe) they would learn real audio. Attributes the
tagger does name (vocals, drums, guitar, piano...) never get a probe: the
tagger learnt real music, and synthetic-fitted probes for them made the
real-recording rankings worse (same section).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer import vocab

Log = Callable[[str], None]


class ProbeError(Exception):
    """Probes cannot be fitted as asked; the message is one line."""


class AttributeProbes(nn.Module):
    """Backbone features [B, F] -> probabilities [B, K] of K named attributes."""

    def __init__(self, names: Sequence[str], weight: np.ndarray, bias: np.ndarray):
        super().__init__()
        if (
            weight.ndim != 2
            or weight.shape[0] != len(names)
            or bias.shape != (len(names),)
        ):
            raise ProbeError(
                f"{len(names)} names for weights {weight.shape}, biases {bias.shape}"
            )
        self.names = list(names)
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(weight))
            self.linear.bias.copy_(torch.from_numpy(bias))
        self.requires_grad_(False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(features))


def uncovered_attributes(
    tag_names: Sequence[str], attributes: Sequence[str] = vocab.NEGATABLE
) -> list[str]:
    """The attributes no tag speaks about, as the plugin matches them: by
    the whole phrase or any ending of it ("electric guitar" is covered by
    a "guitar" tag, as the plugin's bonus for a wanted attribute is), each
    tag read by its label ("msd:jazz" speaks about jazz)."""
    from beetsplug.clap.meanings import tag_label
    from beetsplug.clap.taglinks import match_head

    names = tuple(tag_label(n) for n in tag_names)
    out = []
    for term in attributes:
        match = match_head(term, names)
        if not (match.present or match.absent):
            out.append(term)
    return out


def fit_probes(
    features: np.ndarray, labels: np.ndarray, c: float = 0.1, max_iter: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Weights [K, F] and biases [K] of K L2-regularised logistic regressions
    (`c` as scikit-learn's C: the inverse of the penalty on the summed log
    loss), fitted on standardised features; the standardisation is folded
    into the weights, so they apply to raw features."""
    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ProbeError(f"features {x.shape} and labels {y.shape} do not pair up")
    if not len(x):
        raise ProbeError("no clips to fit probes on")
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-8] = 1.0
    xs = torch.from_numpy((x - mean) / std)
    ys = torch.from_numpy(y)
    weight = torch.zeros(
        y.shape[1], x.shape[1], dtype=torch.float64, requires_grad=True
    )
    bias = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe"
    )
    penalty = 1.0 / (2.0 * c * len(x))

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = xs @ weight.T + bias
        loss = nn.functional.binary_cross_entropy_with_logits(logits, ys)
        loss = loss * y.shape[1] + penalty * (weight**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    w = weight.detach().numpy() / std
    b = bias.detach().numpy() - w @ mean
    return w.astype(np.float32), b.astype(np.float32)


def probes_from_data(
    model: Any,
    cfg: Any,
    data_dir: Path | str,
    *,
    c: float = 0.1,
    min_clips: int = 10,
    log: Log = print,
) -> AttributeProbes | None:
    """Probes for the attributes `model`'s tagger does not name, fitted on the
    training split of `data_dir` (its cached backbone features, built if
    missing: the cache the trainer uses, so a run's export reads it back).
    None when every attribute is named or too few clips have any."""
    from trainer.data import read_split
    from trainer.evaluate import load_split
    from trainer.features import build_features, can_cache

    if not can_cache(cfg):
        raise ProbeError(
            "probes read frozen backbone features: model.audio.freeze_backbone "
            f"must be full (it is {cfg.model.audio.freeze_backbone!r})"
        )
    data_dir = Path(data_dir)
    clips, _ = read_split(
        data_dir,
        cfg.data.train_split,
        caption_columns=cfg.data.caption_columns,
        max_items=cfg.data.max_items,
    )
    present = {
        clip.track_id: clip.present
        for clip in load_split(data_dir, cfg.data.train_split)
    }
    cache_dir = Path(cfg.train.cache_dir) if cfg.train.cache_dir else data_dir / "cache"
    feats = build_features(
        model.audio, clips, cfg, cfg.train.cache_crops, cache_dir, log=log
    ).mean(axis=1)
    keep = np.isfinite(feats).all(axis=1)
    rows = [i for i, clip in enumerate(clips) if keep[i] and clip.track_id in present]
    names = []
    for term in uncovered_attributes(model.tag_names):
        have = sum(term in present[clips[i].track_id] for i in rows)
        if min_clips <= have <= len(rows) - min_clips:
            names.append(term)
    if not names:
        return None
    labels = np.array(
        [[term in present[clips[i].track_id] for term in names] for i in rows]
    )
    weight, bias = fit_probes(feats[rows], labels, c=c)
    log(f"probes: {len(names)} attributes on {len(rows)} clips ({', '.join(names)})")
    return AttributeProbes(names, weight, bias)
