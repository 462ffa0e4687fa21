"""Losses of the recipe: InfoNCE (+ hard negatives), dissimilarity, triplet, SLAP.

All take L2-normalised embeddings [B, D] (the towers normalise).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from trainer.dist import all_gather_with_grad, world

# CLIP's bounds on the learnable temperature: 1/0.07 at start, at most 100.
INIT_LOGIT_SCALE = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100)

RowNegatives = tuple[Tensor, Tensor] | None
"""Each row's similarity to its own text hard negatives [B, H], and which exist."""


class _BatchLoss(nn.Module):
    """A loss over a batch of (audio, text) pairs with each row's own text
    hard negatives: `negatives` [B, H, D], `negative_mask` [B, H] saying
    which exist. The training loop calls ClipLoss and TripletLoss alike."""

    def forward(
        self,
        audio: torch.Tensor,
        text: torch.Tensor,
        negatives: torch.Tensor | None = None,
        negative_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        row_negatives = None
        if negatives is not None and negatives.shape[1] > 0:
            sims = torch.einsum("bd,bhd->bh", audio, negatives)
            if negative_mask is None:
                negative_mask = torch.ones_like(sims, dtype=torch.bool)
            row_negatives = (sims, negative_mask)
        return self.pair_loss(audio, text, row_negatives)

    def pair_loss(self, audio: Tensor, text: Tensor, extra: RowNegatives) -> Tensor:
        """The loss, given `extra`: each row's similarity to its own hard
        negatives [B, H] and which exist [B, H] (None when there are none)."""
        raise NotImplementedError


class ClipLoss(_BatchLoss):
    """Symmetric InfoNCE with a learnable temperature (CLIP/CLAP; open_clip's ClipLoss).

    Under DDP each rank scores its local rows against the features of the
    whole global batch (gathered WITH gradient), so every rank sees
    world_size x batch negatives. Extra text hard negatives `negatives`
    [B, H, D] (their row's own negated/swapped captions, `negative_mask`
    [B, H] saying which exist) become H more columns of the audio->text
    logits of their own row only: another clip's "no drums" may well be true
    of this clip, so it is no negative for it.
    """

    def __init__(self, init_logit_scale: float = INIT_LOGIT_SCALE) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(float(init_logit_scale)))

    def scale(self) -> torch.Tensor:
        """exp(logit_scale), capped at 100 (the cap passes no gradient)."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep the parameter itself in [0, log 100] after an optimizer step."""
        self.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)

    def pair_loss(self, audio: Tensor, text: Tensor, extra: RowNegatives) -> Tensor:
        rank, _ = world()
        batch = audio.shape[0]
        all_audio = all_gather_with_grad(audio)
        all_text = all_gather_with_grad(text)
        labels = torch.arange(batch, device=audio.device) + rank * batch
        scale = self.scale()
        logits_audio = scale * audio @ all_text.T  # [B, world*B]
        logits_text = scale * text @ all_audio.T
        if extra is not None:
            sims, exist = extra
            own = (scale * sims).masked_fill(~exist, float("-inf"))
            logits_audio = torch.cat([logits_audio, own], dim=1)
        return (
            F.cross_entropy(logits_audio, labels) + F.cross_entropy(logits_text, labels)
        ) / 2


