"""The training loop: one process per device, torchrun for several (nanoGPT-style).

    python -m trainer train --config tiny --data DATA --run-dir RUN
    torchrun --nproc_per_node=8 -m trainer train --config msd_negation ...

A run folder holds config.yaml (the resolved config), metrics.jsonl (one JSON
record per log/validation step) and checkpoints/step_NNNNNNN.pt + latest.pt.
A checkpoint carries everything needed to continue identically: model, loss
(temperature, SLAP predictors and target), optimizer, scheduler, grad scaler,
step, config, every rank's RNG states and the position in the data.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import resource
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, DistributedSampler

from trainer import dist
from trainer.augment import Collator, TextAugmenter, negative_kinds, tokenize
from trainer.config import Config, apply_overrides, from_dict, load_config
from trainer.data import ClipDataset, DataError, collate_eval, read_split
from trainer.features import CachedClipDataset
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

CHECKPOINTS = "checkpoints"
LATEST = "latest.pt"
OBJECTIVES = ("infonce", "triplet", "slap")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

Log = Callable[[str], None]


class RunError(Exception):
    """A run that cannot start or continue; the message is one line."""


def _print(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- run folder


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:07d}.pt"


def resolve_resume(run_dir: Path, resume: str) -> Path:
    """`latest` -> RUN/checkpoints/latest.pt; anything else is a checkpoint path."""
    path = Path(run_dir) / CHECKPOINTS / LATEST if resume == "latest" else Path(resume)
    if not path.is_file():
        raise RunError(f"--resume {resume}: no checkpoint at {path}")
    return path


def resolve_config(
    config: str | None, overrides: list[str], run_dir: Path, resume: str | None
) -> Config:
    """The config a run trains with.

    A resumed run continues with its own RUN/config.yaml (so a changed file in
    trainer/configs/ cannot silently alter it); `--set` overrides still apply.
    """
    saved = Path(run_dir) / "config.yaml"
    if resume and saved.is_file():
        import yaml

        return from_dict(apply_overrides(yaml.safe_load(saved.read_text()), overrides))
    if not config:
        raise RunError(
            "--config is required (a name in trainer/configs/ or a YAML file)"
        )
    return load_config(config, overrides)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write step_NNNNNNN.pt and point latest.pt at it (hard link, else a copy)."""
    folder = Path(run_dir) / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(run_dir, step)
    _atomic_save(state, path)
    tmp = folder / (LATEST + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)  # no second copy of a multi-GB file
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, folder / LATEST)
    if keep > 0:
        for old in sorted(folder.glob("step_*.pt"))[:-keep]:
            old.unlink()
    return path


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records past `step` (a crash may have logged past its last checkpoint)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in kept if json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept))


# --------------------------------------------------------------------------- objective


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

        negatives = mask = None
        use = [h for h, kind in enumerate(kinds) if kind in self.hard_kinds]
        if use and len(rows):
            full = negatives_flat.new_zeros(n, len(kinds), text.shape[1])
            full_mask = torch.zeros(n, len(kinds), dtype=torch.bool, device=text.device)
            full[rows, cols] = negatives_flat
            full_mask[rows, cols] = True
            index = torch.tensor(use, device=text.device)
            negatives, mask = full[:, index], full_mask[:, index]

        parts: dict[str, torch.Tensor] = {}
        if self.objective == "infonce":
            clip = self.losses["clip"]
            main = torch.stack([clip(audio, v, negatives, mask) for v in views]).mean()
        elif self.objective == "triplet":
            triplet = self.losses["triplet"]
            main = torch.stack(
                [triplet(audio, v, negatives, mask) for v in views]
            ).mean()
        else:
            target = self.losses["target"]
            with torch.no_grad():
                target_audio = target.encode_audio(batch["audio"])
                target_text = target.encode_text(
                    batch["input_ids"], batch["attention_mask"]
                )
            slap = self.losses["slap"]
            main = torch.stack(
                [
                    slap(audio, v, target_audio, target_text[k * n : (k + 1) * n])
                    for k, v in enumerate(views)
                ]
            ).mean()
        parts[self.objective] = main
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

    def _probe_scale(self) -> torch.Tensor | float:
        """The sharpness of the short-text losses: InfoNCE's learnt scale, or
        CLIP's initial 1/0.07 under the other objectives."""
        return self.losses["clip"].scale() if "clip" in self.losses else 1 / 0.07


