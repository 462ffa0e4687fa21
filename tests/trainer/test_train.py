"""The training loop, in process: resume identity, run-folder rules, freezing,
objectives, schedule, metrics."""

from __future__ import annotations

import copy
import itertools
import json
import os
import random
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from trainer import dist
from trainer.augment import Collator, TextAugmenter, negative_kinds
from trainer.checkpoint import RunError
from trainer.config import Config
from trainer.data import ClipDataset, read_split
from trainer.objective import TrainStep, build_optimizer, lr_factor
from trainer.sampling import ResumableSampler, ignore_interrupts
from trainer.train import RunInterrupted, retrieval_metrics, train


def _quiet(_: str) -> None:
    pass


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_resumed_run_continues_identically(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    """4 steps straight == 2 steps, then --resume latest for 2 more (CPU, fp32,
    two accumulated micro-batches a step): weights, temperature, optimizer
    moments and data position all match."""
    tiny_cfg.train.batch_size, tiny_cfg.train.grad_accum = 4, 2
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny_cfg, fixture_data, straight, stop_after=4, log=_quiet)
    train(tiny_cfg, fixture_data, split, stop_after=2, log=_quiet)
    train(tiny_cfg, fixture_data, split, stop_after=4, resume="latest", log=_quiet)
    a, b = (
        _load(straight / "checkpoints/latest.pt"),
        _load(split / "checkpoints/latest.pt"),
    )
    assert a["step"] == b["step"] == 4
    for key, value in a["model"].items():
        torch.testing.assert_close(
            value, b["model"][key], atol=1e-6, rtol=1e-5, msg=key
        )
    torch.testing.assert_close(
        a["loss"]["clip.logit_scale"], b["loss"]["clip.logit_scale"]
    )
    moments_a = [s["exp_avg"] for s in a["optimizer"]["state"].values()]
    moments_b = [s["exp_avg"] for s in b["optimizer"]["state"].values()]
    for x, y in zip(moments_a, moments_b, strict=True):
        torch.testing.assert_close(x, y, atol=1e-7, rtol=1e-5)
    assert a["data_state"] == b["data_state"]
    # the resumed log has each step once, in order, with every metric
    records = [
        json.loads(line) for line in (split / "metrics.jsonl").read_text().splitlines()
    ]
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == [1, 2, 3, 4]
    needed = {
        "loss",
        "infonce",
        "diss",
        "lr",
        "logit_scale",
        "steps_per_s",
        "samples_per_s",
        "skipped_clips",
        "memory_mb",
    }
    assert needed <= set(records[-2 if records[-1]["split"] == "valid" else -1])
    valid = [r for r in records if r["split"] == "valid"]
    assert valid
    assert {"val_loss", "t2a_R@1", "t2a_R@5", "t2a_R@10"} <= set(valid[-1])
    # Each step logs the rate it stepped with (step 1: the warm-up's first
    # value), the resumed steps too.
    lrs = [r["lr"] for r in records if r["split"] == "train"]
    assert lrs == pytest.approx(
        [tiny_cfg.train.lr * lr_factor(s, 2, 6) for s in range(4)]
    )


