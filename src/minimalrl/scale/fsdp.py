"""Fully sharded data parallelism through PyTorch's FSDP2 (`torch.distributed.fsdp.fully_shard`).

Each decoder layer is one FSDP unit and the model root (embeddings, final norm, head) another, so
a rank holds 1/world of the weights, gradients and Adam state, and all-gathers one layer at a time
in forward and backward. What the RL loop adds to plain FSDP training:

- generation runs under `gathered(model)`: the weights are all-gathered once and kept for the
  whole sampling loop, so ranks may take different numbers of decoding steps (rows stop at EOS)
  without a per-step collective;
- every rank runs the same number of forward/backward passes (`update` pads with zero-weight
  micro-steps), because each pass is a collective;
- gradients are summed, not averaged, across ranks: losses are already normalised by all ranks'
  tokens (see `minimalrl.scale.distributed`);
- checkpoints are full `save_pretrained` folders (gathered to rank 0), loadable anywhere.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import FSDPModule, fully_shard, register_fsdp_forward_method

T = TypeVar("T")

_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def is_sharded(module: nn.Module) -> bool:
    return isinstance(module, FSDPModule)


def _units(module: nn.Module) -> list[FSDPModule]:
    """The FSDP units of a sharded module (its layers and itself)."""
    return [m for m in module.modules() if isinstance(m, FSDPModule)]


def shard(module: nn.Module, layers: nn.ModuleList) -> nn.Module:
    """Shard `module` in place: one FSDP unit per layer of `layers`, one for the rest."""
    for layer in layers:
        fully_shard(layer)
    fully_shard(module)
    assert isinstance(module, FSDPModule)
    # The root too frees its gathered weights after each forward (FSDP keeps them by default): a
    # gather made under inference_mode (scoring, reference) must not be reused for training.
    module.set_reshard_after_forward(True, recurse=False)
    for unit in _units(module):
        # sum across ranks (the loss has the global normaliser), with plain SUM collectives
        # (gloo has no pre-multiplied sum)
        unit.set_gradient_divide_factor(1.0)
        unit.set_force_sum_reduction_for_comms(True)
        # Allocate the gathered-weight buffers now, outside inference_mode: made by a first
        # forward under inference_mode (scoring, critic values) they could never be written in
        # training.
        with torch.no_grad():
            unit.unshard()
            unit.reshard()
    module._minimalrl_call = types.MethodType(_call, module)
    register_fsdp_forward_method(module, "_minimalrl_call")
    return module


def _call(self: nn.Module, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    return fn(*args, **kwargs)


def call_as_forward(module: nn.Module, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """`fn(*args, **kwargs)` as if it were `module`'s forward: a sharded module's own weights
    (embeddings, head) are gathered for it and its backward hooks set, which calling submodules
    directly (body, then head) would skip. Plain call for an unsharded module."""
    if not is_sharded(module):
        return fn(*args, **kwargs)
    return module._minimalrl_call(fn, *args, **kwargs)


@contextmanager
def gathered(module: nn.Module) -> Iterator[None]:
    """All of `module`'s weights unsharded for the duration (one all-gather per unit, on every
    rank); forward passes inside make no collective calls. A no-op for an unsharded module."""
    if not is_sharded(module):
        yield
        return
    units = _units(module)
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            unit.set_reshard_after_forward(True, recurse=False)


def full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights on rank 0 (CPU); an empty dict on the other ranks. Collective.

    A tied weight (input embeddings = head) is kept once, under its first name, as
    `save_pretrained` writes it for an unsharded model."""
    state = get_model_state_dict(module, options=_FULL)
    unique = {name for name, _ in module.named_parameters()}  # tied duplicates listed once
    unique |= {name for name, _ in module.named_buffers()}
    return {k: v for k, v in state.items() if k in unique}


def load_full_state_dict(
    module: nn.Module, state: dict[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    """Load full (unsharded) weights into a sharded module; every rank passes the same dict.
    Returns the missing and unexpected keys."""
    opts = StateDictOptions(full_state_dict=True, strict=False)
    result = set_model_state_dict(module, state, options=opts)
    return list(result.missing_keys), list(result.unexpected_keys)


def full_optimizer_state(module: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer state with full (unsharded) tensors, on rank 0. Collective."""
    return get_optimizer_state_dict(module, optimizer, options=_FULL)


def load_full_optimizer_state(
    module: nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> None:
    set_optimizer_state_dict(
        module, optimizer, state, options=StateDictOptions(full_state_dict=True)
    )
