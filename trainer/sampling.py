"""Where the training data comes from, in what order: a resumable sampler
and the endless micro-batch stream with its position in the data."""

from __future__ import annotations

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
        )
        for batch in loader:
            position.batches += 1
            yield batch
        position.epoch += 1
        position.batches = 0
