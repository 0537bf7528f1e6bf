"""E epochs of minibatch updates over an experience batch, with gradient accumulation.

A minibatch is one optimizer step; it is split into micro-batches whose gradients accumulate. Every
loss is normalised by the minibatch's total kept tokens (or sequences), so the accumulated gradient
equals the gradient of the whole minibatch at once (and, later, of all ranks together).

This module decides what each step trains on and what its loss is; the policy seam
(`minimalrl.policy.Policy`, through `TrainSteps`) runs the model: the forward passes, micro-batch
planning, lock-step passes of sharded ranks and the optimizer steps.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Protocol

import torch

from minimalrl.algorithms import (
    Algorithm,
    aggregate,
    clipped_value_loss,
    kl_penalty,
    rejection_mask,
    truncated_is_weights,
)
from minimalrl.algorithms.rollout_correction import MASKS
from minimalrl.experience import Experience
from minimalrl.scale.distributed import DistContext, gather_objects, sum_across

if TYPE_CHECKING:
    from minimalrl.config import TrainConfig
    from minimalrl.model.logprobs import TokenBatch
    from minimalrl.rollout import Rollout


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; the update is abandoned before it touches the weights."""


@dataclass(frozen=True)
class UpdateSettings:
    """The loss settings an update needs (the TrainConfig fields of the same names)."""

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
    """The log-prob temperature (`model.logprobs.logprob_temperature` of the sampling one)."""
    loss_agg_max_len: int = 0
    """L of the `seq_mean_token_sum_norm` aggregation (0: none given)."""
    rollout_correction: str = "none"
    rollout_correction_cap: float = 2.0
    rollout_correction_min: float = 0.5
    rollout_correction_max: float = 2.0

    @classmethod
    def from_config(cls, cfg: TrainConfig, temperature: float) -> UpdateSettings:
        derived = ("temperature", "loss_agg_max_len")
        same = {f.name: getattr(cfg, f.name) for f in fields(cls) if f.name not in derived}
        max_len = cfg.loss_agg_max_len or cfg.max_new_tokens  # Dr. GRPO's L
        return cls(**same, temperature=temperature, loss_agg_max_len=max_len)