class DissimilarityLoss(nn.Module):
    """L_diss = mean_i cos(caption_i, fully_negated_i) over rows that have a negation.

    Sign convention: the total is L = L_CLAP + k * L_diss with k > 0, so
    gradient descent LOWERS the cosine, pushing a caption and its negation
    apart (L_diss ranges over [-1, 1]; 1 = identical embeddings).
    """

    def forward(
        self,
        caption: torch.Tensor,
        negated: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cos = F.cosine_similarity(caption, negated, dim=-1)
        if mask is not None:
            if not bool(mask.any()):
                return cos.sum() * 0.0  # keeps the graph (DDP wants every grad)
            cos = cos[mask]
        return cos.mean()


class TripletLoss(_BatchLoss):
    """Hinge triplet loss, audio anchors and text anchors (the tutorial's baseline).

    max(0, margin - a.t+ + a.t-) with t- the hardest (most similar) or a
    random other text of the batch (or the row's own hard negatives), and
    symmetrically for text anchors against other audio. Local batch only.
    """

    def __init__(self, margin: float = 0.2, negative: str = "hardest") -> None:
        super().__init__()
        if negative not in {"hardest", "random"}:
            raise ValueError(
                f"triplet negative must be 'hardest' or 'random', not {negative!r}"
            )
        self.margin, self.negative = margin, negative

    def _pick(self, sim: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if self.negative == "hardest":
            return sim.masked_fill(~valid, float("-inf")).max(dim=1).values
        noise = torch.rand(sim.shape, device=sim.device).masked_fill(~valid, -1.0)
        return sim.gather(1, noise.argmax(dim=1, keepdim=True)).squeeze(1)

    def pair_loss(self, audio: Tensor, text: Tensor, extra: RowNegatives) -> Tensor:
        batch = audio.shape[0]
        sim = audio @ text.T
        positive = sim.diagonal()
        off_diag = ~torch.eye(batch, dtype=torch.bool, device=sim.device)
        sim_a, valid_a = sim, off_diag
        if extra is not None:
            sims, exist = extra
            sim_a = torch.cat([sim, sims], dim=1)
            valid_a = torch.cat([off_diag, exist], dim=1)
        losses = []
        for s, valid in ((sim_a, valid_a), (sim.T, off_diag)):
            rows = valid.any(dim=1)
            if bool(rows.any()):
                hinge = F.relu(self.margin - positive + self._pick(s, valid))
                losses.append(hinge[rows].mean())
        if not losses:
            return sim.sum() * 0.0
        return torch.stack(losses).mean()


def _predictor(dim: int, hidden: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, dim),
    )


class SlapLoss(nn.Module):
    """SLAP: BYOL across modalities, no negatives (Guinot et al. 2025).

    The online audio embedding, through a predictor, regresses the EMA
    target tower's text embedding, and the online text embedding regresses
    the target audio embedding: 2 - 2 cos(q(z_online), sg(z_target)), both
    directions averaged. The target towers are an EMA copy of the model
    (`make_target`, `ema_update`), never trained by gradient.
    """

    def __init__(self, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or 4 * dim
        self.predict_audio = _predictor(dim, hidden)
        self.predict_text = _predictor(dim, hidden)

    def forward(
        self,
        audio: torch.Tensor,
        text: torch.Tensor,
        target_audio: torch.Tensor,
        target_text: torch.Tensor,
    ) -> torch.Tensor:
        pa = F.normalize(self.predict_audio(audio), dim=-1)
        pt = F.normalize(self.predict_text(text), dim=-1)
        ta = F.normalize(target_audio.detach(), dim=-1)
        tt = F.normalize(target_text.detach(), dim=-1)
        loss_a = 2 - 2 * (pa * tt).sum(dim=-1)
        loss_t = 2 - 2 * (pt * ta).sum(dim=-1)
        return (loss_a.mean() + loss_t.mean()) / 2


def make_target(online: nn.Module) -> nn.Module:
    """A frozen copy of the online towers, the EMA target of SLAP."""
    target = copy.deepcopy(online)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, decay: float) -> None:
    """target <- decay * target + (1 - decay) * online, parameters and float buffers.

    Integer buffers (BatchNorm's step counter) are copied.
    """
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.lerp_(o.detach(), 1.0 - decay)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        if t.dtype.is_floating_point:
            t.lerp_(o, 1.0 - decay)
        else:
            t.copy_(o)


def attribute_rank_loss(
    audio: torch.Tensor,
    text: torch.Tensor,
    rows: torch.Tensor,
    labels: torch.Tensor,
    scale: torch.Tensor | float,
) -> torch.Tensor:
    """Per term, a pairwise logistic (soft AUC) loss over the batch.

    `rows` [K] index the bare terms in `text`; `labels` [K, B] say which
    audio rows have the term (1), lack it (0) or are unknown (-1). Every clip
    with the term must score above every clip without it: what retrieving
    "A" and penalising "B" rest on, learnt for each term on its own rather
    than only through whole captions.
    """
    losses = []
    for row, label in zip(rows.tolist(), labels, strict=True):
        scores = audio @ text[row]
        pos, neg = scores[label == 1], scores[label == 0]
        if len(pos) and len(neg):
            losses.append(F.softplus(-scale * (pos[:, None] - neg[None, :])).mean())
    if not losses:
        return audio.new_zeros(())
    return torch.stack(losses).mean()


def pair_probe_loss(
    audio: torch.Tensor,
    text: torch.Tensor,
    pairs: torch.Tensor,
    scale: torch.Tensor | float,
) -> torch.Tensor:
    """Minimal-pair loss: logistic loss on each probe's score difference.

    `pairs` rows are [with-X audio row, without-X audio row, positive probe
    text row, negative probe text row or -1]. The positive probe ("drums")
    must score the with-X render higher, the negative one ("no drums") the
    without-X render. Both renders differ in X alone, so the only way to win
    is to put X's presence, and the meaning of its negation, on one axis,
    which is what "A without B" retrieval and the minimal-pair benchmark ask.
    """
    if not len(pairs):
        return audio.new_zeros(())
    w, o, pos, neg = pairs.unbind(1)
    diff = audio[w] - audio[o]  # [P, D], X's direction for this piece
    margins = [(text[pos] * diff).sum(-1)]
    has_neg = neg >= 0
    if has_neg.any():
        margins.append(-(text[neg[has_neg]] * diff[has_neg]).sum(-1))
    return F.softplus(-scale * torch.cat(margins)).mean()
