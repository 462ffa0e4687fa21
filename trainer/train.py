"""The training loop: one process per device, torchrun for several (nanoGPT-style).

    python -m trainer train --config tiny --data DATA --run-dir RUN
    torchrun --nproc_per_node=8 -m trainer train --config msd_negation ...

The run folder and checkpoints are trainer.checkpoint's, the model and its
losses trainer.objective's, the order of the data trainer.sampling's; this
module reads the splits, builds the run, and steps, logs, validates and saves.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, DistributedSampler

from beetsplug.clap.runguard import terminate_like_interrupt
from trainer import dist
from trainer.augment import Collator, TextAugmenter, negative_kinds, tokenize
from trainer.checkpoint import (
    RunError,
    check_resume_config,
    check_resume_data,
    checkpoint_path,
    load_resume,
    load_state_dicts,
    prepare_run_dir,
    rng_state,
    save_checkpoint,
    set_rng_state,
    state_dicts,
)
from trainer.config import Config, check_config
from trainer.data import Clip, ClipDataset, DataError, collate_eval, read_split
from trainer.features import CachedClipDataset
from trainer.objective import TrainStep, build_optimizer, info_nce, lr_factor
from trainer.sampling import (
    DataPosition,
    ResumableSampler,
    ignore_interrupts,
    micro_batches,
)
from trainer.splits import split_files

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

Log = Callable[[str], None]
Autocast = Callable[[], contextlib.AbstractContextManager]


def _print(message: str) -> None:
    print(message, flush=True)


def _quiet(message: str) -> None:
    """The log of ranks other than 0."""


# --------------------------------------------------------------------------- evaluation


def retrieval_metrics(
    text: torch.Tensor, audio: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)
) -> dict[str, float]:
    """Text->audio recall@k (percent) and median rank; text i's match is audio i.

    Ranks are the benchmark's (`trainer.evaluate.metrics.target_ranks`), tie
    rule included: audio scoring the same as the match ranks above it.
    """
    import numpy as np

    from trainer.evaluate.metrics import recall_at, target_ranks

    sim = (text @ audio.T).float().cpu().numpy()
    ranks = target_ranks(sim, range(len(sim)))
    out = {f"t2a_R@{k}": 100 * recall_at(ranks, k) for k in ks}
    out["t2a_median_rank"] = float(np.median(ranks))
    return out


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


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


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
    say = log if ctx.is_main else _quiet
    result = []
    for rank_turn in (True, False):  # rank 0 writes first, then the rest read
        if ctx.is_main == rank_turn:
            try:
                result = [
                    build_features(model.audio, clips, cfg, crops, cache_dir, log=say)
                    if clips
                    else None
                    for clips, crops in (
                        (train_clips, cfg.train.cache_crops),
                        (valid_clips, cfg.data.eval_crops),
                    )
                ]
            except OSError as exc:
                if not _under(exc.filename, cache_dir):
                    raise
                # DATA/cache, the default, is often on a read-only dataset.
                raise RunError(
                    f"feature cache {exc.filename}: {exc.strerror}; set "
                    "train.cache_dir to a writable folder (--set train.cache_dir=DIR)"
                ) from exc
        dist.barrier()
    model.audio.takes_features = True
    return result[0], result[1]


def _under(filename: str | bytes | None, folder: Path) -> bool:
    """Whether an OSError's file is `folder` or inside it."""
    return isinstance(filename, str) and Path(filename).is_relative_to(folder)


def train(
    cfg: Config,
    data_dir: Path | str | Sequence[Path | str],
    run_dir: Path | str,
    *,
    resume: str | None = None,
    device: str | None = None,
    stop_after: int | None = None,
    log: Log = _print,
) -> dict[str, Any]:
    """Train `cfg` on DATA into RUN; returns the last train and validation metrics.

    `data_dir` may name several data directories (the synthetic corpus and
    the real-recording corpus): their splits are read alike and trained on
    together; the first holds the feature cache.

    `stop_after` ends the run at that step without changing the schedule
    (which always spans cfg.train.max_steps): what a job-time limit does.
    Under torchrun this is called once per rank. A rank that SIGTERM
    stopped leaves SIGTERM ignored on return: its process is ending, and the
    launcher's second SIGTERM must not kill it before it says so.
    """
    ctx = dist.init_distributed(device)
    # Until the process group is gone: a rank must not die of the SIGTERM
    # the launcher passes on while it stops for the scheduler's own.
    with terminate_like_interrupt(_Terminated, again="ignore", enabled=ctx.distributed):
        try:
            dirs = (
                (Path(data_dir),)
                if isinstance(data_dir, str | Path)
                else tuple(Path(d) for d in data_dir)
            )
            return _train(cfg, dirs, Path(run_dir), ctx, resume, stop_after, log)
        finally:
            dist.cleanup()