class TrainSteps(Protocol):
    """What the update asks of the model's runner (`minimalrl.policy.Policy` implements it)."""

    ctx: DistContext

    def micro_batches(
        self, ro: Rollout, units: list[list[int]], units_per_micro: int
    ) -> list[list[int] | None]:
        """Rows of each micro-batch of a minibatch (None: an idle pass to keep ranks in step)."""
        ...

    def logprobs(
        self, batch: TokenBatch, *, temperature: float, with_entropy: bool, entropy_grad: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The policy's per-token log-probs (B, R), with gradients, and entropies if asked."""
        ...

    def values(self, batch: TokenBatch) -> torch.Tensor | None:
        """The critic's values (B, R), with gradients; None without a critic."""
        ...

    def idle_step(self, ro: Rollout) -> None:
        """A forward/backward that adds zero to every gradient."""
        ...

    def optimizer_step(self, grad_clip: float) -> float:
        """Clip and apply the accumulated gradients (policy, then critic); the policy's norm."""
        ...


@dataclass
class MicroBatch:
    """The rows of one forward/backward, trimmed to their longest response (R' columns)."""

    tokens: TokenBatch
    mask_BR: torch.Tensor
    advantages_BR: torch.Tensor
    loss_ref_BR: torch.Tensor | None = None
    """What the loss's ratio compares against; None: this forward's own detached log-probs."""
    sampler_logp_BR: torch.Tensor | None = None
    """The sampler's log-probs of the tokens (the rollout correction's π_sampler)."""
    ref_BR: torch.Tensor | None = None
    """The initial model's log-probs (KL penalty)."""
    returns_BR: torch.Tensor | None = None
    old_values_BR: torch.Tensor | None = None


@dataclass
class UpdateResult:
    metrics: dict[str, float]
    """See `_MetricTotals`; empty when there was nothing to train."""
    scored: list[tuple[list[int], torch.Tensor, torch.Tensor | None]] = field(default_factory=list)
    """On-policy: (rows, log-probs, entropies) of each micro-batch's forward before the step."""


def _micro_batch(
    exp: Experience,
    rows: list[int],
    loss_ref_BR: torch.Tensor | None,
    kept_BR: torch.Tensor | None = None,
) -> MicroBatch:
    """The rows' token batch (padding columns cut off) and their per-token tensors, as wide;
    `kept_BR` (a rollout correction's mask): the tokens the loss keeps, else every valid one."""
    tokens = exp.rollout.select(rows)
    idx = torch.tensor(rows, dtype=torch.long)
    r1 = tokens.response_ids_BR.shape[1]

    def cut(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[idx, :r1]

    kept = cut(kept_BR)
    return MicroBatch(
        tokens=tokens,
        mask_BR=tokens.response_mask_BR if kept is None else kept.long(),
        advantages_BR=exp.advantages_BR[idx, :r1],
        loss_ref_BR=cut(loss_ref_BR),
        sampler_logp_BR=cut(exp.rollout.sampler_logp_BR),
        ref_BR=cut(exp.ref_logp_BR),
        returns_BR=cut(exp.returns_BR),
        old_values_BR=cut(exp.old_values_BR),
    )


def layout(units: list[list[int]]) -> list[int]:
    """Rows of a group of units, slot by slot: all first members, then all second members.

    For DPO pairs this is the "K chosen rows then their K rejected rows" layout its loss expects.
    """
    return [unit[slot] for slot in range(len(units[0])) for unit in units]


def _micro_step(
    steps: TrainSteps,
    alg: Algorithm,
    s: UpdateSettings,
    b: MicroBatch,
    norm: dict[str, float | None],
    on_policy: bool,
) -> tuple[dict[str, float], torch.Tensor, torch.Tensor | None]:
    """Forward, loss and backward of one micro-batch; returns its metrics and the forward's
    detached log-probs and entropies (entropies when in the loss or `on_policy`). The loss: the
    algorithm's policy loss, + β·KL to the initial model, − the entropy bonus, + the value loss."""
    logp, ent = steps.logprobs(
        b.tokens,
        temperature=s.temperature,
        with_entropy=s.entropy_coef > 0 or on_policy,
        entropy_grad=s.entropy_coef > 0,
    )
    # On-policy (one optimizer step): π_old is this very forward, the weights being unchanged.
    old_BR = b.loss_ref_BR if b.loss_ref_BR is not None else logp.detach()
    loss, out = _policy_loss(alg, s, b, logp, old_BR, norm)
    if s.kl_coef > 0:
        assert b.ref_BR is not None
        kl = aggregate(kl_penalty(logp, b.ref_BR, s.kl_estimator), b.mask_BR, s.loss_agg, **norm)
        loss = loss + s.kl_coef * kl
        out["kl_loss"] = float(kl.detach())
    if s.entropy_coef > 0:
        assert ent is not None
        loss = loss - s.entropy_coef * aggregate(ent, b.mask_BR, s.loss_agg, **norm)
    values = steps.values(b.tokens)
    if values is not None:
        vloss, vout = _value_loss(values, s, b, norm)
        out.update(vout)
        loss = loss + vloss  # the critic has its own parameters and optimizer
    if not torch.isfinite(loss):
        raise NonFiniteLossError(f"loss is {float(loss.detach())} (metrics: {out})")
    loss.backward()
    out["loss"] = float(loss.detach())
    return out, logp.detach(), None if ent is None else ent.detach()


def _policy_loss(
    alg: Algorithm,
    s: UpdateSettings,
    b: MicroBatch,
    logp: torch.Tensor,
    old_BR: torch.Tensor,
    norm: dict[str, float | None],
) -> tuple[torch.Tensor, dict[str, float]]:
    """The algorithm's loss of the forward's log-probs against `old_BR` (π_old, or DPO's initial
    model) and its metrics; with rollout_correction "tis" each token's term is weighed by its
    truncated π_old / π_sampler (token by token: the same for any micro-batch)."""
    weights, tis = None, {}
    if s.rollout_correction == "tis":
        weights, tis = truncated_is_weights(
            old_BR, _sampler_logps(b), b.mask_BR, s.rollout_correction_cap
        )
    loss, metrics = alg.loss(
        logp,
        old_BR,
        b.advantages_BR,
        b.mask_BR,
        clip_low=s.clip_low,
        clip_high=s.clip_high,
        dual_clip=s.dual_clip,
        dpo_beta=s.dpo_beta,
        agg=s.loss_agg,
        token_weights_BT=weights,
        **norm,
    )
    return loss, {k: float(v.detach()) for k, v in {**metrics, **tis}.items()}


def _value_loss(
    values_BR: torch.Tensor, s: UpdateSettings, b: MicroBatch, norm: dict[str, float | None]
) -> tuple[torch.Tensor, dict[str, float]]:
    """The critic's clipped value loss and its metrics (`value_loss` last)."""
    vloss, vmetrics = clipped_value_loss(
        values_BR,
        b.old_values_BR,
        b.returns_BR,
        b.mask_BR,
        clip_eps=s.value_clip,
        agg=s.loss_agg,
        **norm,
    )
    out = {k: float(v.detach()) for k, v in vmetrics.items()}
    out["value_loss"] = float(vloss.detach())
    return vloss, out


def _sampler_logps(b: MicroBatch) -> torch.Tensor:
    if b.sampler_logp_BR is None:
        raise ValueError(
            "rollout_correction needs the sampler's log-probs, and this rollout backend gives none"
        )
    return b.sampler_logp_BR


def _kept_tokens(
    exp: Experience, old_logp_BR: torch.Tensor | None, s: UpdateSettings
) -> torch.Tensor | None:
    """A masking correction's kept tokens (B, R) of the whole rollout, measured once before the
    update (its counts are the minibatches' denominators); None: no mask."""
    if s.rollout_correction not in MASKS:
        return None
    ro = exp.rollout
    if old_logp_BR is None or ro.sampler_logp_BR is None:
        raise ValueError(
            f"rollout_correction = {s.rollout_correction} needs π_old scored before the update "
            "and the sampler's log-probs"
        )
    level = "token" if s.rollout_correction == "token_mask" else "sequence"
    low, high = s.rollout_correction_min, s.rollout_correction_max
    return rejection_mask(old_logp_BR, ro.sampler_logp_BR, ro.response_mask_BR, level, low, high)


def _split(order: list[int], parts: int) -> list[list[int]]:
    """`order` cut into `parts` nearly equal consecutive chunks (some may be empty)."""
    size, extra = divmod(len(order), parts)
    bounds = [i * size + min(i, extra) for i in range(parts + 1)]
    return [order[a:b] for a, b in itertools.pairwise(bounds)]


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
    steps: TrainSteps,
    exp: Experience,
    alg: Algorithm,
    s: UpdateSettings,
    generator: torch.Generator,
    *,
    old_logp_BR: torch.Tensor | None = None,
    on_policy: bool = False,
) -> UpdateResult:
    """All minibatch steps of one iteration; returns its metrics (see `_MetricTotals`: the same
    for any micro-batch size and number of ranks), `grad_norm` averaged over optimizer steps.

    `old_logp_BR`: π_old, what ratio losses compare against (DPO against the initial model:
    `exp.ref_logp_BR`). `on_policy`: π_old was not scored, and the update is a single optimizer
    step: the weights have not moved before it, so each micro-batch's own detached log-probs are
    π_old (ratio 1, the clipped loss's gradient unchanged); they come back in `scored`.
    `s.rollout_correction` (`minimalrl.algorithms.rollout_correction`) compares π_old with the
    sampler's log-probs (`exp.rollout.sampler_logp_BR`): "tis" weighs each token's policy loss
    (`_policy_loss`: in each micro-batch, from its π_old, on-policy too); a mask is taken once for
    the whole rollout before the first step (`_kept_tokens`: it needs `old_logp_BR`) and drops
    tokens from every term of the loss and from its counts.
    """
    steps_planned = _planned_steps(exp, alg, s, steps.ctx, on_policy)
    if steps_planned == 0:
        return UpdateResult({})
    loss_ref_BR = exp.ref_logp_BR if exp.loss_ref == "initial" else old_logp_BR
    kept_BR = _kept_tokens(exp, old_logp_BR, s)
    units_per_micro = max(1, s.micro_batch_size // (2 if alg.needs_pairs else 1))
    totals, result, grad_norm = _MetricTotals(), UpdateResult({}), 0.0
    for units in _minibatches(exp, s.epochs, steps_planned // s.epochs, generator):
        norm = _loss_norm(exp, units, kept_BR, s, steps.ctx)
        for rows, b in _micro_batches(steps, exp, units, units_per_micro, loss_ref_BR, kept_BR):
            out, logp, ent = _micro_step(steps, alg, s, b, norm, on_policy)
            if on_policy:
                result.scored.append((rows, logp, ent))
            totals.add(out, float(b.mask_BR.sum()))
        grad_norm += steps.optimizer_step(s.grad_clip)
    result.metrics = _update_metrics(totals, steps_planned, grad_norm, exp, kept_BR, steps.ctx)
    return result


def _planned_steps(
    exp: Experience, alg: Algorithm, s: UpdateSettings, ctx: DistContext, on_policy: bool
) -> int:
    """`optimizer_steps`; `on_policy` refused unless it is one."""
    planned = optimizer_steps(exp, alg, s, ctx)
    if on_policy and planned > 1:
        raise ValueError(
            f"on_policy needs a single optimizer step, this update takes {planned}: "
            "score π_old first and pass it as old_logp_BR"
        )
    return planned


def _minibatches(
    exp: Experience, epochs: int, per_epoch: int, generator: torch.Generator
) -> Iterator[list[list[int]]]:
    """The units of each optimizer step: every epoch shuffles this rank's units and cuts them into
    `per_epoch` minibatches, as many on every rank (`minibatch_size` counts responses over all
    ranks), so the optimizer steps stay in lockstep; a rank may have empty ones."""
    for _ in range(epochs):
        order = torch.randperm(len(exp.units), generator=generator).tolist()
        for chunk in _split(order, per_epoch):
            yield [exp.units[i] for i in chunk]


def _loss_norm(
    exp: Experience,
    units: list[list[int]],
    kept_BR: torch.Tensor | None,
    s: UpdateSettings,
    ctx: DistContext,
) -> dict[str, float | None]:
    """What every loss of a minibatch is normalised by: its tokens and sequences over all ranks
    (the masked ones left out), and Dr. GRPO's L; so the micro-batches' gradients sum to the
    minibatch's."""
    rows = layout(units) if units else []
    mask_BR = exp.rollout.response_mask_BR if kept_BR is None else kept_BR
    # A response the correction masked whole is no sequence of the minibatch.
    seqs = len(rows) if kept_BR is None else int((mask_BR[rows].sum(-1) > 0).sum())
    return {
        "num_tokens": max(1.0, sum_across(float(mask_BR[rows].sum()), ctx)),
        "num_seqs": max(1.0, sum_across(float(seqs), ctx)),
        "max_len": s.loss_agg_max_len or None,
    }


def _micro_batches(
    steps: TrainSteps,
    exp: Experience,
    units: list[list[int]],
    units_per_micro: int,
    loss_ref_BR: torch.Tensor | None,
    kept_BR: torch.Tensor | None,
) -> Iterator[tuple[list[int], MicroBatch]]:
    """The rows and tensors of each micro-batch of a minibatch, as the policy plans them; where it
    plans an idle pass (a sharded rank out of micro-batches), that pass runs in their place."""
    for rows in steps.micro_batches(exp.rollout, units, units_per_micro):
        if rows is None:
            steps.idle_step(exp.rollout)
            continue
        yield rows, _micro_batch(exp, rows, loss_ref_BR, kept_BR)


def _update_metrics(
    totals: _MetricTotals,
    steps_planned: int,
    grad_norm: float,
    exp: Experience,
    kept_BR: torch.Tensor | None,
    ctx: DistContext,
) -> dict[str, float]:
    """The update's metrics over all ranks: the micro steps' (`_MetricTotals`), the fraction of the
    trained tokens a mask dropped, the mean gradient norm and the number of optimizer steps."""
    metrics = totals.result(steps_planned, ctx)
    if kept_BR is not None:  # the fraction of the trained tokens masked, over all ranks
        rows = exp.trained_rows
        valid = sum_across(float(exp.rollout.response_mask_BR[rows].sum()), ctx)
        kept = sum_across(float(kept_BR[rows].sum()), ctx)
        metrics["rollout_masked"] = 1.0 - kept / max(valid, 1.0)
    metrics["grad_norm"] = grad_norm / steps_planned
    metrics["optimizer_steps"] = steps_planned
    return metrics