def test_a_resume_steps_at_the_rate_its_config_sets(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    """--set train.lr / train.weight_decay on --resume apply from the
    resumed step on, on the same schedule (the restored optimizer and
    schedule kept the checkpoint's before)."""
    run = tmp_path / "run"
    train(tiny_cfg, fixture_data, run, stop_after=2, log=_quiet)
    lower = tiny_cfg.train.lr / 4
    tiny_cfg.train.lr, tiny_cfg.train.weight_decay = lower, 0.5
    said: list[str] = []
    train(tiny_cfg, fixture_data, run, stop_after=4, resume="latest", log=said.append)
    assert any("train.lr" in line and "from here on" in line for line in said)
    records = [
        json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    lrs = [r["lr"] for r in records if r["split"] == "train"]
    first = lower * 4
    assert lrs == pytest.approx(
        [first * lr_factor(s, 2, 6) for s in range(2)]
        + [lower * lr_factor(s, 2, 6) for s in range(2, 4)]
    )
    ckpt = _load(run / "checkpoints/latest.pt")
    groups = ckpt["optimizer"]["param_groups"]
    assert groups[0]["weight_decay"] == 0.5
    assert groups[1]["weight_decay"] == 0.0
    assert ckpt["scheduler"]["base_lrs"] == pytest.approx([lower, lower])


def test_a_resume_from_an_earlier_checkpoint_drops_the_abandoned_ones(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    """Resumed from step 2 of a 6-step run, the run's checkpoints after its
    first save are its own: steps 4 and 6 of the abandoned history go (they
    would outlive the new ones under keep_checkpoints), and config.yaml is
    rewritten only then; a torn last metrics line is dropped, not fatal."""
    run = tmp_path / "run"
    train(tiny_cfg, fixture_data, run, log=_quiet)
    names = sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))
    assert names == ["step_0000002.pt", "step_0000004.pt", "step_0000006.pt"]
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 7, "split": "tra')  # a kill mid-write
    config_before = (run / "config.yaml").read_text()
    resume = str(run / "checkpoints" / "step_0000002.pt")
    # A resume that fails before its first checkpoint changes nothing of
    # the run's (here: it diverges).
    diverging = copy.deepcopy(tiny_cfg)
    diverging.train.lr, diverging.train.grad_clip = 1e9, 0.0
    with pytest.raises(RunError, match="the run diverged"):
        train(diverging, fixture_data, run, resume=resume, log=_quiet)
    assert (run / "config.yaml").read_text() == config_before
    assert len(list((run / "checkpoints").glob("step_*.pt"))) == 3
    tiny_cfg.train.max_steps, tiny_cfg.train.keep_checkpoints = 3, 2
    train(tiny_cfg, fixture_data, run, resume=resume, log=_quiet)
    names = sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))
    assert names == ["step_0000002.pt", "step_0000003.pt"]
    assert _load(run / "checkpoints/latest.pt")["step"] == 3
    assert "max_steps: 3" in (run / "config.yaml").read_text()
    records = [
        json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3]