@dataclass
class _Run:
    """What one training process holds while it trains."""

    cfg: Config
    ctx: dist.DistContext
    data_dirs: tuple[Path, ...]
    run_dir: Path
    log: Log
    model: nn.Module
    step_module: TrainStep
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    step: int = 0
    position: DataPosition = field(default_factory=DataPosition)
    # Clips this rank skipped; on rank 0 also the saved total of a resumed run.
    skipped: int = 0
    metrics_file: Path | None = None
    saved_step: int | None = None  # the step latest.pt holds (None: no checkpoint)

    @property
    def data_dir(self) -> Path:
        """The first data directory: it holds the feature cache."""
        return self.data_dirs[0]

    def say(self, message: str) -> None:
        """Log on rank 0 only."""
        if self.ctx.is_main:
            self.log(message)

    def record(self, values: dict[str, Any]) -> None:
        """Append one record to RUN/metrics.jsonl (rank 0 only).

        JSON has no NaN or Infinity (Python's bare `NaN` breaks other
        readers): a number that is not finite is written as null.
        """
        if self.ctx.is_main and self.metrics_file is not None:
            values = {
                k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in values.items()
            }
            with self.metrics_file.open("a") as f:
                f.write(json.dumps(values, allow_nan=False) + "\n")

    def stateful(self) -> dict[str, Any]:
        """The parts a checkpoint saves, by their names in it."""
        return {
            "model": self.model,
            "loss": self.step_module.losses,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
        }

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = PRECISIONS[self.cfg.train.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=dtype)


@dataclass
class _Window:
    """Loss sums and timing since the last train log line."""

    start: float = field(default_factory=time.perf_counter)
    steps: int = 0
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    lr: float = 0.0  # the rate the window's last step stepped with


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM (`signum`), with what was saved and where `--resume
    latest` continues."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum


class _Terminated(KeyboardInterrupt):
    """SIGTERM in a run of several processes, raised where Ctrl-C would be."""


def _signum(exc: KeyboardInterrupt) -> int:
    """The signal an interrupt came from."""
    return signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT


def _train(
    cfg: Config,
    data_dirs: tuple[Path, ...],
    run_dir: Path,
    ctx: dist.DistContext,
    resume: str | None,
    stop_after: int | None,
    log: Log,
) -> dict[str, Any]:
    _check_train_config(cfg)
    ckpt = load_resume(run_dir, resume)
    end = _end_step(cfg, stop_after)
    resumed = None
    if ckpt is not None:
        check_resume_data(ckpt, data_dirs, str(resume))
        check_resume_config(ckpt, cfg, str(resume))
        resumed = int(ckpt["step"])
        if resumed >= end:
            # Nothing is written either: not even the config a later
            # --max-steps would have changed.
            if ctx.is_main:
                log(f"nothing to do: step {resumed} >= {end}")
            return {"train": {}, "valid": {}, "step": resumed}
    try:
        run, tokenizer, batches, valid_loader = _prepare(
            cfg, data_dirs, run_dir, ctx, ckpt, str(resume), log
        )
    except KeyboardInterrupt as exc:
        # No step was taken, so there is nothing to save: the checkpoints
        # stay as they were, and a feature cache is written only once whole.
        raise RunInterrupted(
            f"stopped before step {(resumed or 0) + 1}, while preparing the run "
            f"(a feature cache being built is not kept); {_resumable(resumed)}",
            _signum(exc),
        ) from None
    with _DeferredInterrupt(enabled=not ctx.distributed) as interrupt:
        try:
            return _steps(run, batches, valid_loader, tokenizer, end, interrupt)
        except RunInterrupted:
            raise
        except KeyboardInterrupt as exc:
            why = (
                "a run of several processes saves only every "
                "train.checkpoint_every steps"
                if ctx.distributed
                else "Ctrl-C twice stops at once"
            )
            unsaved = "" if run.saved_step == run.step else " without saving it"
            raise RunInterrupted(
                f"stopped after step {run.step} of {end}{unsaved} ({why}); "
                f"{_resumable(run.saved_step)}",
                _signum(exc),
            ) from None