# --------------------------------------------------------------------------- schedule


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


# --------------------------------------------------------------------------- data


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start part-way into an epoch (after a resume).

    With `groups` (one key per item, e.g. the synthetic corpus's base piece)
    it shuffles whole groups and hands each rank a contiguous run of the
    shuffled order, so a minimal pair's two clips stay next to each other and
    on the same rank, i.e. mostly in the same batch.
    """

    skip = 0
    groups: Sequence[str | None] | None = None

    def _grouped(self) -> list[int]:
        assert self.groups is not None
        members: dict[str, list[int]] = {}
        for i, key in enumerate(self.groups):
            members.setdefault(key if key is not None else f"\0{i}", []).append(i)
        order = list(members.values())
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        perm = (
            torch.randperm(len(order), generator=g).tolist()
            if self.shuffle
            else range(len(order))
        )
        flat = [i for k in perm for i in order[k]]
        if self.drop_last:
            flat = flat[: self.total_size]
        else:
            flat += flat[: self.total_size - len(flat)]
        start = self.rank * self.num_samples
        return flat[start : start + self.num_samples]

    def __iter__(self) -> Iterator[int]:
        if self.groups is not None:
            return iter(self._grouped()[self.skip :])
        return iter(list(super().__iter__())[self.skip :])

    def __len__(self) -> int:
        return max(0, super().__len__() - self.skip)


class DataPosition:
    """Epoch and micro-batches consumed in it: what a checkpoint needs to resume."""

    def __init__(self, epoch: int = 0, batches: int = 0) -> None:
        self.epoch, self.batches = epoch, batches


def _micro_batches(
    dataset: ClipDataset,
    sampler: ResumableSampler,
    collate: Collator,
    cfg: Config,
    position: DataPosition,
    pin: bool,
) -> Iterator[dict[str, Any]]:
    """Endless micro-batches, epoch after epoch, from `position` on."""
    while True:
        dataset.epoch = position.epoch
        sampler.set_epoch(position.epoch)
        sampler.skip = position.batches * cfg.train.batch_size
        # The loader draws its worker seeds from its own generator, so creating
        # it does not move the global torch RNG (a resumed run stays identical).
        generator = torch.Generator().manual_seed(
            cfg.train.seed * 1000 + position.epoch
        )
        loader = DataLoader(
            dataset,
            batch_size=cfg.train.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=cfg.data.num_workers,
            drop_last=True,
            pin_memory=pin,
            generator=generator,
        )
        for batch in loader:
            position.batches += 1
            yield batch
        position.epoch += 1
        position.batches = 0


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


# --------------------------------------------------------------------------- evaluation


def retrieval_metrics(
    text: torch.Tensor, audio: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)
) -> dict[str, float]:
    """Text->audio recall@k (percent) and median rank; text i's match is audio i.

    Ranks are the benchmark's (`trainer.evaluate.metrics.target_ranks`), tie
    rule included: audio scoring the same as the match ranks above it.
    """
    from trainer.evaluate.metrics import recall_at, target_ranks

    sim = (text @ audio.T).float().cpu().numpy()
    ranks = target_ranks(sim, range(len(sim)))
    out = {f"t2a_R@{k}": 100 * recall_at(ranks, k) for k in ks}
    out["t2a_median_rank"] = float(np.median(ranks))
    return out


def info_nce(audio: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
    """Symmetric InfoNCE of matched rows at a fixed scale (validation)."""
    logits = scale * audio @ text.T
    labels = torch.arange(len(audio), device=audio.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@torch.no_grad()
def validate(
    step_module: TrainStep,
    loader: DataLoader,
    tokenizer: Any,
    cfg: Config,
    ctx: dist.DistContext,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> dict[str, float]:
    """Validation loss (InfoNCE over batch-sized chunks) and text->audio recall.

    Every rank embeds its shard; the embeddings are gathered so all ranks
    compute the same numbers. A clip's audio embedding is the normalised mean
    of its `eval_crops` fixed crops, as the plugin pools windows.
    """
    model = step_module.model
    was_training = model.training
    model.eval()
    audio_rows, text_rows, index_rows = [], [], []
    skipped = 0
    for batch in loader:
        audio = batch["audio"].to(ctx.device)
        b, c, s = audio.shape
        ids, mask = tokenize(tokenizer, batch["texts"], cfg.model.text.max_tokens)
        with autocast():
            emb_audio = model.encode_audio(audio.reshape(b * c, s)).float()
            emb_text = model.encode_text(
                ids.to(ctx.device), mask.to(ctx.device)
            ).float()
        audio_rows.append(F.normalize(emb_audio.reshape(b, c, -1).mean(dim=1), dim=-1))
        text_rows.append(emb_text)
        index_rows.append(batch["index"].to(ctx.device))
        skipped += batch["skipped"]
    model.train(was_training)
    audio_emb = dist.all_gather_tensor(torch.cat(audio_rows))
    text_emb = dist.all_gather_tensor(torch.cat(text_rows))
    index = dist.all_gather_tensor(torch.cat(index_rows))
    # The distributed sampler pads shards with repeats; keep each clip once.
    order = torch.argsort(index, stable=True)
    index, audio_emb, text_emb = index[order], audio_emb[order], text_emb[order]
    first = torch.ones_like(index, dtype=torch.bool)
    first[1:] = index[1:] != index[:-1]
    audio_emb, text_emb = audio_emb[first], text_emb[first]
    scale = step_module.logit_scale()
    chunk = cfg.train.batch_size
    losses = [
        info_nce(audio_emb[i : i + chunk], text_emb[i : i + chunk], scale)
        for i in range(0, len(audio_emb), chunk)
        if len(audio_emb[i : i + chunk]) > 1
    ]
    out = retrieval_metrics(text_emb, audio_emb)
    out["val_loss"] = float(torch.stack(losses).mean()) if losses else float("nan")
    out["val_clips"] = len(audio_emb)
    out["val_skipped_clips"] = dist.reduce_sum_int(skipped, ctx.device)
    return out


# --------------------------------------------------------------------------- loop


def _memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _feature_cache(
    model: nn.Module,
    cfg: Config,
    data_dir: Path,
    train_clips: list[Any],
    valid_clips: list[Any],
    ctx: dist.DistContext,
    log: Log,
) -> tuple[Any, Any]:
    """Frozen-backbone features of both splits; rank 0 builds, the others read.

    Switches the audio tower to take features, so every later forward pass
    (training, validation, the SLAP target) skips the frozen backbone.
    """
    from trainer.features import build_features, can_cache

    if not can_cache(cfg):
        raise RunError(
            "train.cache_features needs model.audio.freeze_backbone: full "
            f"(it is {cfg.model.audio.freeze_backbone!r})"
        )
    cache_dir = Path(cfg.train.cache_dir) if cfg.train.cache_dir else data_dir / "cache"
    say = log if ctx.is_main else (lambda _m: None)
    result = []
    for rank_turn in (True, False):  # rank 0 writes first, then the rest read
        if ctx.is_main == rank_turn:
            result = [
                build_features(model.audio, clips, cfg, crops, cache_dir, log=say)
                if clips
                else None
                for clips, crops in (
                    (train_clips, cfg.train.cache_crops),
                    (valid_clips, cfg.data.eval_crops),
                )
            ]
        dist.barrier()
    model.audio.takes_features = True
    return result[0], result[1]


def train(
    cfg: Config,
    data_dir: Path | str,
    run_dir: Path | str,
    *,
    resume: str | None = None,
    device: str | None = None,
    stop_after: int | None = None,
    log: Log = _print,
) -> dict[str, Any]:
    """Train `cfg` on DATA into RUN; returns the last train and validation metrics.

    `stop_after` ends the run at that step without changing the schedule
    (which always spans cfg.train.max_steps): what a job-time limit does.
    Under torchrun this is called once per rank.
    """
    ctx = dist.init_distributed(device)
    try:
        return _train(cfg, Path(data_dir), Path(run_dir), ctx, resume, stop_after, log)
    finally:
        dist.cleanup()


def _train(
    cfg: Config,
    data_dir: Path,
    run_dir: Path,
    ctx: dist.DistContext,
    resume: str | None,
    stop_after: int | None,
    log: Log,
) -> dict[str, Any]:
    from trainer.models import build_model
    from trainer.models.text import build_tokenizer

    def say(message: str) -> None:
        if ctx.is_main:
            log(message)

    tc = cfg.train
    if tc.precision not in PRECISIONS:
        raise RunError(
            f"train.precision must be one of {', '.join(PRECISIONS)}, "
            f"not {tc.precision!r}"
        )
    if tc.pooled_crops_prob and not tc.cache_features:
        raise RunError(
            "train.pooled_crops_prob pools cached crops: it needs "
            "train.cache_features: true"
        )
    ckpt: dict[str, Any] | None = None
    if resume:
        ckpt = torch.load(
            resolve_resume(run_dir, resume), map_location="cpu", weights_only=False
        )
    elif any((run_dir / CHECKPOINTS).glob("*.pt")):
        raise RunError(
            f"run folder {run_dir} already has checkpoints: "
            "pass --resume latest to continue it, or choose another --run-dir"
        )

    # Data first: a wrong data directory should fail before a model loads.
    try:
        train_clips, stats = read_split(
            data_dir,
            cfg.data.train_split,
            caption_columns=cfg.data.caption_columns,
            max_items=cfg.data.max_items,
        )
    except DataError as exc:
        raise RunError(str(exc)) from exc
    say(
        f"train split: {len(train_clips)} clips ({stats.rows} rows, "
        f"{stats.missing_audio} without audio file, {stats.no_text} without text)"
        + (
            f"; missing e.g. {', '.join(stats.missing_examples)}"
            if stats.missing_audio
            else ""
        )
    )
    per_step = tc.batch_size * ctx.world_size
    if len(train_clips) < per_step:
        raise RunError(
            f"train split has {len(train_clips)} usable clips, fewer than one batch "
            f"({tc.batch_size} x {ctx.world_size} ranks)"
        )
    valid_clips = []
    try:
        valid_clips, vstats = read_split(
            data_dir,
            cfg.data.valid_split,
            caption_columns=cfg.data.caption_columns,
            max_items=cfg.data.valid_max_items,
        )
        say(
            f"valid split: {len(valid_clips)} clips "
            f"({vstats.missing_audio} without audio file)"
        )
    except DataError as exc:
        say(f"no validation: {exc}")

    # Same initial weights on every rank, then per-rank streams.
    dist.seed_everything(tc.seed)
    model = build_model(cfg.model, load_weights=ckpt is None)
    tokenizer = build_tokenizer(cfg.model.text)
    kinds = negative_kinds(cfg)
    step_module = TrainStep(model, cfg, kinds).to(ctx.device)
    optimizer = build_optimizer(step_module, tc.lr, tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: lr_factor(s, tc.warmup_steps, tc.max_steps, tc.min_lr_ratio),
    )
    amp_dtype = PRECISIONS[tc.precision]
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=tc.precision == "fp16")
    dist.seed_everything(tc.seed + ctx.rank)

    n_total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    say(
        f"model: {n_train:,} of {n_total:,} parameters trainable; device {ctx.device}, "
        f"world size {ctx.world_size}, precision {tc.precision}"
    )

    step = 0
    position = DataPosition()
    skipped_total = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        step_module.losses.load_state_dict(ckpt["loss"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        step = int(ckpt["step"])
        data_state = ckpt.get("data_state", {})
        batches = int(data_state.get("batches", 0))
        saved_world = int(data_state.get("world_size", ctx.world_size))
        saved_batch = int(data_state.get("batch_size", tc.batch_size))
        if (saved_world, saved_batch) != (ctx.world_size, tc.batch_size):
            # Same global sample count into the epoch, re-split over the new ranks.
            batches = (
                batches * saved_world * saved_batch // (ctx.world_size * tc.batch_size)
            )
        position = DataPosition(int(data_state.get("epoch", 0)), batches)
        # The saved count is the global sum: rank 0 carries it on.
        skipped_total = int(data_state.get("skipped", 0)) if ctx.is_main else 0
        per_rank = ckpt.get("rng", {}).get("per_rank", [])
        if ctx.rank < len(per_rank) and saved_world == ctx.world_size:
            _set_rng_state(per_rank[ctx.rank], ctx.device)
        else:
            dist.seed_everything(tc.seed + ctx.rank + 7919 * step)
        say(
            f"resumed from step {step} "
            f"(epoch {position.epoch}, batch {position.batches})"
        )

    metrics_file = run_dir / "metrics.jsonl"
    if ctx.is_main:
        (run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        cfg.dump(run_dir / "config.yaml")
        _truncate_metrics(metrics_file, step)
    dist.barrier()

    def record(values: dict[str, Any]) -> None:
        if ctx.is_main:
            with metrics_file.open("a") as f:
                f.write(json.dumps(values) + "\n")

    train_features = valid_features = None
    if tc.cache_features:
        train_features, valid_features = _feature_cache(
            model, cfg, data_dir, train_clips, valid_clips, ctx, log
        )
    text_fn = TextAugmenter(
        cfg.augment, cfg.data, kinds, pair_probes=cfg.loss.pair_weight > 0
    )
    if train_features is not None:
        train_ds: ClipDataset = CachedClipDataset(
            train_clips,
            train_features,
            cfg.data,
            train=True,
            text_fn=text_fn,
            seed=tc.seed,
            pooled_prob=tc.pooled_crops_prob,
        )
    else:
        train_ds = ClipDataset(
            train_clips, cfg.data, train=True, text_fn=text_fn, seed=tc.seed
        )
    sampler = ResumableSampler(
        train_ds,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=tc.seed,
        drop_last=True,
    )
    if cfg.data.group_pairs:
        sampler.groups = [clip.group for clip in train_clips]
    attribute_terms = cfg.loss.attribute_terms if cfg.loss.attribute_weight > 0 else 0
    collate = Collator(
        tokenizer, cfg.model.text.max_tokens, kinds, attribute_terms=attribute_terms
    )
    pin = ctx.device.type == "cuda"
    batches = _micro_batches(train_ds, sampler, collate, cfg, position, pin)
    valid_loader = None
    if valid_clips:
        valid_ds = (
            CachedClipDataset(valid_clips, valid_features, cfg.data, train=False)
            if valid_features is not None
            else ClipDataset(valid_clips, cfg.data, train=False)
        )
        valid_sampler = (
            DistributedSampler(
                valid_ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=False
            )
            if ctx.distributed
            else None
        )
        valid_loader = DataLoader(
            valid_ds,
            batch_size=tc.batch_size,
            sampler=valid_sampler,
            collate_fn=collate_eval,
            num_workers=cfg.data.num_workers,
            generator=torch.Generator(),  # leaves the global RNG alone
        )

    if ctx.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    wrapped: nn.Module = step_module
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(
            step_module,
            device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            find_unused_parameters=True,  # e.g. a HF pooler the loss never reads
        )

    def autocast() -> contextlib.AbstractContextManager:
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(ctx.device.type, dtype=amp_dtype)

    params = [p for p in step_module.parameters() if p.requires_grad]
    end = min(tc.max_steps, stop_after) if stop_after else tc.max_steps
    last_train: dict[str, Any] = {}
    last_valid: dict[str, Any] = {}
    if step >= end:
        say(f"nothing to do: step {step} >= {end}")
    step_module.train()
    window_start, window_steps = time.perf_counter(), 0
    sums: dict[str, torch.Tensor] = {}
    reported: set[str] = set()
    while step < end:
        for micro in range(tc.grad_accum):
            batch = next(batches)
            skipped_total += batch["skipped"]
            for reason in batch["skip_reasons"]:
                if reason not in reported:  # once per file: epochs redraw it
                    reported.add(reason)
                    log(f"rank {ctx.rank}: skipped unreadable clip: {reason}")
            batch = _to_device(batch, ctx.device)
            sync = micro == tc.grad_accum - 1 or not ctx.distributed
            with contextlib.nullcontext() if sync else wrapped.no_sync():
                with autocast():
                    loss, parts = wrapped(batch)
                scaler.scale(loss / tc.grad_accum).backward()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value.detach().float() / tc.grad_accum
        grad_norm = None
        if tc.grad_clip > 0:
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        step_module.after_step(cfg.loss.slap_ema)
        step += 1
        window_steps += 1

        if step % tc.log_every == 0 or step == end:
            elapsed = time.perf_counter() - window_start
            means = dist.reduce_mean(
                {k: float(v) / window_steps for k, v in sums.items()}, ctx.device
            )
            skipped_all = dist.reduce_sum_int(skipped_total, ctx.device)
            steps_per_s = window_steps / elapsed if elapsed > 0 else float("nan")
            last_train = {
                "step": step,
                "split": "train",
                "epoch": position.epoch,
                **means,
                "lr": scheduler.get_last_lr()[0],
                "logit_scale": step_module.logit_scale(),
                "grad_norm": float(grad_norm) if grad_norm is not None else None,
                "steps_per_s": steps_per_s,
                "samples_per_s": steps_per_s * per_step * tc.grad_accum,
                "skipped_clips": skipped_all,
                "memory_mb": _memory_mb(ctx.device),
            }
            record(last_train)
            say(
                f"step {step}/{end} loss {means.get('loss', float('nan')):.4f} "
                + " ".join(f"{k} {v:.4f}" for k, v in means.items() if k != "loss")
                + f" lr {last_train['lr']:.2e} scale {last_train['logit_scale']:.2f} "
                f"{steps_per_s:.2f} steps/s skipped {skipped_all}"
            )
            sums, window_start, window_steps = {}, time.perf_counter(), 0

        if valid_loader is not None and (step % tc.eval_every == 0 or step == end):
            last_valid = {
                "step": step,
                "split": "valid",
                **validate(step_module, valid_loader, tokenizer, cfg, ctx, autocast),
            }
            record(last_valid)
            say(
                f"valid step {step}: loss {last_valid['val_loss']:.4f} "
                f"R@1 {last_valid['t2a_R@1']:.1f} R@5 {last_valid['t2a_R@5']:.1f} "
                f"R@10 {last_valid['t2a_R@10']:.1f} ({last_valid['val_clips']} clips)"
            )
            window_start = time.perf_counter()  # validation is not training time

        if step % tc.checkpoint_every == 0 or step == end:
            rng = dist.all_gather_object(_rng_state(ctx.device))
            skipped_all = dist.reduce_sum_int(skipped_total, ctx.device)
            if ctx.is_main:
                state = {
                    "model": model.state_dict(),
                    "loss": step_module.losses.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "step": step,
                    "config": cfg.to_dict(),
                    "data_dir": str(data_dir),
                    "rng": {"per_rank": rng},
                    "data_state": {
                        "epoch": position.epoch,
                        "batches": position.batches,
                        "batch_size": tc.batch_size,
                        "world_size": ctx.world_size,
                        "skipped": skipped_all,
                    },
                }
                path = save_checkpoint(run_dir, step, state, tc.keep_checkpoints)
                log(f"checkpoint {path}")
            dist.barrier()
            window_start = time.perf_counter()
    return {"train": last_train, "valid": last_valid, "step": step}
