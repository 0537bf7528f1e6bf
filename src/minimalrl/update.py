"""E epochs of minibatch updates over an experience batch, with gradient accumulation.

A minibatch is one optimizer step; it is split into micro-batches whose gradients accumulate. Every
loss is normalised by the minibatch's total kept tokens (or sequences), so the accumulated gradient
equals the gradient of the whole minibatch at once (and, later, of all ranks together).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributed.tensor import DTensor

from minimalrl.algorithms import Algorithm, aggregate, clipped_value_loss, kl_penalty
from minimalrl.distributed import (
    SINGLE_PROCESS,
    DistContext,
    gather_objects,
    max_across,
    sum_across,
    sum_gradients,
)
from minimalrl.experience import Experience
from minimalrl.fsdp import is_sharded
from minimalrl.logprobs import response_logprobs
from minimalrl.packing import packed_rows


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; the update is abandoned before it touches the weights."""


@dataclass(frozen=True)
class UpdateSettings:
    """The loss settings an update needs (taken from TrainConfig by the trainer)."""

    epochs: int
    minibatch_size: int
    micro_batch_size: int
    loss_agg: str
    clip_low: float
    clip_high: float
    dual_clip: float | None
    dpo_beta: float
    kl_coef: float
    kl_estimator: str
    entropy_coef: float
    value_clip: float
    grad_clip: float
    temperature: float
    loss_agg_max_len: int = 0
    """L of the `seq_mean_token_sum_norm` aggregation (0: none given)."""


def _trimmed(exp: Experience, rows: list[int], on_policy: bool) -> dict:
    """The rows' token batch (padding columns cut off) and their per-token tensors, as wide."""
    tokens = exp.rollout.select(rows)
    idx = torch.tensor(rows, dtype=torch.long)
    r1 = tokens.response_ids_BR.shape[1]
    out: dict = {
        "tokens": tokens,
        "mask": tokens.response_mask_BR,
        "advantages": exp.advantages_BR[idx, :r1],
    }
    optional = {
        # on-policy, π_old is the micro-step's own forward (see `update`)
        "loss_ref": None if on_policy and exp.loss_ref == "iteration" else exp.loss_ref_logp_BR,
        "ref": exp.ref_logp_BR,
        "returns": exp.returns_BR,
        "old_values": exp.old_values_BR,
    }
    for key, t in optional.items():
        if t is not None:
            out[key] = t[idx, :r1]
    return out


def _layout(units: list[list[int]]) -> list[int]:
    """Rows of a group of units, slot by slot: all first members, then all second members.

    For DPO pairs this is the "K chosen rows then their K rejected rows" layout its loss expects.
    """
    return [unit[slot] for slot in range(len(units[0])) for unit in units]


def _micro_step(
    model: nn.Module,
    critic: nn.Module | None,
    alg: Algorithm,
    s: UpdateSettings,
    b: dict[str, torch.Tensor],
    norm: dict[str, float],
    on_policy: bool,
) -> tuple[dict[str, float], torch.Tensor, torch.Tensor | None]:
    """Forward, loss and backward of one micro-batch; returns its metrics and the forward's
    detached log-probs and entropies (entropies when in the loss or `on_policy`)."""
    logp, ent = response_logprobs(
        model,
        b["tokens"],
        temperature=s.temperature,
        with_entropy=s.entropy_coef > 0 or on_policy,
        entropy_grad=s.entropy_coef > 0,
    )
    loss, metrics = alg.loss(
        logp,
        # On-policy (one optimizer step): π_old is this very forward, the weights being unchanged.
        b["loss_ref"] if "loss_ref" in b else logp.detach(),
        b["advantages"],
        b["mask"],
        clip_low=s.clip_low,
        clip_high=s.clip_high,
        dual_clip=s.dual_clip,
        dpo_beta=s.dpo_beta,
        agg=s.loss_agg,
        **norm,
    )
    out = {k: float(v.detach()) for k, v in metrics.items()}
    if s.kl_coef > 0:
        kl = aggregate(kl_penalty(logp, b["ref"], s.kl_estimator), b["mask"], s.loss_agg, **norm)
        loss = loss + s.kl_coef * kl
        out["kl_loss"] = float(kl.detach())
    if s.entropy_coef > 0:
        assert ent is not None
        loss = loss - s.entropy_coef * aggregate(ent, b["mask"], s.loss_agg, **norm)
    if critic is not None:
        values = critic(b["tokens"])
        vloss, vmetrics = clipped_value_loss(
            values,
            b["old_values"],
            b["returns"],
            b["mask"],
            clip_eps=s.value_clip,
            agg=s.loss_agg,
            **norm,
        )
        out.update(
            {k: float(v.detach()) for k, v in vmetrics.items()}, value_loss=float(vloss.detach())
        )
        loss = loss + vloss  # the critic has its own parameters and optimizer
    if not torch.isfinite(loss):
        raise NonFiniteLossError(f"loss is {float(loss.detach())} (metrics: {out})")
    loss.backward()
    out["loss"] = float(loss.detach())
    return out, logp.detach(), None if ent is None else ent.detach()