def _steps(
    run: _Run,
    batches: Iterator[dict[str, Any]],
    valid_loader: DataLoader | None,
    tokenizer: Any,
    end: int,
    interrupt: _DeferredInterrupt,
) -> dict[str, Any]:
    """Step, log, validate and save up to step `end`, or up to the end of the
    step in which Ctrl-C came; returns the last train and validation metrics."""
    tc = run.cfg.train
    wrapped = _wrap(run)
    params = [p for p in run.step_module.parameters() if p.requires_grad]
    last_train: dict[str, Any] = {}
    last_valid: dict[str, Any] = {}
    run.step_module.train()
    window = _Window()
    reported: set[str] = set()
    while run.step < end:
        grad_norm = _optimizer_step(run, wrapped, batches, params, window, reported)
        if run.step % tc.log_every == 0 or run.step == end:
            last_train = _log_train(run, window, grad_norm, end)
            window = _Window()
        if valid_loader is not None and (
            run.step % tc.eval_every == 0 or run.step == end
        ):
            last_valid = _validate(run, valid_loader, tokenizer)
            window.start = time.perf_counter()  # validation is not training time
        if run.step % tc.checkpoint_every == 0 or run.step == end:
            _save(run)
            window.start = time.perf_counter()
        if interrupt.requested and run.step < end:
            # Between steps the state is whole: saved like a periodic
            # checkpoint, a resume continues exactly from here.
            if run.saved_step != run.step:
                _save(run)
            raise RunInterrupted(
                f"saved step {run.step} of {end} "
                f"({checkpoint_path(run.run_dir, run.step)}); "
                f"--resume latest continues from step {run.step}",
                interrupt.signum,
            )
    return {"train": last_train, "valid": last_valid, "step": run.step}


def _end_step(cfg: Config, stop_after: int | None) -> int:
    """The step this call trains up to."""
    max_steps = cfg.train.max_steps
    return min(max_steps, stop_after) if stop_after else max_steps


def _prepare(
    cfg: Config,
    data_dirs: tuple[Path, ...],
    run_dir: Path,
    ctx: dist.DistContext,
    ckpt: dict[str, Any] | None,
    resume: str,
    log: Log,
) -> tuple[_Run, Any, Iterator[dict[str, Any]], DataLoader | None]:
    """The run, its tokenizer, its training batches and validation loader:
    everything before the first step (the feature cache included)."""
    # Data first: a wrong data directory should fail before a model loads.
    train_clips, sources, valid_clips = _read_splits(cfg, data_dirs, ctx, log)
    run, tokenizer, kinds = _build_run(cfg, ctx, data_dirs, run_dir, ckpt, log)
    if ckpt is not None:
        _resume(run, ckpt, resume)
    if ctx.is_main:
        run.metrics_file = prepare_run_dir(run_dir, cfg, run.step, ckpt is not None)
    dist.barrier()
    batches, valid_loader = _data(
        run, train_clips, sources, valid_clips, tokenizer, kinds, log
    )
    return run, tokenizer, batches, valid_loader


def _resumable(saved_step: int | None) -> str:
    """Where a resume would continue from, said to the user."""
    if saved_step is None:
        return "no checkpoint yet, nothing to resume"
    return f"--resume latest continues from step {saved_step}, the last checkpoint"


class _DeferredInterrupt:
    """Ctrl-C (SIGINT) or SIGTERM noted, not raised, while the loop runs, so
    the loop can end the step it is in and save it; a second Ctrl-C raises
    at once (a second SIGTERM ends the process, as it would have).

    Single-process runs only. Under a launcher the ranks get the signal at
    different moments (torchrun passes it on; a terminal or a scheduler may
    signal each rank too, so twice), they would have to agree on one step to
    save, and torchrun kills them 30 s later whatever they are writing. A
    run of several processes stops at once and keeps its last periodic
    checkpoint.
    """

    def __init__(self, enabled: bool) -> None:
        # Python runs signal handlers in the main thread only.
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self.signum = signal.SIGINT  # the first signal noted
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _DeferredInterrupt:
        if self.enabled:
            # SIGTERM too: what a job scheduler sends before it kills a job
            # at its time limit (the grace period lets the step finish).
            for signum, default in _DEFERRED_SIGNALS.items():
                previous = signal.signal(signum, self._note)
                # None: a handler not set from Python
                self._previous[signum] = default if previous is None else previous
        return self

    def _note(self, signum: int, frame: Any) -> None:
        if not self.requested:
            self.signum = signum
        self.requested = True
        signal.signal(signum, self._previous[signum])

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


