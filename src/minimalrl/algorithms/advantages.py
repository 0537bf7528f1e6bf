"""Group filters and group advantages for outcome rewards (PAPER.md, "The algorithms").

Rewards arrive as a table `rewards_PG`: P prompts, G sampled responses each. Each algorithm's group
rule is a pair (keep filter, advantage transform), so `GROUP_RULES` reads like the paper's ablation
table: RAFT, RAFT++, Reinforce, Reinforce-Rej and GRPO differ only in the filter and transform.

Conventions and judgement calls:
- A response is *correct* when its reward is >= `correct_reward` and *wrong* when it is
  <= `wrong_reward`. For binary rewards (±1 in the paper's analysis, 0/1 in its code) this is exact
  equality; for other values (partial credit) it is the natural generalisation. Pass the values the
  verifier really uses: with 0/1 rewards, `wrong_reward=0.0`.
- "All correct" = every response correct; "all wrong" = every response wrong. Reinforce-Rej keeps
  the prompts whose rewards are *not all equal* (PAPER.md's main table); for binary rewards that is
  exactly "drop the all-correct and all-wrong prompts", i.e. the open band 0 < p < 1 on the
  fraction p of correct responses.
- Std is unbiased (torch.std, correction=1) as in the paper's code. For G = 1 it is undefined; we
  use 0, so GRPO gives (r − r) / (0 + eps) = 0 to a lone response, like any all-equal group.
- A filtered-out response has keep = False and advantage 0, so a trainer may drop it (the default,
  as in PAPER.md) or keep its tokens with zero advantage (the released code's "zeroing" mode).
- The first line of each filter's and transform's docstring is its cell in `describe_registry()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from minimalrl.algorithms._lookup import lookup

KeepFn = Callable[..., Tensor]  # (rewards_PG, *, correct_reward, wrong_reward, lo, hi) -> keep_PG
AdvantageFn = Callable[..., Tensor]  # (rewards_PG, *, eps) -> advantages_PG


# --- per-prompt statistics -----------------------------------------------------------------------


def group_std(rewards_PG: Tensor) -> Tensor:
    """Unbiased std of each prompt's G rewards, shape (P, 1); 0 when G = 1 (where undefined)."""
    if rewards_PG.shape[-1] < 2:
        return torch.zeros_like(rewards_PG[:, :1])
    return rewards_PG.std(dim=-1, keepdim=True)  # correction=1, as torch.std in the paper's code


def _per_prompt(keep_P: Tensor, like_PG: Tensor) -> Tensor:
    """Broadcast a per-prompt bool (P,) to every response of its prompt, (P, G)."""
    return keep_P.unsqueeze(-1).expand_as(like_PG).clone()


def _fraction_correct(rewards_PG: Tensor, correct_reward: float) -> Tensor:
    """Fraction p of correct responses per prompt, (P,); float64 so 1/3 etc. compare exactly."""
    return (rewards_PG >= correct_reward).double().mean(dim=-1)


# --- keep filters: (rewards_PG, *, correct_reward, wrong_reward, lo, hi) -> keep_PG ---------------


def keep_all(
    rewards_PG: Tensor,
    *,
    correct_reward: float = 1.0,
    wrong_reward: float = -1.0,
    lo: float | None = None,
    hi: float | None = None,
) -> Tensor:
    """All responses."""
    return torch.ones_like(rewards_PG, dtype=torch.bool)


def keep_best_if_correct(
    rewards_PG: Tensor,
    *,
    correct_reward: float = 1.0,
    wrong_reward: float = -1.0,
    lo: float | None = None,
    hi: float | None = None,
) -> Tensor:
    """Every correct response of each prompt (RAFT).

    Those with their prompt's top reward, if it is r_correct: with binary rewards every correct
    response, as in PAPER.md and the paper's code (not one best response per prompt)."""
    best_P1 = rewards_PG.max(dim=-1, keepdim=True).values
    return (rewards_PG == best_P1) & (best_P1 >= correct_reward)


def keep_not_all_equal(
    rewards_PG: Tensor,
    *,
    correct_reward: float = 1.0,
    wrong_reward: float = -1.0,
    lo: float | None = None,
    hi: float | None = None,
) -> Tensor:
    """Prompts whose rewards are not all equal (Reinforce-Rej)."""
    spread_P = rewards_PG.max(dim=-1).values - rewards_PG.min(dim=-1).values
    return _per_prompt(spread_P > 0, rewards_PG)


def keep_not_all_wrong(
    rewards_PG: Tensor,
    *,
    correct_reward: float = 1.0,
    wrong_reward: float = -1.0,
    lo: float | None = None,
    hi: float | None = None,
) -> Tensor:
    """Prompts whose responses are not all wrong."""
    return _per_prompt(~(rewards_PG <= wrong_reward).all(dim=-1), rewards_PG)


def keep_not_all_correct(
    rewards_PG: Tensor,
    *,
    correct_reward: float = 1.0,
    wrong_reward: float = -1.0,
    lo: float | None = None,
    hi: float | None = None,
) -> Tensor:
    """Prompts whose responses are not all correct."""
    return _per_prompt(~(rewards_PG >= correct_reward).all(dim=-1), rewards_PG)


