"""From a rollout to training experience: rewards, the kept set, per-token advantages, units.

The rewards and verdicts come from the reward function; every choice here is read off the
algorithm's registry record (`keep`, `advantage`, `needs_critic`, `needs_pairs`); the math is the
registry's pure functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from minimalrl.algorithms import (
    Algorithm,
    broadcast_to_tokens,
    dynamic_sampling_take,
    filter_and_advantages,
    gae,
    kl_penalty,
    make_preference_pairs,
    masked_mean,
    mismatch_metrics,
    pair_indices,
    place_on_last_token,
    whiten,
)
from minimalrl.rollout import Rollout
from minimalrl.scale.distributed import (
    SINGLE_PROCESS,
    DistContext,
    gather_objects,
    sum_tensor_across,
)

Sampled = tuple[Rollout, torch.Tensor, torch.Tensor]
"""A rollout with its rewards (B,) and verdicts (B,)."""


@dataclass
class Experience:
    """A scored rollout batch of B = P·G responses, ready for minibatch updates."""

    rollout: Rollout
    rewards_PG: torch.Tensor
    correct_PG: torch.Tensor
    keep_PG: torch.Tensor
    advantages_BR: torch.Tensor
    """Per-token advantages (0 on pads and on filtered-out responses)."""
    units: list[list[int]]
    """Training units: rows updated together (one response, or a (chosen, rejected) pair)."""
    loss_ref: str = "iteration"
    """What the loss compares against, named as `dpo_reference`: "iteration" = π_old, the policy at
    the start of the iteration (ratio losses, DPO's default), "initial" = the initial model."""
    returns_BR: torch.Tensor | None = None
    old_values_BR: torch.Tensor | None = None
    ref_logp_BR: torch.Tensor | None = None
    """Log-probs under the initial model (KL penalty and the kl_to_init curve)."""

    @property
    def trained_rows(self) -> list[int]:
        """The rows the update trains on (members of some unit), in order."""
        return sorted({b for unit in self.units for b in unit})


def build_experience(
    alg: Algorithm,
    ro: Rollout,
    rewards_B: torch.Tensor,
    correct_B: torch.Tensor,
    *,
    group_size: int,
    band: tuple[float, float],
    ref_logp_BR: torch.Tensor | None,  # the initial model's and the critic's scores of `ro`
    values_BR: torch.Tensor | None,
    gamma: float,
    lam: float,
    pair_rng: torch.Generator,
    pair_reference: str,
    ctx: DistContext = SINGLE_PROCESS,
    filtered: str = "drop",
    advantage_eps: float = 1e-6,
) -> Experience:
    """Rewards and verdicts (B,) -> filter + advantages (group or critic) -> the units the update
    iterates over: the kept responses, or with `filtered="zero"` all of them (the rejected ones
    with advantage 0). `advantage_eps`: the eps of a std-scaled advantage."""
    mask_BR = ro.response_mask_BR
    correct_PG = correct_B.view(-1, group_size)
    rewards_PG = rewards_B.view(-1, group_size)
    adv_PG, keep_PG = _across_ranks(
        lambda r_PG, c_PG: filter_and_advantages(
            alg.keep, alg.advantage, r_PG, c_PG, eps=advantage_eps, lo=band[0], hi=band[1]
        ),
        rewards_PG,
        correct_PG,
        ctx,
    )
    keep_B = keep_PG.reshape(-1)
    exp_kwargs: dict = {}
    if alg.needs_critic:
        assert values_BR is not None, "an algorithm with a critic needs its values"
        token_rewards_BR = place_on_last_token(rewards_PG.reshape(-1), mask_BR)
        adv_BR, returns_BR = gae(token_rewards_BR, values_BR, mask_BR, gamma, lam)
        # over all ranks' kept tokens, as one process with the whole batch would
        reduce = functools.partial(sum_tensor_across, ctx=ctx)
        adv_BR = whiten(adv_BR, mask_BR * keep_B[:, None], reduce=reduce)
        exp_kwargs = {"returns_BR": returns_BR, "old_values_BR": values_BR}
    else:
        adv_BR = broadcast_to_tokens(adv_PG.reshape(-1), mask_BR)
    units = _units(alg, correct_PG, keep_B, group_size, pair_rng, filtered)
    loss_ref = "initial" if alg.needs_pairs and pair_reference == "initial" else "iteration"
    if loss_ref == "initial" and ref_logp_BR is None:
        raise ValueError("DPO against the initial model needs its log-probs (ref_logp_BR)")
    return Experience(
        rollout=ro,
        rewards_PG=rewards_PG,
        correct_PG=correct_PG,
        keep_PG=keep_PG,
        advantages_BR=adv_BR,
        units=units,
        loss_ref=loss_ref,
        ref_logp_BR=ref_logp_BR,
        **exp_kwargs,
    )


def _units(
    alg: Algorithm,
    correct_PG: torch.Tensor,
    keep_B: torch.Tensor,
    group_size: int,
    pair_rng: torch.Generator,
    filtered: str,
) -> list[list[int]]:
    """What the update iterates over: (chosen, rejected) row pairs for DPO, else single rows (the
    kept ones, or every row when filtered prompts are zeroed rather than dropped)."""
    if alg.needs_pairs:
        pairs = make_preference_pairs(correct_PG, pair_rng)
        chosen_K, rejected_K = pair_indices(pairs, group_size)
        return [[int(c), int(r)] for c, r in zip(chosen_K, rejected_K)]
    trained_B = keep_B if filtered == "drop" else torch.ones_like(keep_B)
    return [[int(b)] for b in trained_B.nonzero().squeeze(1)]


def _across_ranks(rule, rewards_PG: torch.Tensor, correct_PG: torch.Tensor, ctx: DistContext):
    """`rule` on the whole batch's (P, G) tables, this rank's rows of its results: a batch rule
    (batch std, batch mean) sees every rank's rewards, as one process with the whole batch."""
    if not ctx.active:
        return rule(rewards_PG, correct_PG)
    parts = gather_objects((rewards_PG, correct_PG), ctx)
    start = sum(r.shape[0] for r, _ in parts[: ctx.rank])
    rows = slice(start, start + rewards_PG.shape[0])
    adv_PG, keep_PG = rule(torch.cat([r for r, _ in parts]), torch.cat([c for _, c in parts]))
    return adv_PG[rows], keep_PG[rows]


def sample_until_full(
    sample: Callable[[int], Sampled],
    alg: Algorithm,
    *,
    group_size: int,
    target: int,
    rounds: int,
    band: tuple[float, float],
    pad_id: int,
) -> tuple[Sampled, dict[str, float]]:
    """DAPO's dynamic sampling (arXiv 2503.14476): `sample(round)` rolls out and rewards fresh
    prompts until the filter has kept `target` of them or `rounds` rounds ran. Returns the kept
    groups (the first `target`) joined into one rollout, and the metrics `prompts_sampled`,
    `sampling_rounds` and `prompts_missing` (> 0: the batch could not be filled)."""
    parts: list[tuple[Rollout, torch.Tensor, torch.Tensor]] = []
    missing, sampled, rounds_run = target, 0, 0
    while missing > 0 and rounds_run < rounds:
        ro, rewards_B, correct_B = sample(rounds_run)
        rounds_run += 1
        _, keep_PG = filter_and_advantages(
            alg.keep,
            alg.advantage,
            rewards_B.view(-1, group_size),
            correct_B.view(-1, group_size),
            lo=band[0],
            hi=band[1],
        )
        sampled += keep_PG.shape[0]
        take_P, missing = dynamic_sampling_take(keep_PG, missing)
        rows = take_P.repeat_interleave(group_size).nonzero().squeeze(1)
        if len(rows):
            parts.append((ro.select(rows), rewards_B[rows], correct_B[rows]))
    metrics = {
        "prompts_sampled": float(sampled),
        "sampling_rounds": float(rounds_run),
        "prompts_missing": float(missing),
    }
    if not parts:  # nothing kept at all: train on nothing, measure the last round
        return (ro, rewards_B, correct_B), metrics
    joined = _join([p[0] for p in parts], pad_id)
    return (joined, torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])), metrics