# The signals that end a single-process run after its step, with what
# Python does for each when no handler of ours is set.
_DEFERRED_SIGNALS = {
    signal.SIGINT: signal.default_int_handler,
    signal.SIGTERM: signal.SIG_DFL,
}


def _check_train_config(cfg: Config) -> None:
    """Refuse settings the loop cannot honour, before anything is read."""
    # Again here: a config built or changed in code skipped the file checks.
    check_config(cfg)
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


def _read_splits(
    cfg: Config, data_dirs: Sequence[Path], ctx: dist.DistContext, log: Log
) -> tuple[list[Clip], list[int], list[Clip]]:
    """The training clips of every data directory (at least one global batch
    in all), the directory each came from (its index), and their validation
    clips (none, and a log line, where a directory has no validation split)."""

    def say(message: str) -> None:
        if ctx.is_main:
            log(message)

    weights = cfg.data.source_weights
    if weights is not None and (
        len(weights) != len(data_dirs)
        or not all(math.isfinite(w) and w >= 0 for w in weights)
        or not any(weights)
    ):
        raise RunError(
            f"data.source_weights needs one weight >= 0 per --data directory "
            f"({len(data_dirs)}), not all 0: got {weights}"
        )
    train_clips: list[Clip] = []
    sources: list[int] = []
    valid_clips: list[Clip] = []
    for source, data_dir in enumerate(data_dirs):
        # Both splits are read with the same caption columns; only the cap differs.
        read = functools.partial(
            read_split, data_dir, caption_columns=cfg.data.caption_columns
        )
        where = f" of {data_dir}" if len(data_dirs) > 1 else ""
        try:
            clips, stats = read(cfg.data.train_split, max_items=cfg.data.max_items)
        except DataError as exc:
            raise RunError(str(exc)) from exc
        say(
            f"train split{where}: {len(clips)} clips ({stats.rows} rows, "
            f"{stats.missing_audio} without audio file, {stats.no_text} without text)"
            + (
                f"; missing e.g. {', '.join(stats.missing_examples)}"
                if stats.missing_audio
                else ""
            )
        )
        train_clips += clips
        sources += [source] * len(clips)
        if weights is not None:
            say(f"  source weight {weights[source]:g}")
        try:
            split_files(data_dir, cfg.data.valid_split)
        except DataError as exc:
            say(f"no validation{where}: {exc}")
            continue
        # A valid split that is there but unusable (say, without a caption
        # column asked for) stops the run rather than its validation.
        try:
            clips, vstats = read(
                cfg.data.valid_split, max_items=cfg.data.valid_max_items
            )
        except DataError as exc:
            raise RunError(str(exc)) from exc
        say(
            f"valid split{where}: {len(clips)} clips "
            f"({vstats.missing_audio} without audio file)"
        )
        valid_clips += clips
    batch_size = cfg.train.batch_size
    if len(train_clips) < batch_size * ctx.world_size:
        raise RunError(
            f"train split has {len(train_clips)} usable clips, fewer than one batch "
            f"({batch_size} x {ctx.world_size} ranks)"
        )
    return train_clips, sources, valid_clips


