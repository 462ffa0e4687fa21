"""torch.distributed plumbing: torchrun's environment, seeds, collectives.

Launch with torchrun (one process per GPU, any number of nodes); a plain
`python -m trainer train` is a world of one and never touches
torch.distributed, so the same loop runs on a laptop CPU.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist


@dataclass
class DistContext:
    """Where this process sits in the run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


# Device kinds named in the message when a requested one is not here.
DEVICE_KINDS = ("cpu", "cuda", "mps", "xpu")


def device_count(kind: str) -> int:
    """How many devices of a kind this machine has (the CPU is one)."""
    if kind == "cpu":
        return 1
    if kind == "mps":
        return int(torch.backends.mps.is_available())
    backend = getattr(torch, kind, None)  # torch.cuda, torch.xpu, ...
    is_available = getattr(backend, "is_available", None)
    count = getattr(backend, "device_count", None)
    if is_available is None or count is None or not is_available():
        return 0
    return int(count())


def resolve_device(requested: str | None, local_rank: int = 0) -> torch.device:
    """`--device` if given, else this rank's GPU, else the CPU.

    A device that is not a name, or not on this machine, is refused here in
    one line, before any file is read.
    """
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise ValueError(
                f"--device {requested}: not a device (cpu, cuda, cuda:1, mps ...)"
            ) from exc
        count = device_count(device.type)
        if count == 0 or (device.index is not None and device.index >= count):
            have = ", ".join(
                f"{k} ({n})" if k != "cpu" else k
                for k in DEVICE_KINDS
                if (n := device_count(k))
            )
            raise ValueError(
                f"--device {requested}: not on this machine (it has {have})"
            )
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", local_rank)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(requested_device: str | None = None) -> DistContext:
    """Join the process group torchrun describes in RANK/WORLD_SIZE/LOCAL_RANK.

    NCCL on CUDA, gloo on CPU. Without those variables: a world of one.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(requested_device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not torch_dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend}
        if device.type == "cuda":
            kwargs["device_id"] = device
        torch_dist.init_process_group(**kwargs)
    return DistContext(
        rank=rank, local_rank=local_rank, world_size=world_size, device=device
    )


# What gloo's TCP transport says when the process at the other end is gone.
_GLOO_PEER_GONE = ("Connection closed by peer", "Connection reset by peer")


def peer_stopped(exc: BaseException) -> bool:
    """Whether `exc` is a collective that failed because another rank of
    this run stopped (an error of its own, a kill), not a fault of this one.

    NCCL and the store say so with torch's DistBackendError and
    DistNetworkError; gloo's TCP pair raises a bare RuntimeError naming its
    source file and the closed connection.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return False
    if isinstance(exc, torch_dist.DistBackendError | torch_dist.DistNetworkError):
        return True
    message = str(exc)
    return (
        isinstance(exc, RuntimeError)
        and "gloo/transport" in message
        and any(gone in message for gone in _GLOO_PEER_GONE)
    )


def cleanup() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def is_distributed() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized()


def world() -> tuple[int, int]:
    """(rank, world_size) of the current process group, (0, 1) without one."""
    if is_distributed():
        return torch_dist.get_rank(), torch_dist.get_world_size()
    return 0, 1


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices); callers add the rank."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _AllGatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient into the owner's slice."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.rows = torch_dist.get_rank(), x.shape[0]
        out = [torch.empty_like(x) for _ in range(torch_dist.get_world_size())]
        torch_dist.all_gather(out, x.contiguous())
        return torch.cat(out, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        torch_dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every rank along dim 0, differentiably.

    The gradient of the gathered tensor is summed over ranks and handed back
    to each slice's owner, so when every rank computes a loss on the
    gathered features (and DDP averages parameter gradients) the local
    features get exactly the gradient of the global-batch loss. All ranks
    must pass the same shape (the loaders drop ragged last batches).
    """
    if not is_distributed():
        return x
    return _AllGatherWithGrad.apply(x)


def all_gather_tensor(x: torch.Tensor) -> torch.Tensor:
    """Concatenate equally sized tensors from every rank (no gradient)."""
    if not is_distributed():
        return x
    out = [torch.empty_like(x) for _ in range(torch_dist.get_world_size())]
    torch_dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


def all_gather_object(obj: Any) -> list[Any]:
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * torch_dist.get_world_size()
    torch_dist.all_gather_object(out, obj)
    return out


def reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average scalars over ranks (for logging)."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor(
        [float(values[k]) for k in keys], device=device, dtype=torch.float64
    )
    torch_dist.all_reduce(t)
    t /= torch_dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def reduce_sum_int(value: int, device: torch.device) -> int:
    if not is_distributed():
        return value
    t = torch.tensor([value], device=device, dtype=torch.long)
    torch_dist.all_reduce(t)
    return int(t.item())


def barrier() -> None:
    if is_distributed():
        torch_dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not is_distributed():
        return obj
    box = [obj]
    torch_dist.broadcast_object_list(box, src=src)
    return box[0]
