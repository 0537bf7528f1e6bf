"""Keep filters and group advantages for outcome rewards (PAPER.md, "The algorithms").

A batch arrives as a table: P prompts, G sampled responses each, with the reward function's
`rewards_PG` (float) and verdicts `correct_PG` (bool). A keep filter names what it reads (the
verdicts, or the rewards) and returns `keep_PG`; an advantage turns `rewards_PG` into
`advantages_PG`. The registry (`registry.py`) pairs one of each per algorithm, so RAFT, RAFT++,
Reinforce, Reinforce-Rej and GRPO differ only in those two choices.

Conventions and judgement calls:
- Filters read correctness, never a threshold on the reward: "all wrong" = no response correct.
  Reinforce-Rej keeps the prompts whose rewards are *not all equal* (PAPER.md's main table), which
  for binary rewards is exactly "drop the all-correct and all-wrong prompts".
- Std is unbiased (torch.std, correction=1) as in the paper's code. For G = 1 it is undefined; we
  use 0, so GRPO gives (r − r) / (0 + eps) = 0 to a lone response, like any all-equal group.
- The advantage grid: a baseline (none, group mean, leave-one-out, batch mean) and a scale (none,
  group std, batch std), `normalised(baseline, scale)`. "Batch" is the whole P×G table, the
  rewards of all prompts (a trainer with several ranks gathers them first), each response
  counting once (verl whitens REINFORCE++ over tokens, which weighs long responses more).
- A filtered-out response has keep = False and advantage 0, so a trainer may drop it (the default,
  as in PAPER.md) or keep its tokens with zero advantage (the released code's "zeroing" mode).
- The first line of each filter's and advantage's docstring is its cell in `describe_registry()`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from minimalrl.algorithms._lookup import call_with, lookup

KeepFn = Callable[..., Tensor]  # (some of: rewards_PG, correct_PG, lo, hi) -> keep_PG
AdvantageFn = Callable[..., Tensor]  # (rewards_PG, *, eps) -> advantages_PG


# --- per-prompt statistics -----------------------------------------------------------------------


def group_std(rewards_PG: Tensor) -> Tensor:
    """Unbiased std of each prompt's G rewards, shape (P, 1); 0 when G = 1 (where undefined)."""
    if rewards_PG.shape[-1] < 2:
        return torch.zeros_like(rewards_PG[:, :1])
    return rewards_PG.std(dim=-1, keepdim=True)  # correction=1, as torch.std in the paper's code


def _group_mean(rewards_PG: Tensor) -> Tensor:
    return rewards_PG.mean(dim=-1, keepdim=True)


def _leave_one_out_mean(rewards_PG: Tensor) -> Tensor:
    """Mean of the *other* G − 1 rewards of each response's prompt, (P, G) (RLOO's baseline).

    r − this = G/(G−1)·(r − mean_j r); for G = 1 (no other response) the baseline is r itself."""
    g = rewards_PG.shape[-1]
    if g < 2:
        return rewards_PG.clone()
    return (rewards_PG.sum(dim=-1, keepdim=True) - rewards_PG) / (g - 1)


def _batch_mean(rewards_PG: Tensor) -> Tensor:
    return rewards_PG.mean().expand(rewards_PG.shape[0], 1)


def batch_std(rewards_PG: Tensor) -> Tensor:
    """Unbiased std of all P·G rewards of the batch, as (P, 1); 0 for a single reward."""
    if rewards_PG.numel() < 2:
        return torch.zeros_like(rewards_PG[:, :1])
    return rewards_PG.std().expand(rewards_PG.shape[0], 1)


def _per_prompt(keep_P: Tensor, like_PG: Tensor) -> Tensor:
    """Broadcast a per-prompt bool (P,) to every response of its prompt, (P, G)."""
    return keep_P.unsqueeze(-1).expand_as(like_PG).clone()


# --- keep filters: (some of rewards_PG, correct_PG, lo, hi) -> keep_PG ---------------------------


def keep_all(correct_PG: Tensor) -> Tensor:
    """All responses."""
    return torch.ones_like(correct_PG, dtype=torch.bool)


