"""Where the training data comes from, in what order: a resumable sampler
and the endless micro-batch stream with its position in the data."""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from trainer.augment import Collator
from trainer.config import Config
from trainer.data import ClipDataset


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start part-way into an epoch (after a resume).

    With `groups` (one key per item, e.g. the synthetic corpus's base piece)
    it shuffles whole groups and hands each rank a contiguous run of the
    shuffled order, so a minimal pair's two clips stay next to each other and
    on the same rank, i.e. mostly in the same batch.

    With `weigh` (each item's source and each source's weight) an epoch holds
    every clip of a source `int(w)` times plus a fresh random `w - int(w)` of
    them: several corpora train together in the shares the run asks for.
    """

    skip = 0
    groups: Sequence[str | None] | None = None
    sources: Sequence[int] | None = None
    source_weights: Sequence[float] = ()

    def weigh(self, sources: Sequence[int], weights: Sequence[float]) -> None:
        """Draw source `s`'s items `weights[s]` times an epoch (see the class)."""
        self.sources, self.source_weights = list(sources), list(weights)
        size = len(self._epoch_items())
        # DistributedSampler's own rule, on the weighted epoch's length.
        if self.drop_last and size % self.num_replicas:
            self.num_samples = math.ceil((size - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(size / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def _epoch_items(self) -> list[int]:
        """This epoch's items, each as often as its source's weight says."""
        if self.sources is None:
            return list(range(len(self.dataset)))  # type: ignore[arg-type]
        members: dict[int, list[int]] = {}
        for i, source in enumerate(self.sources):
            members.setdefault(source, []).append(i)
        # Its own stream: which clips an epoch keeps must not move the shuffle.
        g = torch.Generator().manual_seed(self.seed + self.epoch + 104729)
        items: list[int] = []
        for source, mine in sorted(members.items()):
            weight = self.source_weights[source]
            whole = int(weight)
            items += mine * whole
            part = round((weight - whole) * len(mine))
            if part:
                keep = torch.randperm(len(mine), generator=g)[:part].tolist()
                items += [mine[k] for k in sorted(keep)]
        return items

    def _grouped(self) -> list[int]:
        members: dict[str, list[int]] = {}
        copies: dict[int, int] = {}
        for i in self._epoch_items():
            key = self.groups[i] if self.groups is not None else None
            copy = copies[i] = copies.get(i, -1) + 1
            # A clip drawn twice is two draws: its copies shuffle apart.
            name = f"{key}\0{copy}" if key is not None else f"\0{i}\0{copy}"
            members.setdefault(name, []).append(i)
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
        if self.groups is not None or self.sources is not None:
            return iter(self._grouped()[self.skip :])
        return iter(list(super().__iter__())[self.skip :])

    def __len__(self) -> int:
        return max(0, super().__len__() - self.skip)


class DataPosition:
    """Epoch and micro-batches consumed in it: what a checkpoint needs to resume."""

    def __init__(self, epoch: int = 0, batches: int = 0) -> None:
        self.epoch, self.batches = epoch, batches

    def state(self, batch_size: int, world_size: int) -> dict[str, int]:
        """The checkpoint's record of this position and the layout it counts in."""
        return {
            "epoch": self.epoch,
            "batches": self.batches,
            "batch_size": batch_size,
            "world_size": world_size,
        }

    @classmethod
    def resumed(
        cls, state: dict[str, Any], batch_size: int, world_size: int
    ) -> DataPosition:
        """The position saved in `state`, re-counted for this run's layout:
        the same global sample count into the epoch, split over the new ranks."""
        batches = int(state.get("batches", 0))
        saved = int(state.get("world_size", world_size)) * int(
            state.get("batch_size", batch_size)
        )
        if saved != world_size * batch_size:
            batches = batches * saved // (world_size * batch_size)
        return cls(int(state.get("epoch", 0)), batches)


def ignore_interrupts(_worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C and SIGTERM to the main process,
    which shuts them down (a sentinel on their queue ends them). A terminal
    sends SIGINT to every process of its group, and a job scheduler SIGTERM
    to every process of the job: a worker killed by it would leave the main
    process without the batch it owes, in the middle of a step it can then
    neither finish nor save."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def micro_batches(
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
            worker_init_fn=ignore_interrupts,
        )
        for batch in loader:
            position.batches += 1
            yield batch
        position.epoch += 1
        position.batches = 0
