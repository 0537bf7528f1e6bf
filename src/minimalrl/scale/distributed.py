"""Data parallelism on `torch.distributed` (gloo on CPU, nccl on GPU), launched by `torchrun`.

Each rank rolls out its share of the iteration's prompts (a prompt's n samples stay on one rank, so
group statistics never cross ranks), and gradients are summed across ranks after every minibatch.
Losses are normalised by the token count of *all* ranks, so the summed gradient is the gradient of
the global token mean, not a mean of per-rank means. With one process every helper is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


SINGLE_PROCESS = DistContext()


def init_distributed(device: str) -> tuple[DistContext, str]:
    """Join the process group torchrun describes (if any); returns the context and the device.

    The backend follows the device: nccl for CUDA, gloo for CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return DistContext(rank, world, local), device


def shard(items: list, ctx: DistContext) -> list:
    """This rank's contiguous share of a list whose length the world size divides."""
    if len(items) % ctx.world_size:
        raise ValueError(f"{len(items)} items do not split evenly over {ctx.world_size} ranks")
    per = len(items) // ctx.world_size
    return items[ctx.rank * per : (ctx.rank + 1) * per]


def reduce_tensor_across(
    t: torch.Tensor, ctx: DistContext, op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM
) -> torch.Tensor:
    """`op` (default Σ) over ranks of a (small) tensor, returned on every rank."""
    if not ctx.active:
        return t
    t = t.clone()
    dist.all_reduce(t, op=op)
    return t


def sum_tensor_across(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Σ over ranks of a (small) tensor, returned on every rank."""
    return reduce_tensor_across(t, ctx)


def _scalar_across(value: float, ctx: DistContext, op: dist.ReduceOp.RedOpType) -> float:
    if not ctx.active:
        return value
    return float(reduce_tensor_across(torch.tensor([value], dtype=torch.float64), ctx, op))


def sum_across(value: float, ctx: DistContext) -> float:
    """Σ over ranks of a scalar (counts, token totals)."""
    return _scalar_across(value, ctx, dist.ReduceOp.SUM)


def max_across(value: float, ctx: DistContext) -> float:
    """The largest of the ranks' values."""
    return _scalar_across(value, ctx, dist.ReduceOp.MAX)


def any_across(flag: bool, ctx: DistContext) -> bool:
    return sum_across(float(flag), ctx) > 0


def gather_objects(obj: object, ctx: DistContext) -> list:
    """Every rank's `obj`, in rank order (on every rank)."""
    if not ctx.active:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def sum_gradients(params: list[nn.Parameter], ctx: DistContext) -> None:
    """All-reduce (sum) the gradients of `params` in one flat buffer."""
    if not ctx.active:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()