def _build_run(
    cfg: Config,
    ctx: dist.DistContext,
    data_dirs: tuple[Path, ...],
    run_dir: Path,
    ckpt: dict[str, Any] | None,
    log: Log,
) -> tuple[_Run, Any, tuple[str, ...]]:
    """Model, objective, optimizer, schedule and scaler; the tokenizer and the
    negative kinds the batches will carry.

    Every rank builds the same initial weights, then seeds its own streams.
    """
    from trainer.models import build_model
    from trainer.models.text import build_tokenizer

    tc = cfg.train
    dist.seed_everything(tc.seed)
    model = build_model(cfg.model, load_weights=ckpt is None)
    if ckpt is None and tc.init_from:
        from trainer.models.from_bundle import load_bundle_weights

        # Every rank loads the same file: the ranks start equal, as they do
        # from the pretrained parts alone.
        load_bundle_weights(
            model, tc.init_from, log if ctx.is_main else _quiet, seed=tc.seed
        )
    tokenizer = build_tokenizer(cfg.model.text)
    kinds = negative_kinds(cfg)
    step_module = TrainStep(model, cfg, kinds).to(ctx.device)
    optimizer = build_optimizer(step_module, tc.lr, tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: lr_factor(s, tc.warmup_steps, tc.max_steps, tc.min_lr_ratio),
    )
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=tc.precision == "fp16")
    dist.seed_everything(tc.seed + ctx.rank)
    parts = (model, step_module, optimizer, scheduler, scaler)  # _Run's order
    run = _Run(cfg, ctx, data_dirs, run_dir, log, *parts)
    n_total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    run.say(
        f"model: {n_train:,} of {n_total:,} parameters trainable; device {ctx.device}, "
        f"world size {ctx.world_size}, precision {tc.precision}"
    )
    return run, tokenizer, kinds


def _resume(run: _Run, ckpt: dict[str, Any], resume: str) -> None:
    """Load a checkpoint's states, step, data position and this rank's RNG.

    RNG states carry over when the world size is unchanged; otherwise each
    rank reseeds from the seed, its rank and the step.
    """
    ctx, tc = run.ctx, run.cfg.train
    load_state_dicts(run.stateful(), ckpt, resume)
    run.step = run.saved_step = int(ckpt["step"])
    _apply_rates(run)
    data_state = ckpt.get("data_state", {})
    run.position = DataPosition.resumed(data_state, tc.batch_size, ctx.world_size)
    # The saved count is the global sum: rank 0 carries it on.
    run.skipped = int(data_state.get("skipped", 0)) if ctx.is_main else 0
    per_rank = ckpt.get("rng", {}).get("per_rank", [])
    saved_world = int(data_state.get("world_size", ctx.world_size))
    if ctx.rank < len(per_rank) and saved_world == ctx.world_size:
        set_rng_state(per_rank[ctx.rank], ctx.device)
    else:
        dist.seed_everything(tc.seed + ctx.rank + 7919 * run.step)
    run.say(
        f"resumed from step {run.step} "
        f"(epoch {run.position.epoch}, batch {run.position.batches})"
    )


def _apply_rates(run: _Run) -> None:
    """The resumed run's `train.lr` and `train.weight_decay`, over the ones
    the restored optimizer and schedule were built with: a run resumed
    with `--set train.lr=...` (a lower rate after trouble) steps at it from
    here on, on the same schedule. Nothing changes when they are the same,
    so a plain resume stays exact."""
    tc, scheduler = run.cfg.train, run.scheduler
    old_lr = scheduler.base_lrs[0]
    # build_optimizer's first group is the one with weight decay.
    decay = run.optimizer.param_groups[0]
    old_decay = decay["weight_decay"]
    if old_lr != tc.lr:
        scheduler.base_lrs = [tc.lr] * len(scheduler.base_lrs)
        for group in run.optimizer.param_groups:
            group["initial_lr"] = tc.lr
        run.say(f"train.lr {tc.lr:g} from here on (the checkpoint's: {old_lr:g})")
    # The next step's rate on this run's schedule (a resume may change
    # max_steps, warm-up or the floor too); as LambdaLR computes it, so an
    # unchanged schedule gives the restored rate exactly.
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for group, base in zip(run.optimizer.param_groups, scheduler.base_lrs, strict=True):
        group["lr"] = base * factor
    scheduler._last_lr = [g["lr"] for g in run.optimizer.param_groups]
    if old_decay != tc.weight_decay:
        decay["weight_decay"] = tc.weight_decay
        run.say(
            f"train.weight_decay {tc.weight_decay:g} from here on "
            f"(the checkpoint's: {old_decay:g})"
        )


