"""PPO's critic-side math: last-token rewards, GAE, whitening, clipped value loss (PAPER.md, "PPO").

Responses are rows of (B, T) tensors whose valid tokens form one contiguous block (right or left
padding). A masked position ends the episode, so the value after the last valid token is 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from minimalrl.algorithms.losses import aggregate, masked_mean


def place_on_last_token(rewards_B: Tensor, mask_BT: Tensor) -> Tensor:
    """Per-token rewards (B, T): each outcome reward on its response's last valid token, else 0.

    Add −β·KL_t to the result for PAPER.md's optional per-token KL penalty. Empty rows get 0.
    """
    valid_BT = mask_BT.bool()
    positions_BT = torch.arange(mask_BT.shape[-1], device=mask_BT.device).expand_as(valid_BT)
    last_B = torch.where(valid_BT, positions_BT, -1).max(dim=-1).values  # -1 for an empty row
    is_last_BT = positions_BT == last_B.unsqueeze(-1)
    return torch.where(is_last_BT, rewards_B.unsqueeze(-1), 0.0).to(rewards_B.dtype)


@torch.no_grad()
def gae(
    rewards_BT: Tensor,
    values_BT: Tensor,
    mask_BT: Tensor,
    gamma: float = 1.0,
    lam: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation: detached (advantages_BT, returns_BT), 0 where masked.

    δ_t = r_t + γ·V_{t+1} − V_t and A_t = δ_t + γλ·A_{t+1}, with V and A = 0 past the last valid
    token; returns R_t = A_t + V_t. PAPER.md uses γ = λ = 1, so A_t = Σ_{k>=t} r_k − V_t.
    """
    valid_BT = mask_BT.bool()
    rewards_BT = torch.where(valid_BT, rewards_BT, 0.0)
    values_BT = torch.where(valid_BT, values_BT.detach(), 0.0)
    advantages_BT = torch.zeros_like(values_BT)
    next_value_B = values_BT.new_zeros(values_BT.shape[0])
    next_advantage_B = values_BT.new_zeros(values_BT.shape[0])
    for t in reversed(range(values_BT.shape[1])):
        delta_B = rewards_BT[:, t] + gamma * next_value_B - values_BT[:, t]
        advantage_B = delta_B + gamma * lam * next_advantage_B
        advantage_B = torch.where(valid_BT[:, t], advantage_B, 0.0)
        advantages_BT[:, t] = advantage_B
        next_value_B, next_advantage_B = values_BT[:, t], advantage_B  # both 0 where masked
    return advantages_BT, advantages_BT + values_BT


def whiten(
    values_BT: Tensor,
    mask_BT: Tensor,
    shift_mean: bool = True,
    eps: float = 1e-8,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """(x − mean) / sqrt(var + eps) over the valid tokens of the whole batch; 0 where masked.

    The variance is unbiased (n/(n−1), as verl's masked_whiten), taken as 0 below 2 valid tokens.
    `shift_mean=False` adds the mean back (rescale only). `reduce` sums a tensor over the parts
    of a batch split across processes (data parallelism), so the statistics are the whole
    batch's; None = this tensor is the whole batch.
    """
    reduce = reduce or (lambda t: t)
    valid_BT = mask_BT.bool()
    count_total = reduce(
        torch.stack([valid_BT.sum().double(), (values_BT * mask_BT).sum().double()])
    )
    count = count_total[0]
    mean = (count_total[1] / count.clamp(min=1)).to(values_BT.dtype)
    squares = reduce(torch.where(valid_BT, (values_BT - mean).square(), 0.0).sum().double())
    squares = squares.to(values_BT.dtype)
    var = torch.where(count > 1, squares / (count - 1).clamp(min=1), 0.0)
    whitened_BT = (values_BT - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        whitened_BT = whitened_BT + mean
    return torch.where(valid_BT, whitened_BT, 0.0)


def clipped_value_loss(
    values_BT: Tensor,
    old_values_BT: Tensor,
    returns_BT: Tensor,
    mask_BT: Tensor,
    *,
    clip_eps: float = 0.2,
    agg: str = "token_mean",
    num_tokens: float | None = None,
    num_seqs: float | None = None,
    max_len: int | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """agg(½·max((V−R)², (clip(V, V_old ± ε_v) − R)²)) (PAPER.md, PPO value loss).

    Metrics: `value_clip_fraction` (valid tokens where the clipped error is the larger),
    `value_mean`, `return_mean`, `value_mse` (unclipped).
    """
    if not clip_eps >= 0:
        raise ValueError(f"clip_eps must be >= 0, got {clip_eps}")
    clipped_BT = old_values_BT + (values_BT - old_values_BT).clamp(-clip_eps, clip_eps)
    error_BT = (values_BT - returns_BT).square()
    clipped_error_BT = (clipped_BT - returns_BT).square()
    worst_BT = torch.maximum(error_BT, clipped_error_BT)
    counts = {"num_tokens": num_tokens, "num_seqs": num_seqs, "max_len": max_len}
    loss = 0.5 * aggregate(worst_BT, mask_BT, agg, **counts)
    metrics = {
        "value_clip_fraction": masked_mean((clipped_error_BT > error_BT).float(), mask_BT),
        "value_mean": masked_mean(values_BT, mask_BT),
        "return_mean": masked_mean(returns_BT, mask_BT),
        "value_mse": masked_mean(error_BT, mask_BT),
    }
    return loss, metrics