def keep_best_if_correct(rewards_PG: Tensor, correct_PG: Tensor) -> Tensor:
    """Every correct response of each prompt (RAFT).

    Those with their prompt's top reward, if they are correct: with binary rewards every correct
    response, as in PAPER.md and the paper's code (not one best response per prompt)."""
    best_P1 = rewards_PG.max(dim=-1, keepdim=True).values
    return (rewards_PG == best_P1) & correct_PG


def keep_not_all_equal(rewards_PG: Tensor) -> Tensor:
    """Prompts whose rewards are not all equal (Reinforce-Rej)."""
    spread_P = rewards_PG.max(dim=-1).values - rewards_PG.min(dim=-1).values
    return _per_prompt(spread_P > 0, rewards_PG)


def keep_not_all_wrong(correct_PG: Tensor) -> Tensor:
    """Prompts whose responses are not all wrong."""
    return _per_prompt(correct_PG.any(dim=-1), correct_PG)


def keep_not_all_correct(correct_PG: Tensor) -> Tensor:
    """Prompts whose responses are not all correct."""
    return _per_prompt(~correct_PG.all(dim=-1), correct_PG)


def keep_correct_fraction_in_band(
    correct_PG: Tensor, *, lo: float | None = None, hi: float | None = None
) -> Tensor:
    """Prompts whose fraction p of correct responses has lo <= p <= hi.

    Given bounds are inclusive. A bound left as None is an *open* end: lo=None means p > 0 and
    hi=None means p < 1, so the default band (0, 1) is Reinforce-Rej for binary rewards.
    """
    for bound in (lo, hi):
        if bound is not None and not 0.0 <= bound <= 1.0:
            raise ValueError(f"band bounds must lie in [0, 1], got lo={lo}, hi={hi}")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"band needs lo <= hi, got lo={lo}, hi={hi}")
    p_P = correct_PG.double().mean(dim=-1)  # float64 so 1/3 etc. compare exactly
    above_P = p_P > 0 if lo is None else p_P >= lo
    below_P = p_P < 1 if hi is None else p_P <= hi
    return _per_prompt(above_P & below_P, correct_PG)


def keep_correct_and_wrong(correct_PG: Tensor) -> Tensor:
    """Prompts with at least one correct and one wrong response (DPO pairs).

    Exactly the prompts that yield a pair in `make_preference_pairs`."""
    return _per_prompt(correct_PG.any(dim=-1) & (~correct_PG).any(dim=-1), correct_PG)


# --- advantages: (rewards_PG, *, eps) -> advantages_PG -------------------------------------------


def ones(rewards_PG: Tensor, *, eps: float = 1e-6) -> Tensor:
    """1."""
    return torch.ones_like(rewards_PG)


def from_critic(rewards_PG: Tensor, *, eps: float = 1e-6) -> Tensor:
    """GAE(γ, λ) from the critic.

    The marker of the critic's algorithms (`Algorithm.needs_critic`): per group it is the reward
    r, which the trainer places on the last token and turns into GAE with the critic's values."""
    return rewards_PG.clone()


# name -> (how the formula reads, the baseline (P, 1) or None)
BASELINES: dict[str, tuple[str, Callable[[Tensor], Tensor] | None]] = {
    "none": ("r", None),
    "group_mean": ("r − mean_j r", _group_mean),
    "leave_one_out": ("r − mean_{j≠i} r", _leave_one_out_mean),  # RLOO, arXiv 2402.14740
    "batch_mean": ("r − mean_batch r", _batch_mean),  # REINFORCE++, arXiv 2501.03262
}
# name -> (how the formula reads, the scale (P, 1) or None)
SCALES: dict[str, tuple[str, Callable[[Tensor], Tensor] | None]] = {
    "none": ("", None),
    "group_std": ("std_j r", group_std),
    "batch_std": ("std_batch r", batch_std),  # Lite PPO (arXiv 2508.08221), REINFORCE++
}