def _data(
    run: _Run,
    train_clips: list[Clip],
    sources: list[int],
    valid_clips: list[Clip],
    tokenizer: Any,
    kinds: tuple[str, ...],
    log: Log,
) -> tuple[Iterator[dict[str, Any]], DataLoader | None]:
    """The endless training micro-batches (from the run's data position) and
    the validation loader (None without validation clips)."""
    cfg, ctx, tc = run.cfg, run.ctx, run.cfg.train
    train_features = valid_features = None
    if tc.cache_features:
        train_features, valid_features = _feature_cache(
            run.model, cfg, run.data_dir, train_clips, valid_clips, ctx, log
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
    if cfg.data.source_weights is not None:
        sampler.weigh(sources, cfg.data.source_weights)
    attribute_terms = cfg.loss.attribute_terms if cfg.loss.attribute_weight > 0 else 0
    collate = Collator(
        tokenizer, cfg.model.text.max_tokens, kinds, attribute_terms=attribute_terms
    )
    pin = ctx.device.type == "cuda"
    batches = micro_batches(train_ds, sampler, collate, cfg, run.position, pin)
    if not valid_clips:
        return batches, None
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
        worker_init_fn=ignore_interrupts,
    )
    return batches, valid_loader


def _wrap(run: _Run) -> nn.Module:
    """The module the loop calls: DDP around the objective when distributed."""
    ctx = run.ctx
    if ctx.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if not ctx.distributed:
        return run.step_module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        run.step_module,
        device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
        find_unused_parameters=True,  # e.g. a HF pooler the loss never reads
    )


