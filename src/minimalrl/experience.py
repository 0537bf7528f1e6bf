"""From a rollout to training experience: rewards, the kept set, per-token advantages, units.

The rewards and verdicts come from the reward function; every choice here is read off the
algorithm's registry record (`keep`, `advantage`, `needs_critic`, `needs_pairs`); the math is the
registry's pure functions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from minimalrl.algorithms import (
    Algorithm,
    broadcast_to_tokens,
    filter_and_advantages,
    gae,
    kl_penalty,
    make_preference_pairs,
    masked_mean,
    pair_indices,
    place_on_last_token,
    whiten,
)
from minimalrl.distributed import SINGLE_PROCESS, DistContext, gather_objects, sum_tensor_across
from minimalrl.logprobs import over_micro_batches
from minimalrl.rollout import Rollout


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

    @property
    def loss_ref_logp_BR(self) -> torch.Tensor | None:
        """The log-probs the loss compares against (None: π_old of a rollout not scored yet)."""
        return self.ref_logp_BR if self.loss_ref == "initial" else self.rollout.old_logp_BR


@torch.inference_mode()
def critic_values(critic: nn.Module, ro: Rollout, micro_batch: int) -> torch.Tensor:
    """The critic's values (B, R) of the rollout's states, without gradients."""
    (values_BR,) = over_micro_batches(lambda b: (critic(b),), ro, micro_batch)
    assert values_BR is not None
    return values_BR


def build_experience(
    alg: Algorithm,
    ro: Rollout,
    rewards_B: torch.Tensor,
    correct_B: torch.Tensor,
    *,
    group_size: int,
    band: tuple[float, float],
    ref_logp_BR: torch.Tensor | None,
    critic: nn.Module | None,
    gamma: float,
    lam: float,
    pair_rng: torch.Generator,
    pair_reference: str,
    micro_batch: int,
    ctx: DistContext = SINGLE_PROCESS,
) -> Experience:
    """Rewards and verdicts (B,) -> filter + advantages (group or critic) -> the units the update
    iterates over."""
    mask_BR = ro.response_mask_BR
    correct_PG = correct_B.view(-1, group_size)
    rewards_PG = rewards_B.view(-1, group_size)
    adv_PG, keep_PG = filter_and_advantages(
        alg.keep, alg.advantage, rewards_PG, correct_PG, lo=band[0], hi=band[1]
    )
    keep_B = keep_PG.reshape(-1)
    exp_kwargs: dict = {}
    if alg.needs_critic:
        assert critic is not None, "an algorithm with a critic needs one"
        values_BR = critic_values(critic, ro, micro_batch)
        token_rewards_BR = place_on_last_token(rewards_PG.reshape(-1), mask_BR)
        adv_BR, returns_BR = gae(token_rewards_BR, values_BR, mask_BR, gamma, lam)
        # over all ranks' kept tokens, as one process with the whole batch would
        reduce = functools.partial(sum_tensor_across, ctx=ctx)
        adv_BR = whiten(adv_BR, mask_BR * keep_B[:, None], reduce=reduce)
        exp_kwargs = {"returns_BR": returns_BR, "old_values_BR": values_BR}
    else:
        adv_BR = broadcast_to_tokens(adv_PG.reshape(-1), mask_BR)
    if alg.needs_pairs:
        pairs = make_preference_pairs(correct_PG, pair_rng)
        chosen_K, rejected_K = pair_indices(pairs, group_size)
        units = [[int(c), int(r)] for c, r in zip(chosen_K, rejected_K)]
    else:
        units = [[int(b)] for b in keep_B.nonzero().squeeze(1)]
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


def rollout_metrics(exp: Experience) -> dict[str, float]:
    """The paper's curves measured on the rollout batch under the sampling policy (its entropies
    and log-probs come from `score_rollout` or from the on-policy update's forward)."""
    ro = exp.rollout
    entropy_BR = ro.entropy_BR
    mask_BR = ro.response_mask_BR
    P = exp.rewards_PG.shape[0]
    all_correct = exp.correct_PG.all(-1)
    all_wrong = ~exp.correct_PG.any(-1)
    kept_rows = exp.trained_rows
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
    if exp.ref_logp_BR is not None and ro.old_logp_BR is not None:
        kl_BR = kl_penalty(ro.old_logp_BR, exp.ref_logp_BR, "k3")
        metrics["kl_to_init"] = float(masked_mean(kl_BR, mask_BR))
    return metrics


# How each rollout metric combines over ranks (each rank has the same number of prompts/samples).
_SUMMED = ("samples_kept", "response_tokens")
_TOKEN_WEIGHTED = ("entropy", "kl_to_init")


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
        elif key in _TOKEN_WEIGHTED:
            out[key] = sum(v * t for v, t in zip(values, tokens)) / max(sum(tokens), 1.0)
        else:
            out[key] = sum(values) / len(values)
    return out