@functools.cache
def normalised(baseline: str = "none", scale: str = "none") -> AdvantageFn:
    """The advantage (r − baseline) / (scale + eps), one point of the grid BASELINES × SCALES.

    The same arguments give the same function object; its docstring is its formula. A "none"
    baseline or scale leaves r as it is (no eps is added), so `normalised()` is exactly r.
    """
    centre_text, centre = lookup(BASELINES, baseline, "advantage baseline")
    scale_text, spread = lookup(SCALES, scale, "advantage scale")

    def advantage(rewards_PG: Tensor, *, eps: float = 1e-6) -> Tensor:
        # PAPER.md, GRPO row: (r_ij − mean_j r_i·) / (std_j r_i· + 1e-6); 0 when all are equal.
        out_PG = rewards_PG.clone() if centre is None else rewards_PG - centre(rewards_PG)
        return out_PG if spread is None else out_PG / (spread(rewards_PG) + eps)

    numerator = f"({centre_text})" if scale_text and centre is not None else centre_text
    formula = f"{numerator} / ({scale_text} + eps)" if scale_text else numerator
    advantage.__doc__ = f"{formula}."
    advantage.__name__ = advantage.__qualname__ = f"normalised_{baseline}_{scale}"
    advantage.baseline, advantage.scale = baseline, scale  # type: ignore[attr-defined]
    return advantage


reward = normalised("none", "none")  # r
reward_minus_mean = normalised("group_mean", "none")  # r − mean_j r (Dr. GRPO)
reward_over_std = normalised("none", "group_std")  # r / (std_j r + eps)
mean_std_normalised = normalised("group_mean", "group_std")  # GRPO
leave_one_out = normalised("leave_one_out", "none")  # RLOO
mean_over_batch_std = normalised("group_mean", "batch_std")  # Lite PPO
batch_whitened = normalised("batch_mean", "batch_std")  # REINFORCE++


# --- filter + advantage ---------------------------------------------------------------------------


def filter_and_advantages(
    keep: KeepFn,
    advantage: AdvantageFn,
    rewards_PG: Tensor,
    correct_PG: Tensor,
    *,
    eps: float = 1e-6,
    lo: float | None = None,
    hi: float | None = None,
) -> tuple[Tensor, Tensor]:
    """(advantages_PG, keep_PG): `keep` on the verdicts (or rewards), `advantage` on the rewards;
    a filtered-out response gets advantage 0."""
    rewards_PG = torch.as_tensor(rewards_PG)
    if rewards_PG.ndim != 2:
        raise ValueError(f"rewards_PG must be (P, G), got shape {tuple(rewards_PG.shape)}")
    if not rewards_PG.is_floating_point():
        rewards_PG = rewards_PG.float()
    correct_PG = torch.as_tensor(correct_PG, dtype=torch.bool)
    if correct_PG.shape != rewards_PG.shape:
        raise ValueError(f"correct_PG {tuple(correct_PG.shape)} is not like rewards_PG")
    keep_PG = call_with(keep, rewards_PG=rewards_PG, correct_PG=correct_PG, lo=lo, hi=hi)
    advantages_PG = torch.where(keep_PG, advantage(rewards_PG, eps=eps), 0.0)
    return advantages_PG, keep_PG


def dynamic_sampling_take(keep_PG: Tensor, missing: int) -> tuple[Tensor, int]:
    """DAPO's dynamic sampling (arXiv 2503.14476), one round: which of this round's P prompts
    join the batch — those the filter keeps, in order, up to the `missing` count — and how many
    are still missing after them (sample another round while > 0)."""
    kept_P = keep_PG.any(dim=-1)
    take_P = kept_P & (kept_P.cumsum(dim=0) <= max(missing, 0))
    return take_P, max(missing, 0) - int(take_P.sum())


def group_outcome_stats(correct_PG: Tensor) -> dict[str, float]:
    """Fractions of prompts all correct, all wrong, or mixed (a training curve in PAPER.md)."""
    num_prompts = correct_PG.shape[0]
    if num_prompts == 0:
        return {"frac_all_correct": 0.0, "frac_all_wrong": 0.0, "frac_mixed": 0.0}
    frac_correct = correct_PG.all(dim=-1).sum().item() / num_prompts
    frac_wrong = (~correct_PG).all(dim=-1).sum().item() / num_prompts
    return {
        "frac_all_correct": frac_correct,
        "frac_all_wrong": frac_wrong,
        "frac_mixed": 1.0 - frac_correct - frac_wrong,
    }


def broadcast_to_tokens(values_B: Tensor, mask_BT: Tensor) -> Tensor:
    """Give each valid token of response b the value values_B[b] (PAPER.md: "for every token")."""
    return torch.where(mask_BT.bool(), values_B.unsqueeze(-1), 0.0).to(values_B.dtype)
