"""Losses: hand-computed InfoNCE, hard negatives, dissimilarity sign, triplet, SLAP,
and the all-gather under a real two-process gloo group."""

from __future__ import annotations

import itertools
import math
import os
import socket

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from trainer.losses import (
    INIT_LOGIT_SCALE,
    MAX_LOGIT_SCALE,
    ClipLoss,
    DissimilarityLoss,
    SlapLoss,
    TripletLoss,
    ema_update,
    make_target,
)


def _unit(rows: list[list[float]]) -> torch.Tensor:
    return F.normalize(torch.tensor(rows, dtype=torch.float64), dim=-1)


def test_logit_scale_starts_at_clip_value_and_is_capped() -> None:
    loss = ClipLoss()
    assert loss.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert loss.scale().item() == pytest.approx(1 / 0.07, rel=1e-6)
    with torch.no_grad():
        loss.logit_scale.fill_(10.0)
    assert loss.scale().item() == pytest.approx(100.0)
    loss.clamp_()
    assert loss.logit_scale.item() == pytest.approx(MAX_LOGIT_SCALE)


def test_infonce_matches_a_hand_computed_3x3_case() -> None:
    audio = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    text = _unit([[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    loss = ClipLoss(init_logit_scale=math.log(2.0)).double()
    got = loss(audio, text).item()

    s = math.exp(loss.logit_scale.item())  # 2, up to float32 rounding of log(2)
    assert s == pytest.approx(2.0, rel=1e-6)
    sim = [
        [sum(a * t for a, t in zip(ar, tr, strict=True)) for tr in text.tolist()]
        for ar in audio.tolist()
    ]

    def ce(row: list[float], target: int) -> float:
        return -(s * row[target]) + math.log(sum(math.exp(s * v) for v in row))

    a2t = sum(ce(sim[i], i) for i in range(3)) / 3
    t2a = sum(ce([sim[j][i] for j in range(3)], i) for i in range(3)) / 3
    assert got == pytest.approx((a2t + t2a) / 2, rel=1e-12)
    # and a sanity anchor: perfectly matched orthogonal pairs beat this batch
    assert loss(audio, audio).item() < got


def test_hard_negatives_close_to_the_audio_raise_the_loss() -> None:
    torch.manual_seed(0)
    audio = F.normalize(torch.randn(4, 8), dim=-1)
    text = F.normalize(audio + 0.3 * torch.randn(4, 8), dim=-1)
    loss = ClipLoss()
    base = loss(audio, text).item()
    far = -audio.unsqueeze(1)  # opposite of each clip: harmless
    near = F.normalize(audio + 0.05 * torch.randn(4, 8), dim=-1).unsqueeze(1)
    assert loss(audio, text, far).item() == pytest.approx(base, abs=1e-3)
    assert loss(audio, text, near).item() > base + 0.5
    masked = torch.zeros(4, 1, dtype=torch.bool)
    assert loss(audio, text, near, masked).item() == pytest.approx(base, abs=1e-6)


def test_dissimilarity_decreases_as_caption_and_negation_separate() -> None:
    loss = DissimilarityLoss()
    caption = torch.tensor([[1.0, 0.0]])
    values = []
    for angle in torch.linspace(0, math.pi, 7):
        negated = torch.stack([torch.cos(angle), torch.sin(angle)]).unsqueeze(0)
        values.append(loss(caption, negated).item())
    assert values[0] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(-1.0)
    assert all(a > b for a, b in itertools.pairwise(values))
    # the sign convention: a gradient step on L_total = L + k L_diss moves them apart
    negated = nn.Parameter(torch.tensor([[0.8, 0.6]]))
    before = F.cosine_similarity(caption, negated).item()
    (0.1 * loss(caption, negated)).backward()
    with torch.no_grad():
        negated -= 1.0 * negated.grad
    assert F.cosine_similarity(caption, negated).item() < before
    # rows without a negation do not count; none at all gives zero
    mask = torch.tensor([True, False])
    two = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert loss(
        two, two.flip(0) * 0 + torch.tensor([[1.0, 0.0]]), mask
    ).item() == pytest.approx(1.0)
    assert loss(two, two, torch.tensor([False, False])).item() == 0.0


def test_triplet_is_zero_when_the_margin_is_met_and_positive_otherwise() -> None:
    audio = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]]).float()
    loss = TripletLoss(margin=0.2)
    assert loss(audio, audio).item() == 0.0  # pos 1, negatives 0: margin met
    close = _unit([[1, 0.1, 0], [0.1, 1, 0], [0, 0, 1]]).float()
    near_text = _unit([[0.6, 0.8, 0], [0.8, 0.6, 0], [0, 0, 1]]).float()
    assert loss(audio, near_text).item() > 0.0
    assert loss(audio, close).item() == 0.0
    hard = audio.unsqueeze(1) * 0.95  # own hard negative almost the positive
    assert loss(audio, audio, hard).item() > 0.0
    rnd = TripletLoss(margin=0.2, negative="random")
    torch.manual_seed(0)
    assert 0.0 < rnd(audio, near_text).item() <= loss(audio, near_text).item() + 1e-6
    with pytest.raises(ValueError, match="hardest"):
        TripletLoss(negative="semi")