def _join(batches: list[Rollout], pad_id: int) -> Rollout:
    """One rollout of several (prompts left-padded, responses right-padded), with the sampler's
    log-probs when every part has them."""
    width_p = max(b.prompt_ids_UP.shape[1] for b in batches)
    width_r = max(b.response_ids_BR.shape[1] for b in batches)

    def padded(t: torch.Tensor, width: int, value: object, left: bool) -> torch.Tensor:
        pad = t.new_full((t.shape[0], width - t.shape[1]), value)
        return torch.cat([pad, t] if left else [t, pad], dim=1)

    offsets = [0]
    for b in batches[:-1]:
        offsets.append(offsets[-1] + b.prompt_ids_UP.shape[0])
    sampler_logps = [b.sampler_logp_BR for b in batches]
    return Rollout(
        torch.cat([padded(b.prompt_ids_UP, width_p, pad_id, True) for b in batches]),
        torch.cat([padded(b.prompt_mask_UP, width_p, 0, True) for b in batches]),
        torch.cat([b.prompt_index_B + o for b, o in zip(batches, offsets)]),
        torch.cat([padded(b.response_ids_BR, width_r, pad_id, False) for b in batches]),
        torch.cat([padded(b.response_mask_BR, width_r, 0, False) for b in batches]),
        sampler_logp_BR=None
        if any(lp is None for lp in sampler_logps)
        else torch.cat([padded(lp, width_r, 0.0, False) for lp in sampler_logps]),
    )


