"""Iterative DPO: preference pairs from verifier rewards, and the DPO loss (PAPER.md)."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import Tensor


def dpo_loss(
    policy_chosen_B: Tensor,
    policy_rejected_B: Tensor,
    ref_chosen_B: Tensor,
    ref_rejected_B: Tensor,
    beta: float = 0.1,
    *,
    num_pairs: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """L = −log σ(β·[(log π_θ(a⁺) − log π_ref(a⁺)) − (log π_θ(a⁻) − log π_ref(a⁻))]), pair mean.

    Inputs are sequence log-probs summed over response tokens, one entry per pair. `num_pairs`
    replaces the local pair count as divisor (gradient accumulation over minibatches). Metrics:
    `chosen_reward` / `rejected_reward` (means of β·(log π_θ − log π_ref)), `reward_margin` (mean of
    their difference), `accuracy` (fraction of pairs with a positive margin).
    """
    if num_pairs is not None and not num_pairs > 0:
        raise ValueError(f"num_pairs must be > 0, got {num_pairs}")
    chosen_reward_B = beta * (policy_chosen_B - ref_chosen_B)
    rejected_reward_B = beta * (policy_rejected_B - ref_rejected_B)
    margin_B = chosen_reward_B - rejected_reward_B
    count = max(margin_B.numel(), 1)
    loss = -F.logsigmoid(margin_B).sum() / (num_pairs if num_pairs is not None else count)
    metrics = {
        "chosen_reward": chosen_reward_B.detach().sum() / count,
        "rejected_reward": rejected_reward_B.detach().sum() / count,
        "reward_margin": margin_B.detach().sum() / count,
        "accuracy": (margin_B.detach() > 0).float().sum() / count,
    }
    return loss, metrics


def _pick(candidates: list[int], rng: torch.Generator | random.Random) -> int:
    if isinstance(rng, random.Random):
        return rng.choice(candidates)
    if isinstance(rng, torch.Generator):
        return candidates[int(torch.randint(len(candidates), (1,), generator=rng).item())]
    raise TypeError(f"rng must be a torch.Generator or a random.Random, not {type(rng).__name__}")


def make_preference_pairs(
    correct_PG: Tensor, rng: torch.Generator | random.Random
) -> list[tuple[int, int, int]]:
    """One (prompt, chosen, rejected) index triple per prompt with a correct and a wrong response.

    `correct_PG` holds the reward function's verdicts (the rule of the `iterative_dpo` filter).
    The chosen response is drawn uniformly among the prompt's correct ones and the rejected among
    its wrong ones, with `rng`: a seeded generator gives the same pairs.
    """
    if correct_PG.ndim != 2:
        raise ValueError(f"correct_PG must be (P, G), got shape {tuple(correct_PG.shape)}")
    pairs = []
    for prompt, correct_G in enumerate(correct_PG.bool().tolist()):
        correct = [j for j, ok in enumerate(correct_G) if ok]
        wrong = [j for j, ok in enumerate(correct_G) if not ok]
        if correct and wrong:
            pairs.append((prompt, _pick(correct, rng), _pick(wrong, rng)))
    return pairs


def pair_indices(pairs: list[tuple[int, int, int]], group_size: int) -> tuple[Tensor, Tensor]:
    """Rows (K,), (K,) of the chosen and the rejected responses in the flattened (P·G) batch."""
    chosen_K = torch.tensor([p * group_size + i for p, i, _ in pairs], dtype=torch.long)
    rejected_K = torch.tensor([p * group_size + j for p, _, j in pairs], dtype=torch.long)
    return chosen_K, rejected_K


def dpo_policy_loss(
    logp_BT: Tensor,
    old_logp_BT: Tensor,
    mask_BT: Tensor,
    *,
    dpo_beta: float = 0.1,
    num_seqs: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """DPO −log σ(β·margin).

    On token rows laid out as K chosen rows then their K rejected rows (k pairs with K + k);
    `old_logp_BT` holds the reference's log-probs: π_old, the policy at the start of the iteration
    (PAPER.md's default), or the initial model (`dpo_reference`). Sums the valid per-token log-probs
    into sequence log-probs, then `dpo_loss`. `num_seqs` counts the rows of the whole batch (2 per
    pair), so the global pair count is num_seqs / 2.
    """
    num_rows = logp_BT.shape[0]
    if num_rows % 2:
        raise ValueError(f"a DPO batch is chosen rows then rejected rows, got {num_rows} rows")
    valid_BT = mask_BT.bool()
    seq_logp_B = torch.where(valid_BT, logp_BT, 0.0).sum(dim=-1)
    ref_seq_logp_B = torch.where(valid_BT, old_logp_BT, 0.0).sum(dim=-1)
    k = num_rows // 2
    return dpo_loss(
        seq_logp_B[:k],
        seq_logp_B[k:],
        ref_seq_logp_B[:k],
        ref_seq_logp_B[k:],
        dpo_beta,
        num_pairs=None if num_seqs is None else num_seqs / 2,
    )
