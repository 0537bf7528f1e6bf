"""Rollout correction: the sampler is not π_old, and the update can say so.

PAPER.md's loop treats the responses as samples of π_old, the policy the update starts from. A
sampler that runs the same weights another way (a bfloat16 cast here, vLLM's kernels on a GPU)
draws from a slightly different π_sampler, so the update is off-policy by the gap between the two
(Yao et al., "Your efficient RL framework secretly brings you off-policy RL training", 2025; verl's
"rollout correction"). With the sampler's own log-probs of its tokens beside π_old's, per token

    r_t = π_old(y_t) / π_sampler(y_t)

and the corrections (`ROLLOUT_CORRECTIONS`):
- `tis`: truncated importance sampling, each token's policy loss weighted by sg(min(r_t, C));
- `token_mask`: tokens with r_t outside [C_min, C_max] leave the update;
- `seq_mask`: responses whose ratio ∏_t r_t (the sequence's likelihood ratio) is outside
  [C_min, C_max] leave the update, all their tokens with them.

A masked token leaves the loss's denominators too (verl's rejection sampling: it never was a
sample). Log-ratios are clamped to ±20 before exp, as the losses' (`losses.MAX_LOG_RATIO`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from minimalrl.algorithms.losses import MAX_LOG_RATIO, masked_mean

ROLLOUT_CORRECTIONS = ("none", "tis", "token_mask", "seq_mask")
"""The `rollout_correction` settings ("none": measure the mismatch, change nothing)."""
TOKEN_LEVEL = ("tis", "token_mask")
"""Corrections that treat each token on its own (refused with GSPO's one ratio per response)."""
MASKS = ("token_mask", "seq_mask")
"""Corrections that drop tokens, so the update's token and sequence counts depend on π_old."""


def _log_ratio(old_logp_BT: Tensor, sampler_logp_BT: Tensor, mask_BT: Tensor) -> Tensor:
    """log r_t = log π_old − log π_sampler on valid tokens (0 on pads), clamped, detached."""
    log_ratio_BT = (old_logp_BT - sampler_logp_BT).detach().clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    return torch.where(mask_BT.bool(), log_ratio_BT, 0.0)


def _fraction(flag_BT: Tensor, mask_BT: Tensor) -> Tensor:
    valid_BT = mask_BT.bool()
    return (flag_BT & valid_BT).sum() / valid_BT.sum().clamp(min=1)


def truncated_is_weights(
    old_logp_BT: Tensor, sampler_logp_BT: Tensor, mask_BT: Tensor, cap: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-token weights sg(min(π_old/π_sampler, C)) (0 on pads), and their metrics.

    Metrics: `tis_weight_mean` (over valid tokens) and `tis_capped` (fraction of valid tokens
    whose ratio exceeded C and was cut to it)."""
    if not cap > 0:
        raise ValueError(f"the cap C must be > 0, got {cap}")
    ratio_BT = _log_ratio(old_logp_BT, sampler_logp_BT, mask_BT).exp()
    weights_BT = torch.where(mask_BT.bool(), ratio_BT.clamp(max=cap), 0.0)
    metrics = {
        "tis_weight_mean": masked_mean(weights_BT, mask_BT),
        "tis_capped": _fraction(ratio_BT > cap, mask_BT),
    }
    return weights_BT, metrics


def rejection_mask(
    old_logp_BT: Tensor,
    sampler_logp_BT: Tensor,
    mask_BT: Tensor,
    level: str,
    low: float,
    high: float,
) -> Tensor:
    """The tokens an update keeps (bool, like `mask_BT`): `level` "token" keeps the valid tokens
    with π_old/π_sampler in [low, high]; "sequence" keeps every valid token of the responses
    whose ratio ∏_t π_old/π_sampler (over their valid tokens) is in [low, high], none of the
    others. A response's verdict reads only its own row."""
    if not 0 <= low < high:
        raise ValueError(f"need 0 <= low < high, got {low}, {high}")
    log_ratio_BT = _log_ratio(old_logp_BT, sampler_logp_BT, mask_BT)
    log_low, log_high = math.log(low) if low > 0 else -math.inf, math.log(high)
    if level == "token":
        inside_BT = (log_ratio_BT >= log_low) & (log_ratio_BT <= log_high)
    elif level == "sequence":
        seq_B1 = log_ratio_BT.sum(dim=-1, keepdim=True).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
        inside_BT = ((seq_B1 >= log_low) & (seq_B1 <= log_high)).expand_as(log_ratio_BT)
    else:
        raise ValueError(f"level must be 'token' or 'sequence', got {level!r}")
    return inside_BT & mask_BT.bool()


def mismatch_metrics(
    old_logp_BT: Tensor, sampler_logp_BT: Tensor, mask_BT: Tensor
) -> dict[str, Tensor]:
    """How far the sampler is from π_old on the sampled tokens, r_t = π_old/π_sampler:

    - `mismatch_abs_log_ratio`: mean |log r_t| over valid tokens (0: the two agree);
    - `mismatch_ratio_max`, `mismatch_ratio_min`: the extreme r_t (1 and 1 when they agree);
    - `mismatch_kl`: k3 estimate of KL(π_sampler‖π_old), mean of r − 1 − log r (the tokens are
      π_sampler's samples), >= 0 per token.
    In float64, k3 as expm1(log r) − log r: a bf16 sampler's r − 1 is ~1e-3, its k3 ~1e-7, which
    float32's r − 1 − log r would round away. An empty batch gives 0, 1, 1, 0."""
    log_ratio_BT = _log_ratio(old_logp_BT, sampler_logp_BT, mask_BT).double()
    ratio_BT = log_ratio_BT.exp()
    valid_N = ratio_BT[mask_BT.bool()]
    if valid_N.numel() == 0:
        valid_N = ratio_BT.new_ones(1)
    return {
        "mismatch_abs_log_ratio": masked_mean(log_ratio_BT.abs(), mask_BT),
        "mismatch_ratio_max": valid_N.max(),
        "mismatch_ratio_min": valid_N.min(),
        "mismatch_kl": masked_mean(torch.expm1(log_ratio_BT) - log_ratio_BT, mask_BT),
    }