def keep_correct_fraction_in_band(
    rewards_PG: Tensor,
    *,
    correct_reward: float = 1.0,
    wrong_reward: float = -1.0,
    lo: float | None = None,
    hi: float | None = None,
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
    p_P = _fraction_correct(rewards_PG, correct_reward)
    above_P = p_P > 0 if lo is None else p_P >= lo
    below_P = p_P < 1 if hi is None else p_P <= hi
    return _per_prompt(above_P & below_P, rewards_PG)


def keep_correct_and_wrong(
    rewards_PG: Tensor,
    *,
    correct_reward: float = 1.0,
    wrong_reward: float = -1.0,
    lo: float | None = None,
    hi: float | None = None,
) -> Tensor:
    """Prompts with at least one correct and one wrong response (DPO pairs).

    "Wrong" here is "not correct" (reward < correct_reward), the rule of `make_preference_pairs`:
    a pair needs only a preferred and a dispreferred response, so this keeps exactly the prompts
    that yield a pair.
    """
    correct_PG = rewards_PG >= correct_reward
    return _per_prompt(correct_PG.any(dim=-1) & (~correct_PG).any(dim=-1), rewards_PG)


# --- advantage transforms: (rewards_PG, *, eps) -> advantages_PG ---------------------------------


def ones(rewards_PG: Tensor, *, eps: float = 1e-6) -> Tensor:
    """1."""
    return torch.ones_like(rewards_PG)


def reward(rewards_PG: Tensor, *, eps: float = 1e-6) -> Tensor:
    """r."""
    return rewards_PG.clone()


def reward_minus_mean(rewards_PG: Tensor, *, eps: float = 1e-6) -> Tensor:
    """r − mean_j r."""
    return rewards_PG - rewards_PG.mean(dim=-1, keepdim=True)


def reward_over_std(rewards_PG: Tensor, *, eps: float = 1e-6) -> Tensor:
    """r / (std_j r + eps)."""
    return rewards_PG / (group_std(rewards_PG) + eps)


def mean_std_normalised(rewards_PG: Tensor, *, eps: float = 1e-6) -> Tensor:
    """(r − mean_j r) / (std_j r + eps)."""
    # PAPER.md, GRPO row: (r_ij − mean_j r_i·) / (std_j r_i· + 1e-6); 0 when all rewards are equal.
    return reward_minus_mean(rewards_PG) / (group_std(rewards_PG) + eps)


# --- the table -----------------------------------------------------------------------------------


class GroupRule(NamedTuple):
    """Which responses an algorithm keeps, and how their rewards become advantages."""

    keep: KeepFn
    advantage: AdvantageFn


GROUP_RULES: dict[str, GroupRule] = {
    "raft": GroupRule(keep_best_if_correct, ones),  # advantage unused by SFT; 1 on kept
    "raft++": GroupRule(keep_best_if_correct, ones),
    "raft++_no_clip": GroupRule(keep_best_if_correct, ones),
    "reinforce": GroupRule(keep_all, reward),
    "reinforce_rej": GroupRule(keep_not_all_equal, reward),
    "reinforce_rej_std": GroupRule(keep_not_all_equal, reward_over_std),
    "reinforce_drop_all_wrong": GroupRule(keep_not_all_wrong, reward),
    "reinforce_drop_all_correct": GroupRule(keep_not_all_correct, reward),
    "reinforce_mean": GroupRule(keep_all, reward_minus_mean),
    "reinforce_band": GroupRule(keep_correct_fraction_in_band, reward),
    "grpo": GroupRule(keep_all, mean_std_normalised),
    "ppo": GroupRule(keep_all, reward),  # the trainer turns r into GAE with the critic
    "iterative_dpo": GroupRule(keep_correct_and_wrong, reward),  # DPO uses pairs, not advantages
}


def group_advantages(
    name: str,
    rewards_PG: Tensor,
    *,
    correct_reward: float = 1.0,
    wrong_reward: float = -1.0,
    eps: float = 1e-6,
    lo: float | None = None,
    hi: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Apply group rule `name` to outcome rewards (P, G); returns (advantages_PG, keep_PG).

    `keep_PG` is bool; a filtered-out response has advantage 0. `lo`/`hi` are read only by
    `reinforce_band`, `eps` only by the std-normalised rules. An unknown `name` raises
    `UnknownNameError` (a ValueError) listing the valid names.
    """
    rule = lookup(GROUP_RULES, name, "group advantage")
    rewards_PG = torch.as_tensor(rewards_PG)
    if rewards_PG.ndim != 2:
        raise ValueError(f"rewards_PG must be (P, G), got shape {tuple(rewards_PG.shape)}")
    if not rewards_PG.is_floating_point():
        rewards_PG = rewards_PG.float()
    if not correct_reward > wrong_reward:
        raise ValueError(f"need correct_reward > wrong_reward: {correct_reward}, {wrong_reward}")
    keep_PG = rule.keep(
        rewards_PG, correct_reward=correct_reward, wrong_reward=wrong_reward, lo=lo, hi=hi
    )
    advantages_PG = torch.where(keep_PG, rule.advantage(rewards_PG, eps=eps), 0.0)
    return advantages_PG, keep_PG


def group_outcome_stats(
    rewards_PG: Tensor, *, correct_reward: float = 1.0, wrong_reward: float = -1.0
) -> dict[str, float]:
    """Fractions of prompts all correct, all wrong, or mixed (a training curve in PAPER.md)."""
    num_prompts = rewards_PG.shape[0]
    if num_prompts == 0:
        return {"frac_all_correct": 0.0, "frac_all_wrong": 0.0, "frac_mixed": 0.0}
    frac_correct = (rewards_PG >= correct_reward).all(dim=-1).sum().item() / num_prompts
    frac_wrong = (rewards_PG <= wrong_reward).all(dim=-1).sum().item() / num_prompts
    return {
        "frac_all_correct": frac_correct,
        "frac_all_wrong": frac_wrong,
        "frac_mixed": 1.0 - frac_correct - frac_wrong,
    }


def broadcast_to_tokens(values_B: Tensor, mask_BT: Tensor) -> Tensor:
    """Give each valid token of response b the value values_B[b] (PAPER.md: "for every token")."""
    return torch.where(mask_BT.bool(), values_B.unsqueeze(-1), 0.0).to(values_B.dtype)
