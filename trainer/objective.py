"""The training objective: model and losses as one module, the optimizer and
its learning-rate schedule.

`TrainStep` holds the model and every loss module, so DDP syncs every
trainable tensor and one forward pass returns the loss and its parts.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainer.checkpoint import RunError
from trainer.config import Config
from trainer.losses import (
    ClipLoss,
    DissimilarityLoss,
    SlapLoss,
    TripletLoss,
    attribute_rank_loss,
    ema_update,
    make_target,
    pair_probe_loss,
)

OBJECTIVES = ("infonce", "triplet", "slap")


class TrainStep(nn.Module):
    """Model + loss modules in one module, so DDP syncs every trainable tensor
    (the temperature and SLAP's predictors included) and forward returns the loss."""

    def __init__(self, model: nn.Module, cfg: Config, kinds: tuple[str, ...]) -> None:
        super().__init__()
        loss = cfg.loss
        if loss.objective not in OBJECTIVES:
            raise RunError(
                f"loss.objective must be one of {', '.join(OBJECTIVES)}, "
                f"not {loss.objective!r}"
            )
        self.model = model
        self.objective = loss.objective
        self.diss_weight = loss.dissimilarity_weight
        self.pair_weight = loss.pair_weight
        self.attribute_weight = loss.attribute_weight
        # Hard-negative columns: the negated captions only when asked for as
        # negatives ("full" may be built just for the dissimilarity term).
        self.hard_kinds: tuple[str, ...] = ()
        if loss.hard_negatives:
            self.hard_kinds = tuple(
                k for k in kinds if k != "full" or cfg.augment.negated_negatives
            )
        losses: dict[str, nn.Module] = {"dissimilarity": DissimilarityLoss()}
        if loss.objective == "infonce":
            losses["clip"] = ClipLoss(cfg.model.init_logit_scale)
        elif loss.objective == "triplet":
            losses["triplet"] = TripletLoss(loss.triplet_margin, loss.triplet_negative)
        else:
            losses["slap"] = SlapLoss(cfg.model.embedding_dim)
            losses["target"] = make_target(model)
        self.losses = nn.ModuleDict(losses)

    def logit_scale(self) -> float:
        """exp(logit_scale) of InfoNCE; CLIP's initial 1/0.07 for other objectives."""
        if "clip" in self.losses:
            return float(self.losses["clip"].scale().detach())
        return 1 / 0.07

    def after_step(self, ema: float) -> None:
        if "clip" in self.losses:
            self.losses["clip"].clamp_()
        if "target" in self.losses:
            ema_update(self.losses["target"], self.model, ema)

    def forward(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted total loss of a collated batch and its named parts.

        Text rows are [positives | views, if any | negatives] (augment.Collator).
        """
        n = batch["num_positive"]
        audio = self.model.encode_audio(batch["audio"])
        text = self.model.encode_text(batch["input_ids"], batch["attention_mask"])
        positive = text[:n]
        views = [positive]
        offset = n
        if batch["has_view"]:
            views.append(text[n : 2 * n])
            offset = 2 * n
        negatives_flat = text[offset : offset + batch.get("num_negatives", len(text))]
        rows, cols = batch["negative_rows"], batch["negative_cols"]
        kinds: tuple[str, ...] = tuple(batch["negative_kinds"])

        main = self._main_loss(batch, audio, views, n, negatives_flat, kinds)
        parts: dict[str, torch.Tensor] = {self.objective: main}
        total = main
        if self.diss_weight > 0 and "full" in kinds:
            sel = cols == kinds.index("full")
            negated = positive.new_zeros(positive.shape)
            has = torch.zeros(n, dtype=torch.bool, device=text.device)
            negated[rows[sel]] = negatives_flat[sel].to(negated.dtype)
            has[rows[sel]] = True
            diss = self.losses["dissimilarity"](positive, negated, has)
            parts["diss"] = diss
            total = total + self.diss_weight * diss
        if self.pair_weight > 0 and len(batch.get("pairs", ())):
            pair = pair_probe_loss(audio, text, batch["pairs"], self._probe_scale())
            parts["pair"] = pair
            total = total + self.pair_weight * pair
        if self.attribute_weight > 0 and len(batch.get("attribute_rows", ())):
            attr = attribute_rank_loss(
                audio,
                text,
                batch["attribute_rows"],
                batch["attribute_labels"],
                self._probe_scale(),
            )
            parts["attr"] = attr
            total = total + self.attribute_weight * attr
        parts["loss"] = total
        return total, parts

    def _hard_negatives(
        self,
        batch: dict[str, Any],
        n: int,
        negatives_flat: torch.Tensor,
        kinds: tuple[str, ...],
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """[n, K, D] negatives of the hard kinds and their [n, K] presence mask,
        or (None, None) when the batch has none."""
        rows, cols = batch["negative_rows"], batch["negative_cols"]
        use = [h for h, kind in enumerate(kinds) if kind in self.hard_kinds]
        if not use or not len(rows):
            return None, None
        device = negatives_flat.device
        full = negatives_flat.new_zeros(n, len(kinds), negatives_flat.shape[1])
        full_mask = torch.zeros(n, len(kinds), dtype=torch.bool, device=device)
        full[rows, cols] = negatives_flat
        full_mask[rows, cols] = True
        index = torch.tensor(use, device=device)
        return full[:, index], full_mask[:, index]

    def _main_loss(
        self,
        batch: dict[str, Any],
        audio: torch.Tensor,
        views: list[torch.Tensor],
        n: int,
        negatives_flat: torch.Tensor,
        kinds: tuple[str, ...],
    ) -> torch.Tensor:
        """The objective's loss, averaged over the caption views."""
        negatives, mask = self._hard_negatives(batch, n, negatives_flat, kinds)
        if self.objective == "infonce":
            clip = self.losses["clip"]
            return torch.stack([clip(audio, v, negatives, mask) for v in views]).mean()
        if self.objective == "triplet":
            triplet = self.losses["triplet"]
            return torch.stack(
                [triplet(audio, v, negatives, mask) for v in views]
            ).mean()
        target = self.losses["target"]
        with torch.no_grad():
            target_audio = target.encode_audio(batch["audio"])
            target_text = target.encode_text(
                batch["input_ids"], batch["attention_mask"]
            )
        slap = self.losses["slap"]
        return torch.stack(
            [
                slap(audio, v, target_audio, target_text[k * n : (k + 1) * n])
                for k, v in enumerate(views)
            ]
        ).mean()

    def _probe_scale(self) -> torch.Tensor | float:
        """The sharpness of the short-text losses: InfoNCE's learnt scale, or
        CLIP's initial 1/0.07 under the other objectives."""
        return self.losses["clip"].scale() if "clip" in self.losses else 1 / 0.07


def info_nce(audio: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
    """Symmetric InfoNCE of matched rows at a fixed scale (validation)."""
    logits = scale * audio @ text.T
    labels = torch.arange(len(audio), device=audio.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def lr_factor(step: int, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    """Linear warm-up to 1 over `warmup` steps, then cosine down to `min_ratio`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(
    module: nn.Module, lr: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW over trainable parameters only; decay on weight matrices, not on
    biases, norms or the temperature (open_clip's exclusion rule: ndim < 2)."""
    decay, no_decay = [], []
    for param in module.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    if not decay and not no_decay:
        raise RunError("nothing to train: every parameter is frozen")
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)