def rollout_metrics(
    exp: Experience, old_logp_BR: torch.Tensor | None, entropy_BR: torch.Tensor | None
) -> dict[str, float]:
    """The paper's curves measured on the rollout batch under the sampling policy (its log-probs
    and entropies from a scoring forward or from the on-policy update's own), and how far the
    sampler's own log-probs are from them (`mismatch_metrics`; None without them)."""
    mask_BR = exp.rollout.response_mask_BR
    P = exp.rewards_PG.shape[0]
    all_correct = exp.correct_PG.all(-1)
    all_wrong = ~exp.correct_PG.any(-1)
    keep_B = exp.keep_PG.reshape(-1)
    kept_rows = [b for b in exp.trained_rows if keep_B[b]]
    metrics = {
        "reward_mean": float(exp.rewards_PG.mean()),
        "accuracy": float(exp.correct_PG.float().mean()),
        "response_length": float(mask_BR.sum(-1).float().mean()),
        "prompts_all_correct": float(all_correct.sum()) / P,
        "prompts_all_wrong": float(all_wrong.sum()) / P,
        "prompts_kept": float(exp.keep_PG.any(-1).sum()) / P,
        "samples_kept": len(kept_rows),
        "entropy": float(masked_mean(entropy_BR, mask_BR)) if entropy_BR is not None else None,
        "kl_to_init": None,
        "response_tokens": float(mask_BR.sum()),
    }
    if exp.ref_logp_BR is not None and old_logp_BR is not None:
        kl_BR = kl_penalty(old_logp_BR, exp.ref_logp_BR, "k3")
        metrics["kl_to_init"] = float(masked_mean(kl_BR, mask_BR))
    metrics.update(dict.fromkeys(_MISMATCH))  # None: no sampler log-probs to compare
    sampler_logp_BR = exp.rollout.sampler_logp_BR
    if old_logp_BR is not None and sampler_logp_BR is not None:
        mismatch = mismatch_metrics(old_logp_BR, sampler_logp_BR, mask_BR)
        metrics.update({k: float(v) for k, v in mismatch.items()})
    return metrics


# How each rollout metric combines over ranks (each rank has the same number of prompts/samples).
_SUMMED = ("samples_kept", "response_tokens")
_MISMATCH = ("mismatch_abs_log_ratio", "mismatch_ratio_max", "mismatch_ratio_min", "mismatch_kl")
_TOKEN_WEIGHTED = ("entropy", "kl_to_init", "mismatch_abs_log_ratio", "mismatch_kl")


def reduce_metrics(metrics: dict, ctx: DistContext) -> dict:
    """Combine per-rank rollout metrics into the metrics of the whole batch."""
    if not ctx.active:
        return metrics
    per_rank = gather_objects(metrics, ctx)
    tokens = [m["response_tokens"] for m in per_rank]
    out = {}
    for key in metrics:
        values = [m[key] for m in per_rank]
        if key in _SUMMED:
            out[key] = sum(values)
        elif values[0] is None:
            out[key] = None
        elif key in ("mismatch_ratio_max", "mismatch_ratio_min"):
            out[key] = (max if key.endswith("max") else min)(values)
        elif key in _TOKEN_WEIGHTED:
            out[key] = sum(v * t for v, t in zip(values, tokens)) / max(sum(tokens), 1.0)
        else:
            out[key] = sum(values) / len(values)
    return out
