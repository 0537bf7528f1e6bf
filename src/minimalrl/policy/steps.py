"""How the policy runs training steps: micro-batch planning, lock-step idle passes, the clipped
optimizer step. `minimalrl.policy.update` decides what is trained; these decide how it is run.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributed.tensor import DTensor

from minimalrl.model.fast.packing import packed_rows
from minimalrl.model.logprobs import response_logprobs
from minimalrl.policy.update import NonFiniteLossError, layout
from minimalrl.rollout import Rollout
from minimalrl.scale.distributed import DistContext, sum_gradients


def positions(ro: Rollout, rows: list[int]) -> int:
    """Positions one forward over `rows` computes: its distinct prompts (each once, at the widest
    prompt's width) plus the responses packed into rows as wide as the longest (`packing`)."""
    prompts = ro.prompt_index_B[rows].unique()
    prompt_width = int(ro.prompt_mask_UP[prompts].sum(-1).max())
    lengths = ro.response_lengths_B[rows].tolist()
    return len(prompts) * prompt_width + packed_rows(lengths) * max(lengths)


def plan_micro_batches(
    ro: Rollout, units: list[list[int]], units_per_micro: int
) -> list[list[int]]:
    """Rows of each micro-batch of a minibatch's `units`, in whichever of two orders computes
    fewer positions:

    - units sorted by response length: similar lengths pad together;
    - a prompt's units together (groups sorted by their longest response): the prompt's forward
      is shared by its responses (`logprobs.response_token_states`), n samples cost one prompt.

    The order of micro-batches does not change the accumulated gradient (up to rounding).
    """
    length = {b: int(n) for b, n in enumerate(ro.response_lengths_B.tolist())}
    prompt = ro.prompt_index_B.tolist()
    unit_len = {id(u): max(length[r] for r in u) for u in units}
    group_len: dict[int, int] = {}
    for u in units:
        group_len[prompt[u[0]]] = max(group_len.get(prompt[u[0]], 0), unit_len[id(u)])
    orders = [
        sorted(units, key=lambda u: unit_len[id(u)]),
        sorted(units, key=lambda u: (group_len[prompt[u[0]]], prompt[u[0]], unit_len[id(u)])),
    ]
    layouts = [
        [layout(order[i : i + units_per_micro]) for i in range(0, len(order), units_per_micro)]
        for order in orders
    ]
    return min(layouts, key=lambda micro: sum(positions(ro, rows) for rows in micro))


def clip_and_step(
    params: list[nn.Parameter],
    opt: torch.optim.Optimizer,
    max_norm: float,
    ctx: DistContext,
    sharded: bool,
) -> float:
    """Sum the ranks' gradients, clip their norm to `max_norm` (0: no clip), step; the norm."""
    if not sharded:  # (FSDP already summed them in its reduce-scatter)
        sum_gradients(params, ctx)  # the loss was normalised by all ranks' tokens: sum, not mean
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else math.inf)
    if isinstance(norm, DTensor):
        norm = norm.full_tensor()
    if not torch.isfinite(norm):
        raise NonFiniteLossError(f"gradient norm is {float(norm)}")
    opt.step()
    opt.zero_grad(set_to_none=True)
    # bf16 autocast keeps its cast copy of each weight until the outermost autocast block ends
    # (the trainer's spans the iteration): without this, later minibatches would run the
    # weights as they were before this step.
    torch.clear_autocast_cache()
    return float(norm)


def idle_step(model: nn.Module, critic: nn.Module | None, ro: Rollout) -> None:
    """A forward/backward that adds zero to every gradient: keeps a sharded rank that has run
    out of micro-batches in step with the others' collectives."""
    one = ro.select([0])
    logp, _ = response_logprobs(model, one)
    zero = 0.0 * logp.sum()
    if critic is not None:
        zero = zero + 0.0 * critic(one).sum()
    zero.backward()