def test_slap_ema_moves_the_target_toward_the_online_weights() -> None:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    target = make_target(online)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
        online[1].running_mean.fill_(2.0)
    old = [p.clone() for p in target.parameters()]
    distance = sum(
        (t - o).norm()
        for t, o in zip(target.parameters(), online.parameters(), strict=True)
    )
    ema_update(target, online, decay=0.9)
    for t, o, before in zip(target.parameters(), online.parameters(), old, strict=True):
        torch.testing.assert_close(t, 0.9 * before + 0.1 * o)
    after = sum(
        (t - o).norm()
        for t, o in zip(target.parameters(), online.parameters(), strict=True)
    )
    assert after < distance
    assert target[1].running_mean[0].item() == pytest.approx(0.2)
    ema_update(target, online, decay=0.0)
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(t, o)


def test_slap_loss_trains_predictors_not_targets() -> None:
    torch.manual_seed(0)
    slap = SlapLoss(dim=8)
    audio = nn.Parameter(F.normalize(torch.randn(6, 8), dim=-1))
    text = nn.Parameter(F.normalize(torch.randn(6, 8), dim=-1))
    target_audio = audio.detach().clone().requires_grad_(True)
    target_text = text.detach().clone().requires_grad_(True)
    value = slap(audio, text, target_audio, target_text)
    assert 0.0 <= value.item() <= 4.0
    value.backward()
    assert audio.grad is not None
    assert slap.predict_audio[0].weight.grad is not None
    assert target_audio.grad is None  # stop-gradient on the target branch
    assert target_text.grad is None


# --------------------------------------------------------------------------- DDP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gathered_loss_worker(rank: int, world: int, port: int, audio, text, out) -> None:
    import torch.distributed as td

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    td.init_process_group("gloo", rank=rank, world_size=world)
    try:
        half = audio.shape[0] // world
        a = audio[rank * half : (rank + 1) * half].clone().requires_grad_(True)
        t = text[rank * half : (rank + 1) * half].clone().requires_grad_(True)
        loss = ClipLoss()
        value = loss(a, t)
        value.backward()
        # DDP averages gradients over ranks; do the same by hand
        grad_scale = torch.tensor([loss.logit_scale.grad.item()])
        td.all_reduce(grad_scale)
        out.put(
            (
                rank,
                value.item(),
                (a.grad / world).tolist(),
                (t.grad / world).tolist(),
                grad_scale.item() / world,
            )
        )
    finally:
        td.destroy_process_group()


def test_all_gathered_infonce_equals_the_single_process_batch() -> None:
    """Two gloo ranks with half a batch each train exactly like one process
    with the whole batch: same mean loss, same gradients on every feature."""
    import torch.multiprocessing as mp

    torch.manual_seed(0)
    audio = F.normalize(torch.randn(8, 6), dim=-1)
    text = F.normalize(audio + 0.5 * torch.randn(8, 6), dim=-1)
    # forkserver: children forked from a fresh server (a fork of this process
    # could inherit a busy OpenMP pool and hang), importing torch only once.
    ctx = mp.get_context("forkserver")
    queue = ctx.SimpleQueue()
    mp.start_processes(
        _gathered_loss_worker,
        args=(2, _free_port(), audio, text, queue),
        nprocs=2,
        start_method="forkserver",
    )
    out = {}
    for _ in range(2):  # plain lists: tensors would travel as shared memory
        rank, *values = queue.get()
        out[rank] = (
            values[0],
            torch.tensor(values[1]),
            torch.tensor(values[2]),
            values[3],
        )

    a = audio.clone().requires_grad_(True)
    t = text.clone().requires_grad_(True)
    single = ClipLoss()
    value = single(a, t)
    value.backward()
    losses = [out[r][0] for r in range(2)]
    assert sum(losses) / 2 == pytest.approx(value.item(), rel=1e-5)
    torch.testing.assert_close(
        torch.cat([out[0][1], out[1][1]]), a.grad, atol=1e-6, rtol=1e-4
    )
    torch.testing.assert_close(
        torch.cat([out[0][2], out[1][2]]), t.grad, atol=1e-6, rtol=1e-4
    )
    assert out[0][3] == pytest.approx(single.logit_scale.grad.item(), rel=1e-4)
    assert pytest.approx(math.log(1 / 0.07)) == INIT_LOGIT_SCALE