def _clip_and_step(
    params: list[nn.Parameter],
    opt: torch.optim.Optimizer,
    max_norm: float,
    ctx: DistContext,
    sharded: bool,
) -> float:
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


def _idle_step(model: nn.Module, critic: nn.Module | None, exp: Experience) -> None:
    """A forward/backward that adds zero to every gradient: keeps a sharded rank that has run
    out of micro-batches in step with the others' collectives."""
    one = exp.rollout.select([0])
    logp, _ = response_logprobs(model, one)
    zero = 0.0 * logp.sum()
    if critic is not None:
        zero = zero + 0.0 * critic(one).sum()
    zero.backward()


def _split(order: list[int], parts: int) -> list[list[int]]:
    """`order` cut into `parts` nearly equal consecutive chunks (some may be empty)."""
    size, extra = divmod(len(order), parts)
    bounds = [i * size + min(i, extra) for i in range(parts + 1)]
    return [order[a:b] for a, b in itertools.pairwise(bounds)]


def _positions(exp: Experience, rows: list[int]) -> int:
    """Positions one forward over `rows` computes: its distinct prompts (each once, at the widest
    prompt's width) plus the responses packed into rows as wide as the longest (`packing`)."""
    ro = exp.rollout
    prompts = ro.prompt_index_B[rows].unique()
    prompt_width = int(ro.prompt_mask_UP[prompts].sum(-1).max())
    lengths = ro.response_lengths_B[rows].tolist()
    return len(prompts) * prompt_width + packed_rows(lengths) * max(lengths)


def _micro_batches(exp: Experience, mb: list[list[int]], units_per_micro: int) -> list[list[int]]:
    """Rows of each micro-batch, in whichever of two orders computes fewer positions:

    - units sorted by response length: similar lengths pad together;
    - a prompt's units together (groups sorted by their longest response): the prompt's forward
      is shared by its responses (`logprobs.response_token_states`), n samples cost one prompt.

    The order of micro-batches does not change the accumulated gradient (up to rounding).
    """
    ro = exp.rollout
    length = {b: int(n) for b, n in enumerate(ro.response_lengths_B.tolist())}
    prompt = ro.prompt_index_B.tolist()
    unit_len = {id(u): max(length[r] for r in u) for u in mb}
    group_len: dict[int, int] = {}
    for u in mb:
        group_len[prompt[u[0]]] = max(group_len.get(prompt[u[0]], 0), unit_len[id(u)])
    orders = [
        sorted(mb, key=lambda u: unit_len[id(u)]),
        sorted(mb, key=lambda u: (group_len[prompt[u[0]]], prompt[u[0]], unit_len[id(u)])),
    ]
    layouts = [
        [_layout(order[i : i + units_per_micro]) for i in range(0, len(order), units_per_micro)]
        for order in orders
    ]
    return min(layouts, key=lambda micro: sum(_positions(exp, rows) for rows in micro))


# Micro-batch values that are parts of the minibatch's loss (each is normalised by the whole
# minibatch's token or sequence count, over all ranks): the minibatch's value is their sum.
LOSS_PARTS = ("loss", "kl_loss", "value_loss", "nll")
# Diagnostics that are maxima, not means.
MAXIMA = ("ratio_max",)


class _MetricTotals:
    """Per-micro-batch metrics combined so that the logged values do not depend on the
    micro-batch size or the number of ranks: loss parts summed per optimizer step (the loss that
    was optimised) and averaged over steps; maxima as maxima; other diagnostics averaged over
    micro-batches weighted by their valid tokens (a clip fraction is then the fraction of all
    tokens)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.weights: dict[str, float] = defaultdict(float)
        self.maxima: dict[str, float] = {}

    def add(self, out: dict[str, float], tokens: float) -> None:
        for k, v in out.items():
            if k in MAXIMA:
                self.maxima[k] = max(self.maxima.get(k, -math.inf), v)
            elif k in LOSS_PARTS:
                self.sums[k] += v
            else:
                self.sums[k] += v * tokens
                self.weights[k] += tokens

    def result(self, steps: int, ctx: DistContext) -> dict[str, float]:
        """The iteration's values over all ranks (a collective: every rank calls it)."""
        parts = gather_objects((dict(self.sums), dict(self.weights), self.maxima), ctx)
        out: dict[str, float] = {}
        for sums, _, maxima in parts:
            for k, v in sums.items():
                out[k] = out.get(k, 0.0) + v
            for k, v in maxima.items():
                out[k] = max(out.get(k, -math.inf), v)
        for k, v in out.items():
            if k in LOSS_PARTS:
                out[k] = v / steps
            elif k not in MAXIMA:
                weight = sum(p[1].get(k, 0.0) for p in parts)
                out[k] = v / weight if weight else 0.0
        return out