def _optimizer_step(
    run: _Run,
    wrapped: nn.Module,
    batches: Iterator[dict[str, Any]],
    params: list[nn.Parameter],
    window: _Window,
    reported: set[str],
) -> torch.Tensor | None:
    """One optimizer step over grad_accum micro-batches (DDP syncs gradients
    on the last); adds the loss parts to `window`, returns the gradient norm
    before clipping (None without clipping)."""
    ctx, tc = run.ctx, run.cfg.train
    total = torch.zeros((), device=ctx.device)
    for micro in range(tc.grad_accum):
        batch = next(batches)
        run.skipped += batch["skipped"]
        for reason in batch["skip_reasons"]:
            if reason not in reported:  # once per file: epochs redraw it
                reported.add(reason)
                run.log(f"rank {ctx.rank}: skipped unreadable clip: {reason}")
        batch = _to_device(batch, ctx.device)
        sync = micro == tc.grad_accum - 1 or not ctx.distributed
        with contextlib.nullcontext() if sync else wrapped.no_sync():
            with run.autocast():
                loss, parts = wrapped(batch)
            run.scaler.scale(loss / tc.grad_accum).backward()
        total += loss.detach().float()
        for key, value in parts.items():
            window.sums[key] = (
                window.sums.get(key, 0.0) + value.detach().float() / tc.grad_accum
            )
    # A non-finite loss stops the run before its gradients reach the weights.
    # Reading it costs one host sync a step (MAE and DeiT stop the same way).
    loss_value = float(total)
    _stop_if_diverged(
        run,
        None
        if math.isfinite(loss_value)
        else f"loss is {loss_value} at step {run.step + 1}",
        f"another rank's loss is not finite at step {run.step + 1}",
    )
    grad_norm = None
    if tc.grad_clip > 0:
        run.scaler.unscale_(run.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    # Read before the scheduler moves on: after it, it is the next step's rate.
    window.lr = run.scheduler.get_last_lr()[0]
    run.scheduler.step()
    run.step_module.after_step(run.cfg.loss.slap_ema)
    run.step += 1
    window.steps += 1
    return grad_norm


def _stop_if_diverged(run: _Run, problem: str | None, elsewhere: str) -> None:
    """Stop every rank together when any rank found `problem` (a NaN loss,
    NaN weights), with one line on what to change and what is kept.

    Resumed as it was, the run would replay the divergence exactly, hence
    a new run or a resume with a lower rate (`_apply_rates`).
    """
    if not dist.reduce_sum_int(int(problem is not None), run.ctx.device):
        return
    tc = run.cfg.train
    clip = f"{tc.grad_clip:g}" if tc.grad_clip > 0 else "off"
    kept = (
        f"checkpoints up to step {run.saved_step} are kept"
        if run.saved_step is not None
        else "no checkpoint was written"
    )
    # Resuming needs a checkpoint to resume from.
    how = "a new --run-dir" + ("" if run.saved_step is None else ", or --resume latest")
    raise RunError(
        f"{problem or elsewhere}: the run diverged; train again ({how}) "
        f"with a lower train.lr (now {tc.lr:g}) or gradient clipping "
        f"(train.grad_clip, now {clip}); {kept}"
    )


def _first_non_finite(run: _Run) -> str | None:
    """The name of the first model or loss tensor holding NaN or inf, if any."""
    tensors = {
        name: value
        for part in (run.model, run.step_module.losses)
        for name, value in part.state_dict().items()
        if value.is_floating_point()
    }
    finite = torch.stack([torch.isfinite(t).all() for t in tensors.values()])
    bad = [name for name, ok in zip(tensors, finite.tolist(), strict=True) if not ok]
    return bad[0] if bad else None


def _log_train(
    run: _Run, window: _Window, grad_norm: torch.Tensor | None, end: int
) -> dict[str, Any]:
    """Record and print the mean loss parts and speed since the last log line."""
    ctx, tc = run.ctx, run.cfg.train
    elapsed = time.perf_counter() - window.start
    means = dist.reduce_mean(
        {k: float(v) / window.steps for k, v in window.sums.items()}, ctx.device
    )
    skipped_all = dist.reduce_sum_int(run.skipped, ctx.device)
    steps_per_s = window.steps / elapsed if elapsed > 0 else float("nan")
    values = {
        "step": run.step,
        "split": "train",
        "epoch": run.position.epoch,
        **means,
        "lr": window.lr,
        "logit_scale": run.step_module.logit_scale(),
        "grad_norm": float(grad_norm) if grad_norm is not None else None,
        "steps_per_s": steps_per_s,
        "samples_per_s": steps_per_s * tc.batch_size * ctx.world_size * tc.grad_accum,
        "skipped_clips": skipped_all,
        "memory_mb": _memory_mb(ctx.device),
    }
    run.record(values)
    run.say(
        f"step {run.step}/{end} loss {means.get('loss', float('nan')):.4f} "
        + " ".join(f"{k} {v:.4f}" for k, v in means.items() if k != "loss")
        + f" lr {values['lr']:.2e} scale {values['logit_scale']:.2f} "
        f"{steps_per_s:.2f} steps/s skipped {skipped_all}"
    )
    return values


def _validate(run: _Run, loader: DataLoader, tokenizer: Any) -> dict[str, Any]:
    """Record and print one validation of the current weights."""
    values = {
        "step": run.step,
        "split": "valid",
        **validate(run.step_module, loader, tokenizer, run.cfg, run.ctx, run.autocast),
    }
    run.record(values)
    run.say(
        f"valid step {run.step}: loss {values['val_loss']:.4f} "
        f"R@1 {values['t2a_R@1']:.1f} R@5 {values['t2a_R@5']:.1f} "
        f"R@10 {values['t2a_R@10']:.1f} ({values['val_clips']} clips)"
    )
    return values


def _save(run: _Run) -> None:
    """Checkpoint the run: every rank's RNG state is gathered, rank 0 writes.

    Never with NaN or inf in the weights: the run stops instead, and the
    last checkpoint stays the latest.
    """
    ctx, tc = run.ctx, run.cfg.train
    bad = _first_non_finite(run)
    _stop_if_diverged(
        run,
        bad and f"{bad} is not finite after step {run.step}",
        f"another rank's weights are not finite after step {run.step}",
    )
    rng = dist.all_gather_object(rng_state(ctx.device))
    skipped_all = dist.reduce_sum_int(run.skipped, ctx.device)
    if ctx.is_main:
        data_dirs = [str(Path(d).resolve()) for d in run.data_dirs]
        state = {
            **state_dicts(run.stateful()),
            "step": run.step,
            "config": run.cfg.to_dict(),
            # The folders themselves, however --data spelt them this time:
            # a relative path means another folder from another working
            # directory, and a resume may name the same folder otherwise.
            "data_dir": data_dirs[0],
            "data_dirs": data_dirs,
            "rng": {"per_rank": rng},
            "data_state": {
                **run.position.state(tc.batch_size, ctx.world_size),
                "skipped": skipped_all,
            },
        }
        path = save_checkpoint(run.run_dir, run.step, state, tc.keep_checkpoints)
        # The config the checkpoints from here on were trained with (a
        # resumed run's --set and --max-steps; prepare_run_dir).
        run.cfg.dump(run.run_dir / "config.yaml")
        run.log(f"checkpoint {path}")
    dist.barrier()
    run.saved_step = run.step