def test_a_resume_steps_on_its_own_schedule(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    """A finished run extended (--max-steps) at the same rate steps at the
    new schedule's rate from its first resumed step, not the old one's 0."""
    run = tmp_path / "run"
    train(tiny_cfg, fixture_data, run, log=_quiet)
    tiny_cfg.train.max_steps = 8
    train(tiny_cfg, fixture_data, run, resume="latest", log=_quiet)
    records = [
        json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    lrs = {r["step"]: r["lr"] for r in records if r["split"] == "train"}
    assert lrs[7] == pytest.approx(tiny_cfg.train.lr * lr_factor(6, 2, 8))
    assert lrs[7] > 0


def test_run_folder_with_checkpoints_is_never_overwritten(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_0000002.pt").write_bytes(b"precious")
    with pytest.raises(
        RunError, match=r"already has checkpoints: pass --resume latest"
    ):
        train(tiny_cfg, fixture_data, run, stop_after=1, log=_quiet)
    assert (run / "checkpoints" / "step_0000002.pt").read_bytes() == b"precious"
    with pytest.raises(RunError, match=r"--resume latest: no checkpoint in .*empty"):
        train(tiny_cfg, fixture_data, tmp_path / "empty", resume="latest", log=_quiet)


def test_a_valid_split_without_a_caption_column_stops_the_run(
    tiny_cfg: Config, tmp_path: Path
) -> None:
    """Only a missing valid split means "no validation"; one that is there but
    lacks a caption column asked for is a mistake, as in the train split."""
    import pyarrow.parquet as pq

    from trainer.data import write_fixture

    data = write_fixture(tmp_path / "data", 12, splits={"train": 0.5, "valid": 0.5})
    captions = data / "captions" / "train.parquet"
    table = pq.read_table(captions)
    pq.write_table(
        table.append_column("my_caption", table.column("caption_writing")), captions
    )
    cfg = copy.deepcopy(tiny_cfg)
    cfg.data.caption_columns = ["my_caption"]
    cfg.train.batch_size = 4
    with pytest.raises(RunError) as caught:
        train(cfg, data, tmp_path / "run", stop_after=1, log=_quiet)
    assert str(caught.value).startswith(
        f"data directory {data}: valid captions have no column 'my_caption' "
    )
    assert not (tmp_path / "run").exists()


def test_frozen_parameters_stay_out_of_the_optimizer_and_unchanged(
    fixture_data: Path, tiny_cfg: Config
) -> None:
    from trainer.models import build_model

    cfg = copy.deepcopy(tiny_cfg)
    cfg.model.text.freeze_layers = 1
    dist.seed_everything(cfg.train.seed)
    initial = build_model(cfg.model)
    step_module = TrainStep(initial, cfg, negative_kinds(cfg))
    optimizer = build_optimizer(step_module, 1e-3, 0.1)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    frozen = [n for n, p in initial.named_parameters() if not p.requires_grad]
    assert any(n.startswith("text.encoder.embeddings") for n in frozen)
    assert any(".layer.0." in n for n in frozen)
    assert not any(".layer.1." in n for n in frozen)
    for name, param in step_module.named_parameters():
        assert (id(param) in in_optimizer) == param.requires_grad, name
    decay, no_decay = optimizer.param_groups
    assert all(p.ndim >= 2 for p in decay["params"])
    assert all(p.ndim < 2 for p in no_decay["params"])
    assert decay["weight_decay"] == 0.1
    assert no_decay["weight_decay"] == 0.0
    assert any(p is step_module.losses["clip"].logit_scale for p in no_decay["params"])

    start = {k: v.clone() for k, v in initial.state_dict().items()}
    batch = _batch(cfg, fixture_data)
    for _ in range(2):
        loss, _parts = step_module(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = initial.state_dict()
    for name in frozen:
        torch.testing.assert_close(after[name], start[name], msg=name)
    moved = [
        n
        for n, p in initial.named_parameters()
        if p.requires_grad and not torch.equal(after[n], start[n])
    ]
    assert any(n.startswith("audio.") for n in moved)
    assert any(n.startswith("text.encoder.encoder.layer.1.") for n in moved)


def _batch(cfg: Config, data: Path) -> dict:
    from trainer.models.text import build_tokenizer

    kinds = negative_kinds(cfg)
    clips, _ = read_split(data, "train")
    ds = ClipDataset(
        clips, cfg.data, train=True, text_fn=TextAugmenter(cfg.augment, cfg.data, kinds)
    )
    collate = Collator(
        build_tokenizer(cfg.model.text), cfg.model.text.max_tokens, kinds
    )
    return collate([ds[i] for i in range(6)])


@pytest.mark.parametrize("objective", ["infonce", "triplet", "slap"])
def test_each_objective_trains_through_one_step(
    fixture_data: Path, tiny_cfg: Config, objective: str
) -> None:
    from trainer.models import build_model

    cfg = copy.deepcopy(tiny_cfg)
    cfg.loss.objective = objective
    torch.manual_seed(0)
    random.seed(0)
    step = TrainStep(build_model(cfg.model), cfg, negative_kinds(cfg))
    optimizer = build_optimizer(step, 1e-2, 0.0)
    batch = _batch(cfg, fixture_data)
    loss, parts = step(batch)
    assert torch.isfinite(loss)
    assert set(parts) == {objective, "diss", "loss"}
    assert loss.item() == pytest.approx(
        parts[objective].item() + 0.1 * parts["diss"].item(), rel=1e-5
    )
    loss.backward()
    grads = [p.grad for p in step.model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    before = {k: v.clone() for k, v in step.model.state_dict().items()}
    optimizer.step()
    step.after_step(ema=0.5)
    if objective == "slap":
        target = step.losses["target"]
        online = dict(step.model.named_parameters())
        for name, t in target.named_parameters():
            expected = 0.5 * before[name] + 0.5 * online[name].detach()
            torch.testing.assert_close(t, expected, msg=name)
            assert not t.requires_grad


def test_hard_negatives_switch_changes_the_loss(
    fixture_data: Path, tiny_cfg: Config
) -> None:
    from trainer.models import build_model

    torch.manual_seed(0)
    model = build_model(tiny_cfg.model).eval()
    batch = _batch(tiny_cfg, fixture_data)
    with_neg = TrainStep(model, tiny_cfg, negative_kinds(tiny_cfg))
    cfg_off = copy.deepcopy(tiny_cfg)
    cfg_off.loss.hard_negatives = False
    without = TrainStep(model, cfg_off, negative_kinds(cfg_off))
    a, b = with_neg(batch)[1]["infonce"], without(batch)[1]["infonce"]
    assert with_neg.hard_kinds == ("full", "half", "swap")
    assert without.hard_kinds == ()
    assert (
        a.item() > b.item()
    )  # extra negative columns can only add to the softmax mass


def test_lr_schedule_warms_up_then_decays_to_the_floor() -> None:
    assert lr_factor(0, 10, 110) == pytest.approx(0.1)
    assert lr_factor(9, 10, 110) == pytest.approx(1.0)
    assert lr_factor(60, 10, 110) == pytest.approx(0.5)
    assert lr_factor(110, 10, 110) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(110, 10, 110, min_ratio=0.1) == pytest.approx(0.1)
    values = [lr_factor(s, 10, 110) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_retrieval_metrics_rank_text_to_audio() -> None:
    eye = torch.eye(12)
    perfect = retrieval_metrics(eye, eye)
    assert perfect["t2a_R@1"] == 100.0
    assert perfect["t2a_median_rank"] == 1.0
    # each text's own audio is beaten by exactly one other (and beats the
    # rest): rank 2 for all
    shifted = retrieval_metrics(eye, eye.roll(1, dims=0) + 0.5 * eye)
    assert shifted["t2a_R@1"] == 0.0
    assert shifted["t2a_R@5"] == 100.0
    assert shifted["t2a_median_rank"] == 2.0
    half = retrieval_metrics(eye, torch.cat([eye[:6], eye[6:].roll(1, dims=0)]))
    assert half["t2a_R@1"] == 50.0


def test_retrieval_metrics_count_ties_against_the_match() -> None:
    # The benchmark's tie rule: audio scoring the same as the match ranks
    # above it, so a collapsed model that scores everything alike is last.
    constant = torch.ones(12, 4)
    collapsed = retrieval_metrics(constant, constant)
    assert collapsed["t2a_R@1"] == 0.0
    assert collapsed["t2a_R@10"] == 0.0
    assert collapsed["t2a_median_rank"] == 12.0
    # each match tied with one other audio, both above the rest: rank 2, not 1
    eye = torch.eye(12)
    tied = retrieval_metrics(eye, eye + eye.roll(1, dims=0))
    assert tied["t2a_R@1"] == 0.0
    assert tied["t2a_median_rank"] == 2.0


def test_retrieval_metrics_rank_non_finite_similarities_last() -> None:
    # A diverged model (NaN embeddings) is the worst, not a perfect R@1.
    eye = torch.eye(12)
    text = eye.clone()
    text[:6] = float("nan")
    half = retrieval_metrics(text, eye)
    assert half["t2a_R@1"] == 50.0
    assert half["t2a_median_rank"] == 6.5  # six at rank 1, six at rank 12
    collapsed = retrieval_metrics(torch.full((12, 4), float("nan")), eye[:, :4])
    assert collapsed["t2a_R@10"] == 0.0
    assert collapsed["t2a_median_rank"] == 12.0


def _strict_json(line: str) -> dict:
    """A JSON record as any parser reads it: NaN and Infinity are not JSON."""

    def refuse(word: str) -> None:
        raise ValueError(f"{word} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_metrics_log_is_json_with_null_for_non_finite_numbers(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    # One validation clip: no chunk of two to take InfoNCE over, no val_loss.
    tiny_cfg.data.valid_max_items = 1
    run = tmp_path / "run"
    train(tiny_cfg, fixture_data, run, stop_after=4, log=_quiet)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    records = [_strict_json(line) for line in lines]
    valid = [r for r in records if r["split"] == "valid"]
    assert valid
    assert valid[-1]["val_loss"] is None
    assert valid[-1]["val_clips"] == 1


def test_a_checkpoint_is_never_written_with_non_finite_weights(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    """A NaN the training loss does not see (a batch-norm statistic, which
    only evaluation and the plugin read) still stops the run before it is
    saved, naming the tensor."""
    run = tmp_path / "run"
    train(tiny_cfg, fixture_data, run, stop_after=2, log=_quiet)
    latest = run / "checkpoints" / "latest.pt"
    ckpt = _load(latest)
    ckpt["model"]["audio.backbone.input_bn.running_mean"][0] = float("nan")
    torch.save(ckpt, latest)
    with pytest.raises(
        RunError,
        match=r"^audio\.backbone\.input_bn\.running_mean is not finite after "
        r"step 4: the run diverged; .* checkpoints up to step 2 are kept",
    ):
        train(tiny_cfg, fixture_data, run, stop_after=4, resume="latest", log=_quiet)
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == [
        "step_0000002.pt"
    ]
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert max(r["step"] for r in records) == 4  # logged, never saved


def test_shipped_configs_load_with_the_documented_recipes() -> None:
    from trainer.config import load_config

    tiny, default, msd = (
        load_config(n) for n in ("tiny", "clap_default", "msd_negation")
    )
    assert tiny.model.embedding_dim == 16
    assert tiny.model.text.encoder == "tiny"
    assert tiny.train.precision == "fp32"
    assert default.model.audio.pretrained == "MTT_musicnn+MSD_musicnn"
    assert default.model.audio.freeze_backbone == "full"
    assert default.model.text.encoder == "minilm"
    assert default.model.text.freeze_layers > 0
    assert default.model.embedding_dim == 256
    assert default.augment.negation
    assert default.loss.dissimilarity_weight > 0
    assert default.data.group_pairs
    # Small on purpose: heavier, the negated phrase dominates the query and
    # "A without B" precision falls (docs/benchmarks.md, minimal-pair loss).
    assert 0 < default.loss.pair_weight <= 0.1
    assert default.augment.absence_word_prob > 0
    assert msd.loss.pair_weight == 0
    assert not msd.data.group_pairs
    assert msd.data.crop_seconds == 10.0
    assert msd.augment.negation_prob == 0.6
    assert msd.model.text.encoder == "bert-base-uncased"
    assert msd.model.audio.pretrained == ""  # from scratch, as the paper
    assert msd.train.precision == "bf16"
    assert 1e-4 <= msd.loss.dissimilarity_weight <= 1e-1


def test_grouped_sampler_keeps_minimal_pairs_together_on_one_rank() -> None:
    # 30 pieces: even ones rendered twice (a minimal pair), odd ones once.
    groups = [f"p{k}" for k in range(30) for _ in range(2 if k % 2 == 0 else 1)]
    data = list(range(len(groups)))

    def order(rank: int, epoch: int, skip: int = 0) -> list[int]:
        sampler = ResumableSampler(
            data, num_replicas=2, rank=rank, shuffle=True, seed=3, drop_last=True
        )
        sampler.groups = groups
        sampler.set_epoch(epoch)
        sampler.skip = skip
        return list(sampler)

    ranks = [order(0, 0), order(1, 0)]
    assert len(ranks[0]) == len(ranks[1]) == len(data) // 2
    assert not set(ranks[0]) & set(ranks[1])  # no clip on two ranks
    for r in ranks:
        seen = [groups[i] for i in r]
        for g in set(seen):
            first, n = seen.index(g), seen.count(g)
            assert seen[first : first + n] == [g] * n  # siblings adjacent
    on_both = {groups[i] for i in ranks[0]} & {groups[i] for i in ranks[1]}
    assert len(on_both) <= 1  # at most the pair cut by the rank boundary
    assert order(0, 1) != ranks[0]  # a new shuffle each epoch
    assert order(0, 0, skip=5) == ranks[0][5:]  # a resume skips what was consumed


@pytest.mark.parametrize("negation", [True, False])
def test_minimal_pair_probes_reach_the_loss(
    fixture_data: Path, tiny_cfg: Config, negation: bool
) -> None:
    from trainer.models.text import build_tokenizer

    cfg = copy.deepcopy(tiny_cfg)
    cfg.loss.pair_weight = 0.5
    cfg.augment.negation = negation
    kinds = negative_kinds(cfg)
    clips, _ = read_split(fixture_data, "train")
    clips = [c for c in clips if _decodes(c.audio, cfg.data.sample_rate)]
    # Make two fixture clips a drums minimal pair (the fixture has no pairs).
    with_drums = next(c for c in clips if "drums" in c.tags)
    without = next(c for c in clips if "drums" not in c.tags)
    for clip in (with_drums, without):
        clip.group, clip.pair_attribute = "piece-x", "drums"
    others = [c for c in clips if c.group != "piece-x"][:4]
    batch_clips = [with_drums, *others, without]
    ds = ClipDataset(
        batch_clips,
        cfg.data,
        train=True,
        text_fn=TextAugmenter(cfg.augment, cfg.data, kinds, pair_probes=True),
    )
    collate = Collator(
        build_tokenizer(cfg.model.text), cfg.model.text.max_tokens, kinds
    )
    batch = collate([ds[i] for i in range(len(batch_clips))])
    assert batch["pairs"].shape == (1, 4)
    w, o, pos, neg = batch["pairs"][0].tolist()
    assert (w, o) == (0, len(batch_clips) - 1)
    assert "drums" in batch["texts"][pos]
    if negation:
        assert batch["texts"][neg].split(", ")[-1] in {
            "no drums",
            "without drums",
            "without any drums",
        }
    else:
        assert neg == -1
    _assert_step_adds(cfg, kinds, batch, "pair", 0.5)


def _assert_step_adds(
    cfg: Config, kinds: tuple[str, ...], batch: dict, part: str, weight: float
) -> None:
    """The training step's loss is InfoNCE (+ dissimilarity) + weight x
    `part`, and every trainable parameter gets a gradient from it."""
    from trainer.models import build_model

    torch.manual_seed(0)
    step = TrainStep(build_model(cfg.model), cfg, kinds)
    loss, parts = step(batch)
    expected = parts["infonce"] + weight * parts[part]
    if "diss" in parts:
        expected = expected + cfg.loss.dissimilarity_weight * parts["diss"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in step.model.parameters() if p.requires_grad)


def _decodes(path: Path, sample_rate: int) -> bool:
    from trainer.data import AudioDecodeError, read_audio

    try:
        read_audio(path, sample_rate, seconds=0.1)
    except AudioDecodeError:
        return False
    return True


def test_pair_probe_loss_rewards_the_right_render() -> None:
    from trainer.losses import pair_probe_loss

    audio = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # with-X, without-X
    x, no_x = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    right = pair_probe_loss(
        audio, torch.stack([x, no_x]), torch.tensor([[0, 1, 0, 1]]), 10.0
    )
    wrong = pair_probe_loss(
        audio, torch.stack([no_x, x]), torch.tensor([[0, 1, 0, 1]]), 10.0
    )
    assert right.item() == pytest.approx(float(F.softplus(torch.tensor(-10.0))))
    assert wrong.item() == pytest.approx(float(F.softplus(torch.tensor(10.0))))
    only_positive = pair_probe_loss(
        audio, torch.stack([x, no_x]), torch.tensor([[0, 1, 0, -1]]), 10.0
    )
    assert only_positive.item() == pytest.approx(right.item())
    empty = pair_probe_loss(audio, audio, torch.zeros((0, 4), dtype=torch.long), 1.0)
    assert empty.item() == 0.0


def test_attribute_rank_loss_is_a_soft_auc_per_term() -> None:
    from trainer.losses import attribute_rank_loss

    audio = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # "piano", "drums"
    # piano: clip 0 has it, clip 1 lacks it, clip 2 unknown (ignored).
    labels = torch.tensor([[1, 0, -1], [0, 1, 1]])
    loss = attribute_rank_loss(audio, text, torch.tensor([0, 1]), labels, 10.0)
    sp = F.softplus
    piano = sp(torch.tensor(-10.0 * (1.0 - 0.0)))
    drums = (sp(torch.tensor(-10.0 * (1.0 - 0.0))) + sp(torch.tensor(-10 * 0.8))) / 2
    assert loss.item() == pytest.approx(float((piano + drums) / 2), rel=1e-5)
    # Ranking the wrong way round costs more; a term with one side only is
    # skipped, and no usable term gives 0.
    flipped = attribute_rank_loss(audio, text, torch.tensor([0, 1]), 1 - labels, 10.0)
    assert flipped.item() > loss.item()
    one_sided = torch.tensor([[1, 1, -1]])
    assert attribute_rank_loss(audio, text, torch.tensor([0]), one_sided, 10.0) == 0


def test_attribute_loss_reaches_the_training_step(
    fixture_data: Path, tiny_cfg: Config
) -> None:
    from trainer.models.text import build_tokenizer

    cfg = copy.deepcopy(tiny_cfg)
    cfg.loss.attribute_weight = 0.3
    kinds = negative_kinds(cfg)
    clips, _ = read_split(fixture_data, "train")
    clips = [c for c in clips if _decodes(c.audio, cfg.data.sample_rate)][:8]
    ds = ClipDataset(
        clips, cfg.data, train=True, text_fn=TextAugmenter(cfg.augment, cfg.data, kinds)
    )
    samples = [ds[i] for i in range(len(clips))]
    for s, clip in zip(samples, clips, strict=True):
        assert set(s["text"].present) <= set(clip.tags)
        assert set(s["text"].absent) <= set(clip.absent or ())
    collate = Collator(
        build_tokenizer(cfg.model.text),
        cfg.model.text.max_tokens,
        kinds,
        attribute_terms=cfg.loss.attribute_terms,
    )
    batch = collate(samples)
    assert len(batch["attribute_rows"]) > 0
    _assert_step_adds(cfg, kinds, batch, "attr", 0.3)


def test_several_data_directories_train_together(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    """`--data SYNTH --data REAL`: both directories' training clips are read,
    a directory without a validation split is said and skipped, and the
    checkpoint records every directory."""
    from trainer.data import write_fixture

    second = write_fixture(tmp_path / "second", 10, splits={"train": 1.0}, seed=3)
    lines: list[str] = []
    run = tmp_path / "run"
    train(tiny_cfg, [fixture_data, second], run, stop_after=1, log=lines.append)
    first_train = next(
        line for line in lines if f"train split of {fixture_data}" in line
    )
    # 12 rows, one without its file (the corrupt one is found when decoded)
    assert first_train.split(": ", 1)[1].startswith("11 clips (12 rows, 1 without")
    assert any(line.startswith(f"train split of {second}: 10 clips") for line in lines)
    assert any(line.startswith(f"valid split of {fixture_data}: ") for line in lines)
    assert any(line.startswith(f"no validation of {second}: ") for line in lines)
    ckpt = _load(run / "checkpoints" / "latest.pt")
    assert ckpt["data_dirs"] == [str(fixture_data.resolve()), str(second.resolve())]
    assert ckpt["data_dir"] == str(fixture_data.resolve())


def test_a_resume_records_the_folders_not_their_spelling(
    fixture_data: Path,
    tiny_cfg: Config,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Trained on two folders and resumed with one named through a link and
    the other relatively, the checkpoint and the manifest still name the
    folders the run trained on (they named the last resume's spelling)."""
    from trainer.data import write_fixture
    from trainer.export.bundle import export_bundle

    second = write_fixture(tmp_path / "second", 10, splits={"train": 1.0}, seed=3)
    run = tmp_path / "run"
    train(tiny_cfg, [fixture_data, second], run, stop_after=1, log=_quiet)
    (tmp_path / "link").symlink_to(fixture_data)
    monkeypatch.chdir(tmp_path)
    spelt = [Path("link"), Path("second")]
    train(tiny_cfg, spelt, run, stop_after=2, resume="latest", log=_quiet)
    folders = [str(fixture_data.resolve()), str(second.resolve())]
    ckpt = _load(run / "checkpoints" / "latest.pt")
    assert (ckpt["step"], ckpt["data_dirs"]) == (2, folders)
    assert ckpt["data_dir"] == folders[0]
    out = export_bundle(run, tmp_path / "bundle", version="0.1.0", quantize=False)
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    assert manifest["training"]["data"] == ", ".join(folders)


def test_source_weights_draw_each_directory_in_its_share() -> None:
    """`data.source_weights`: a source of weight 0.5 gives a fresh random half
    of its clips each epoch, 2.0 every clip twice; pairs still stay together
    and the ranks still split the epoch without overlap."""
    # Source 0: 20 pieces rendered as pairs (40 clips); source 1: 30 clips.
    groups: list[str | None] = [f"p{k}" for k in range(20) for _ in range(2)]
    groups += [None] * 30
    sources = [0] * 40 + [1] * 30
    data = list(range(len(groups)))

    def order(weights: list[float], rank: int = 0, epoch: int = 0) -> list[int]:
        sampler = ResumableSampler(
            data, num_replicas=2, rank=rank, shuffle=True, seed=5, drop_last=True
        )
        sampler.groups = groups
        sampler.weigh(sources, weights)
        sampler.set_epoch(epoch)
        return list(sampler)

    halves = [order([1.0, 0.5], rank) for rank in (0, 1)]
    both = halves[0] + halves[1]
    assert len(halves[0]) == len(halves[1]) == (40 + 15) // 2
    assert not set(halves[0]) & set(halves[1])
    assert sum(i >= 40 for i in both) in (14, 15)  # drop_last may cut one
    assert sum(i < 40 for i in both) >= 39
    for r in halves:
        seen = [groups[i] for i in r if i < 40]
        for g in set(seen):
            first, n = seen.index(g), seen.count(g)
            assert seen[first : first + n] == [g] * n  # siblings adjacent
    later = {i for rank in (0, 1) for i in order([1.0, 0.5], rank, epoch=1)}
    assert {i for i in both if i >= 40} != {i for i in later if i >= 40}

    twice = order([0.0, 2.0], 0) + order([0.0, 2.0], 1)
    assert sorted(twice) == sorted(list(range(40, 70)) * 2)
    # Every clip once is the unweighted order itself.
    plain = ResumableSampler(
        data, num_replicas=2, rank=0, shuffle=True, seed=5, drop_last=True
    )
    plain.groups = groups
    assert order([1.0, 1.0]) == list(plain)


@pytest.mark.parametrize("weights", [[1.0], [1.0, -0.5], [0.0, 0.0]])
def test_source_weights_must_fit_the_data_directories(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path, weights: list[float]
) -> None:
    from trainer.data import write_fixture

    second = write_fixture(tmp_path / "second", 10, splits={"train": 1.0}, seed=3)
    cfg = copy.deepcopy(tiny_cfg)
    cfg.data.source_weights = weights
    with pytest.raises(RunError, match=r"one weight >= 0 per --data directory \(2\)"):
        train(cfg, [fixture_data, second], tmp_path / "run", stop_after=1)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_source_weights_train_on_the_directories_shares(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    from trainer.data import write_fixture

    second = write_fixture(tmp_path / "second", 10, splits={"train": 1.0}, seed=3)
    cfg = copy.deepcopy(tiny_cfg)
    cfg.data.source_weights = [1.0, 0.5]
    lines: list[str] = []
    train(cfg, [fixture_data, second], tmp_path / "run", stop_after=1, log=lines.append)
    assert "  source weight 0.5" in lines
    ckpt = _load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 1


def _ctrl_c_at(prefix: str, times: int = 1) -> Callable[[str], None]:
    """A run log that presses Ctrl-C (a real SIGINT) `times` times when a
    line starting with `prefix` is logged."""

    def log(line: str) -> None:
        if line.startswith(prefix):
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)

    return log


def test_an_interrupted_run_saves_its_step_and_resumes_identically(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    """Ctrl-C during step 3 (no periodic checkpoint there): step 3 is saved
    as a periodic checkpoint would be, and --resume latest to step 4 gives
    the very weights, moments and data position of 4 steps straight."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny_cfg, fixture_data, straight, stop_after=4, log=_quiet)
    with pytest.raises(RunInterrupted) as stopped:
        train(tiny_cfg, fixture_data, split, log=_ctrl_c_at("step 3/6 "))
    assert str(stopped.value) == (
        f"saved step 3 of 6 ({split / 'checkpoints' / 'step_0000003.pt'}); "
        "--resume latest continues from step 3"
    )
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert _load(split / "checkpoints" / "latest.pt")["step"] == 3
    lines: list[str] = []
    train(
        tiny_cfg, fixture_data, split, stop_after=4, resume="latest", log=lines.append
    )
    assert any(line.startswith("resumed from step 3 (") for line in lines)
    a, b = (
        _load(straight / "checkpoints/latest.pt"),
        _load(split / "checkpoints/latest.pt"),
    )
    assert a["step"] == b["step"] == 4
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key, value in a["loss"].items():
        assert torch.equal(value, b["loss"][key]), key
    for state_a, state_b in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(state_a["exp_avg"], state_b["exp_avg"])
        assert torch.equal(state_a["exp_avg_sq"], state_b["exp_avg_sq"])
    assert a["data_state"] == b["data_state"]


def test_sigterm_saves_the_step_as_ctrl_c_does(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    """A job scheduler's SIGTERM (sent before it kills a job at its time
    limit) ends a single-process run after its step, saved."""
    before = signal.getsignal(signal.SIGTERM)
    run = tmp_path / "run"

    def log(line: str) -> None:
        if line.startswith("step 3/6 "):
            signal.raise_signal(signal.SIGTERM)

    with pytest.raises(RunInterrupted) as stopped:
        train(tiny_cfg, fixture_data, run, log=log)
    assert str(stopped.value).startswith("saved step 3 of 6 (")
    assert stopped.value.signum == signal.SIGTERM  # exits 143, as killed by it
    assert _load(run / "checkpoints" / "latest.pt")["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is before


class _SelfInterrupting(torch.utils.data.Dataset):
    """Items whose reading sends Ctrl-C to the process reading them."""

    def __len__(self) -> int:
        return 4

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum

    def __getitem__(self, index: int) -> int:
        os.kill(os.getpid(), self.signum)
        return index


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_data_workers_leave_ctrl_c_to_the_main_process(signum: int) -> None:
    # A worker started with the default handler (spawn, forkserver) would
    # die of a terminal's Ctrl-C or a scheduler's SIGTERM, and the batch it
    # owed would never come.
    loader = torch.utils.data.DataLoader(
        _SelfInterrupting(signum),
        num_workers=2,
        worker_init_fn=ignore_interrupts,
        multiprocessing_context="fork",
    )
    assert sorted(int(batch) for batch in loader) == [0, 1, 2, 3]


def test_an_interrupt_that_cannot_save_says_what_is_kept(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    # Before the first step (reading the data, building a feature cache).
    with pytest.raises(RunInterrupted) as stopped:
        train(tiny_cfg, fixture_data, run, log=_ctrl_c_at("train split: "))
    assert str(stopped.value) == (
        "stopped before step 1, while preparing the run (a feature cache being "
        "built is not kept); no checkpoint yet, nothing to resume"
    )
    assert not list(run.rglob("*.pt"))
    # Ctrl-C twice: at once, without saving; the periodic checkpoint stays.
    with pytest.raises(RunInterrupted) as stopped:
        train(tiny_cfg, fixture_data, run, log=_ctrl_c_at("step 3/6 ", times=2))
    assert str(stopped.value) == (
        "stopped after step 3 of 6 without saving it (Ctrl-C twice stops at "
        "once); --resume latest continues from step 2, the last checkpoint"
    )
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert _load(run / "checkpoints" / "latest.pt")["step"] == 2
    # A resumed run interrupted while it prepares keeps its checkpoint too.
    with pytest.raises(RunInterrupted) as stopped:
        train(
            tiny_cfg,
            fixture_data,
            run,
            resume="latest",
            log=_ctrl_c_at("resumed from step 2"),
        )
    assert str(stopped.value).startswith("stopped before step 3, while preparing ")
    assert str(stopped.value).endswith(
        "; --resume latest continues from step 2, the last checkpoint"
    )