def optimizer_steps(exp: Experience, alg: Algorithm, s: UpdateSettings, ctx: DistContext) -> int:
    """How many optimizer steps `update` takes on `exp` (the same number on every rank)."""
    per_unit = 2 if alg.needs_pairs else 1
    total_units = sum_across(len(exp.units), ctx)
    if total_units == 0:
        return 0
    return s.epochs * math.ceil(total_units / max(1, s.minibatch_size // per_unit))


def update(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    exp: Experience,
    alg: Algorithm,
    s: UpdateSettings,
    generator: torch.Generator,
    *,
    critic: nn.Module | None = None,
    critic_optimizer: torch.optim.Optimizer | None = None,
    ctx: DistContext = SINGLE_PROCESS,
    on_policy: bool = False,
) -> dict[str, float]:
    """All minibatch steps of one iteration; returns its metrics (see `_MetricTotals`: the same
    for any micro-batch size and number of ranks), `grad_norm` averaged over optimizer steps.

    `minibatch_size` counts responses over all ranks: every rank cuts its share of the batch into
    the same number of minibatches, so the optimizer steps stay in lockstep.

    `on_policy`: the rollout was not scored, and the update is a single optimizer step. The
    weights have not moved before that step, so each micro-batch's own detached log-probs are
    π_old (ratio 1; the gradient of the clipped loss is unchanged); they and the entropies are
    written into `exp.rollout` for the trained rows, as `score_rollout` would have computed them
    in a separate forward.
    """
    units = exp.units
    per_unit = 2 if alg.needs_pairs else 1
    steps_planned = optimizer_steps(exp, alg, s, ctx)
    if steps_planned == 0:
        return {}
    if on_policy and steps_planned > 1:
        raise ValueError(
            f"on_policy needs a single optimizer step, this update takes {steps_planned}: "
            "score the rollout (score_rollout) and pass on_policy=False"
        )
    n_minibatches = steps_planned // s.epochs
    sharded = is_sharded(model)
    units_per_micro = max(1, s.micro_batch_size // per_unit)
    params = [p for p in model.parameters() if p.requires_grad]
    critic_params = list(critic.parameters()) if critic is not None else []
    totals = _MetricTotals()
    grad_norm = 0.0
    steps = 0
    for _ in range(s.epochs):
        order = torch.randperm(len(units), generator=generator).tolist()
        for chunk in _split(order, n_minibatches):
            mb = [units[i] for i in chunk]
            rows = _layout(mb) if mb else []
            norm = {
                "num_tokens": max(
                    1.0, sum_across(float(exp.rollout.response_mask_BR[rows].sum()), ctx)
                ),
                "num_seqs": max(1.0, sum_across(float(len(rows)), ctx)),
                "max_len": s.loss_agg_max_len or None,
            }
            micro_batches: list[list[int] | None] = (
                list(_micro_batches(exp, mb, units_per_micro)) if mb else []
            )
            if sharded:  # every forward/backward is a collective: all ranks run as many
                most = int(max_across(float(len(micro_batches)), ctx))
                micro_batches += [None] * (most - len(micro_batches))
            for micro_rows in micro_batches:
                if micro_rows is None:
                    _idle_step(model, critic, exp)
                    continue
                batch = _trimmed(exp, micro_rows, on_policy)
                out, logp, ent = _micro_step(model, critic, alg, s, batch, norm, on_policy)
                if on_policy:
                    exp.rollout.store_scores(micro_rows, logp, ent)
                totals.add(out, float(batch["mask"].sum()))
            grad_norm += _clip_and_step(params, optimizer, s.grad_clip, ctx, sharded)
            if critic_optimizer is not None:
                _clip_and_step(critic_params, critic_optimizer, s.grad_clip, ctx, sharded)
            steps += 1
    metrics = totals.result(steps, ctx)
    metrics["grad_norm"] = grad_norm / steps
    metrics["optimizer_steps"] = steps
    return metrics
