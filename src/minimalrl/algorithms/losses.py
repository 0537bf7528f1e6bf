"""Token-level policy losses and the one aggregation they share (PAPER.md, "Setting").

Every loss returns `(loss, metrics)`: a 0-d tensor to minimise and a dict of detached 0-d tensors
for logging. Masks are bool or 0/1 tensors shaped like the values; masked-out positions never reach
the loss, not even as NaN.

Gradient accumulation and data parallelism: the default token mean divides by the token count *of
the tensors it is given*, so averaging minibatch losses is not the full-batch loss. Pass
`num_tokens` (or `num_seqs` for the sequence-mean modes) = the count over the *whole* batch; then
the sum of the minibatch (or per-rank) losses is exactly the full-batch loss, and so are the
gradients. Every loss forwards both normalisers to `aggregate`.

Rollout correction (`rollout_correction`): the token-level ratio losses (clipped, no-clip IS,
CISPO) take `token_weights_BT`, detached per-token weights that `aggregate` multiplies each token's
value by (truncated importance sampling's min(π_old/π_sampler, C)); None, the default, is 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from minimalrl.algorithms._lookup import call_with, lookup

# Log-ratios are clamped to ±20 before exp (as in verl), so a wild padded or stale token cannot
# overflow to inf and turn the masked-out gradient into NaN; exp(20) ≈ 5e8, far outside any band.
MAX_LOG_RATIO = 20.0


def _token_mean(values_BT: Tensor, mask_BT: Tensor, num_tokens: float | None) -> Tensor:
    count = num_tokens if num_tokens is not None else mask_BT.sum().clamp(min=1)
    return values_BT.sum() / count


def _sequences(tokens_B: Tensor, num_seqs: float | None) -> Tensor | float:
    # Sequences without a valid token (e.g. filtered-out rows left in the batch) do not count.
    return num_seqs if num_seqs is not None else (tokens_B > 0).sum().clamp(min=1)


def _seq_mean_token_mean(values_BT: Tensor, mask_BT: Tensor, num_seqs: float | None) -> Tensor:
    tokens_B = mask_BT.sum(dim=-1)
    return (values_BT.sum(dim=-1) / tokens_B.clamp(min=1)).sum() / _sequences(tokens_B, num_seqs)


def _seq_mean_token_sum(values_BT: Tensor, mask_BT: Tensor, num_seqs: float | None) -> Tensor:
    return values_BT.sum(dim=-1).sum() / _sequences(mask_BT.sum(dim=-1), num_seqs)


def _seq_mean_token_sum_norm(
    values_BT: Tensor, mask_BT: Tensor, num_seqs: float | None, max_len: int | None
) -> Tensor:
    # Dr. GRPO (arXiv 2503.20783): a constant L instead of each response's own length, so a long
    # wrong answer is not penalised less per token than a short one.
    if max_len is None or not max_len > 0:
        raise ValueError(f"seq_mean_token_sum_norm needs max_len > 0 (L), got {max_len}")
    sequences = _sequences(mask_BT.sum(dim=-1), num_seqs)
    return values_BT.sum() / (sequences * max_len)


AGGREGATIONS = {
    "token_mean": _token_mean,
    "seq_mean_token_mean": _seq_mean_token_mean,
    "seq_mean_token_sum": _seq_mean_token_sum,
    "seq_mean_token_sum_norm": _seq_mean_token_sum_norm,
}


def aggregate(
    values_BT: Tensor,
    mask_BT: Tensor,
    mode: str = "token_mean",
    *,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
    max_len: int | None = None,
    token_weights_BT: Tensor | None = None,
) -> Tensor:
    """Reduce per-token values over the valid tokens to a 0-d tensor: the reduction of every loss.

    - `token_mean`: Σ valid values / (num_tokens or the number of valid tokens); PAPER.md's default.
    - `seq_mean_token_mean`: Σ per-sequence token means / (num_seqs or the non-empty sequences).
    - `seq_mean_token_sum`: Σ per-sequence token sums / (num_seqs or the non-empty sequences).
    - `seq_mean_token_sum_norm`: Σ valid values / ((num_seqs or the non-empty sequences) · max_len),
      Dr. GRPO's constant normaliser (L = `max_len`, a trainer passes `max_new_tokens`).
    Each mode reads only the counts it needs, so a trainer may always pass all three; given for
    the *whole* batch, the sum of the per-part results is the whole batch's result. An unknown
    `mode` raises `UnknownNameError` (a ValueError).

    `token_weights_BT` (None: all 1): each value is multiplied by its detached weight before the
    reduction, the counts unchanged (the rollout correction's truncated importance weights).
    """
    reduce = lookup(AGGREGATIONS, mode, "aggregation mode")
    for name, count in (("num_tokens", num_tokens), ("num_seqs", num_seqs)):
        if count is not None and not count > 0:
            raise ValueError(f"{name} must be > 0, got {count}")
    if values_BT.shape != mask_BT.shape:
        raise ValueError(f"values {tuple(values_BT.shape)} and mask {tuple(mask_BT.shape)} differ")
    if token_weights_BT is not None:
        if token_weights_BT.shape != values_BT.shape:
            shapes = (tuple(token_weights_BT.shape), tuple(values_BT.shape))
            raise ValueError(f"weights {shapes[0]} and values {shapes[1]} differ")
        values_BT = values_BT * token_weights_BT.detach()
    valid_BT = mask_BT.bool()
    masked_BT = torch.where(valid_BT, values_BT, 0.0)  # where, not *: NaN/inf on pads cannot leak
    counts = {"num_tokens": num_tokens, "num_seqs": num_seqs, "max_len": max_len}
    return call_with(reduce, values_BT=masked_BT, mask_BT=valid_BT.to(masked_BT.dtype), **counts)


def _counts(
    num_tokens: float | None,
    num_seqs: float | None,
    max_len: int | None,
    token_weights_BT: Tensor | None = None,
) -> dict:
    """A loss's normalisers (and token weights, where it takes them), handed on to `aggregate`."""
    return {
        "num_tokens": num_tokens, "num_seqs": num_seqs, "max_len": max_len,
        "token_weights_BT": token_weights_BT,
    }  # fmt: skip


def masked_mean(values_BT: Tensor, mask_BT: Tensor) -> Tensor:
    """Detached mean over the valid tokens (0 when there are none), for metrics."""
    return aggregate(values_BT.detach(), mask_BT, "token_mean")


def _log_ratio(logp_BT: Tensor, old_logp_BT: Tensor) -> Tensor:
    return (logp_BT - old_logp_BT).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)


def _masked_max(positive_BT: Tensor, mask_BT: Tensor) -> Tensor:
    """Max of positive values over valid tokens; 0 when there are none (even for an empty batch)."""
    padded = torch.cat(
        [torch.where(mask_BT.bool(), positive_BT, 0.0).flatten(), positive_BT.new_zeros(1)]
    )
    return padded.max()


def ratio_metrics(log_ratio_BT: Tensor, mask_BT: Tensor) -> dict[str, Tensor]:
    """Ratio diagnostics on valid tokens: approx_kl (k3 of KL(π_old‖π_θ)), ratio_mean, ratio_max."""
    log_ratio_BT = log_ratio_BT.detach()
    ratio_BT = log_ratio_BT.exp()
    return {
        # k3 with samples from π_old: E[s − 1 − log s] = KL(π_old‖π_θ), >= 0 per token.
        "approx_kl": masked_mean(ratio_BT - 1 - log_ratio_BT, mask_BT),
        "ratio_mean": masked_mean(ratio_BT, mask_BT),
        "ratio_max": _masked_max(ratio_BT, mask_BT),
    }


def _check_clip(clip_low: float, clip_high: float, dual_clip: float | None) -> None:
    if not (0.0 <= clip_low <= 1.0 and clip_high >= 0.0):  # clip_low 1: no lower bound
        raise ValueError(f"need 0 <= clip_low <= 1 and clip_high >= 0, got {clip_low}, {clip_high}")
    if dual_clip is not None and not dual_clip > 1.0:
        raise ValueError(f"dual_clip must be > 1 (the released code uses 3), got {dual_clip}")


def _fraction(flag_BT: Tensor, where_BT: Tensor) -> Tensor:
    """Fraction of the positions in `where_BT` at which `flag_BT` holds (0 if there are none)."""
    return (flag_BT & where_BT).sum() / where_BT.sum().clamp(min=1)


def clipped_policy_loss(
    logp_BT: Tensor,
    old_logp_BT: Tensor,
    advantages_BT: Tensor,
    mask_BT: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    agg: str = "token_mean",
    num_tokens: float | None = None,
    num_seqs: float | None = None,
    max_len: int | None = None,
    token_weights_BT: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """−agg(min(s·A, clip(s)·A)).

    PAPER.md's clipped surrogate: −agg(ℓ_t), ℓ_t = min(s_t·A, clip(s_t, 1−ε_low, 1+ε_high)·A). Dual
    clip (released code, c = 3): for A < 0, ℓ_t = max(ℓ_t, c·A). Metrics: `clip_fraction` (valid
    tokens where the clipped branch binds, clip(s)·A < s·A, so the gradient is zero),
    `clip_fraction_pos` / `clip_fraction_neg` (the same among valid tokens with A > 0 / A < 0),
    `clip_fraction_dual` (valid tokens where c·A binds), and `ratio_metrics`.
    """
    _check_clip(clip_low, clip_high, dual_clip)
    log_ratio_BT = _log_ratio(logp_BT, old_logp_BT)
    ratio_BT = log_ratio_BT.exp()  # s_t
    unclipped_BT = ratio_BT * advantages_BT
    clipped_BT = ratio_BT.clamp(1.0 - clip_low, 1.0 + clip_high) * advantages_BT
    surrogate_BT = torch.minimum(unclipped_BT, clipped_BT)  # ℓ_t
    dual_binds_BT = torch.zeros_like(mask_BT, dtype=torch.bool)
    if dual_clip is not None:
        floor_BT = dual_clip * advantages_BT  # c·A: a floor on ℓ_t when A < 0
        dual_binds_BT = (advantages_BT < 0) & (floor_BT > surrogate_BT)
        surrogate_BT = torch.where(dual_binds_BT, floor_BT, surrogate_BT)
    counts = _counts(num_tokens, num_seqs, max_len, token_weights_BT)
    loss = -aggregate(surrogate_BT, mask_BT, agg, **counts)

    valid_BT = mask_BT.bool()
    binds_BT = (clipped_BT < unclipped_BT).detach()
    metrics = {
        "clip_fraction": _fraction(binds_BT, valid_BT),
        "clip_fraction_pos": _fraction(binds_BT, valid_BT & (advantages_BT > 0)),
        "clip_fraction_neg": _fraction(binds_BT, valid_BT & (advantages_BT < 0)),
        "clip_fraction_dual": _fraction(dual_binds_BT.detach(), valid_BT),
        **ratio_metrics(log_ratio_BT, mask_BT),
    }
    return loss, metrics


def is_policy_loss(
    logp_BT: Tensor,
    old_logp_BT: Tensor,
    advantages_BT: Tensor,
    mask_BT: Tensor,
    *,
    agg: str = "token_mean",
    num_tokens: float | None = None,
    num_seqs: float | None = None,
    max_len: int | None = None,
    token_weights_BT: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """−agg(s·A), no clipping.

    Importance sampling without clipping, the `raft++_no_clip` ablation. PAPER.md: it is worse than
    plain RAFT; clipping is what makes RAFT++ work.
    """
    log_ratio_BT = _log_ratio(logp_BT, old_logp_BT)
    surrogate_BT = log_ratio_BT.exp() * advantages_BT
    counts = _counts(num_tokens, num_seqs, max_len, token_weights_BT)
    loss = -aggregate(surrogate_BT, mask_BT, agg, **counts)
    return loss, ratio_metrics(log_ratio_BT, mask_BT)


def sft_loss(
    logp_BT: Tensor,
    mask_BT: Tensor,
    agg: str = "token_mean",
    *,
    advantages_BT: Tensor | None = None,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
    max_len: int | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """NLL −agg(A·log π) (SFT).

    −agg(A_t·log π_θ(a_t)): RAFT's plain SFT on the kept responses. RAFT's advantage is 1 on every
    kept response, so this is the plain NLL; a response filtered out but left in the batch
    (`filtered = zero`) has A = 0: no gradient, its tokens still in the normaliser, as with every
    other algorithm's zeroed responses. `advantages_BT` None: all 1. Metrics: `nll`."""
    weighted_BT = logp_BT if advantages_BT is None else advantages_BT.detach() * logp_BT
    loss = -aggregate(weighted_BT, mask_BT, agg, **_counts(num_tokens, num_seqs, max_len))
    return loss, {"nll": loss.detach()}


def cispo_loss(
    logp_BT: Tensor,
    old_logp_BT: Tensor,
    advantages_BT: Tensor,
    mask_BT: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    agg: str = "token_mean",
    num_tokens: float | None = None,
    num_seqs: float | None = None,
    max_len: int | None = None,
    token_weights_BT: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """−agg(sg(clip(s))·A·log π).

    CISPO (MiniMax-M1, arXiv 2506.13585, eq. 4): the importance weight s = π_θ/π_old, clipped to
    [1−ε_low, 1+ε_high] and detached, multiplies A·log π_θ; every token keeps its gradient
    clip(s)·A·∇log π_θ, where the clipped surrogate gives a token outside the band none.
    Metrics: `clip_fraction` (valid tokens whose weight was clipped) and `ratio_metrics`.
    """
    _check_clip(clip_low, clip_high, None)
    log_ratio_BT = _log_ratio(logp_BT, old_logp_BT)
    ratio_BT = log_ratio_BT.detach().exp()
    weight_BT = ratio_BT.clamp(1.0 - clip_low, 1.0 + clip_high)  # sg(clip(s))
    surrogate_BT = weight_BT * advantages_BT * logp_BT
    counts = _counts(num_tokens, num_seqs, max_len, token_weights_BT)
    loss = -aggregate(surrogate_BT, mask_BT, agg, **counts)
    clipped_BT = weight_BT != ratio_BT
    metrics = {
        "clip_fraction": _fraction(clipped_BT, mask_BT.bool()),
        **ratio_metrics(log_ratio_BT, mask_BT),
    }
    return loss, metrics


def gspo_loss(
    logp_BT: Tensor,
    old_logp_BT: Tensor,
    advantages_BT: Tensor,
    mask_BT: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    agg: str = "seq_mean_token_mean",
    num_tokens: float | None = None,
    num_seqs: float | None = None,
    max_len: int | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """−agg(min(s_i·A, clip(s_i)·A)), s_i per response.

    GSPO (arXiv 2507.18071): s_i = exp(mean over response i's valid tokens of log π_θ − log π_old),
    clipped to [1−ε_low, 1+ε_high] (the paper: 3e-4, 4e-4). Written per token as GSPO-token
    (its eq. 13): s_i,t = sg(s_i)·π_θ(y_t)/sg(π_θ(y_t)) has the value s_i at every token and the
    gradient s_i·∇log π_θ(y_t); under `seq_mean_token_mean` (the paper's sequence mean, the
    `gspo` variant's setting) the loss and its gradient are exactly the sequence-level ones.
    Metrics: `clip_fraction` (valid tokens of responses whose ratio was clipped), `ratio_metrics`
    of s_i.
    """
    _check_clip(clip_low, clip_high, None)
    valid_BT = mask_BT.bool()
    token_log_ratio_BT = torch.where(valid_BT, logp_BT - old_logp_BT, 0.0)
    tokens_B1 = valid_BT.sum(dim=-1, keepdim=True).clamp(min=1)
    seq_log_ratio_B1 = (token_log_ratio_BT.sum(dim=-1, keepdim=True) / tokens_B1).clamp(
        -MAX_LOG_RATIO, MAX_LOG_RATIO
    )
    log_ratio_BT = seq_log_ratio_B1.detach() + logp_BT - logp_BT.detach()  # value log s_i
    ratio_BT = log_ratio_BT.exp()
    unclipped_BT = ratio_BT * advantages_BT
    clipped_BT = ratio_BT.clamp(1.0 - clip_low, 1.0 + clip_high) * advantages_BT
    surrogate_BT = torch.minimum(unclipped_BT, clipped_BT)
    loss = -aggregate(surrogate_BT, mask_BT, agg, **_counts(num_tokens, num_seqs, max_len))
    metrics = {
        "clip_fraction": _fraction((clipped_BT < unclipped_BT).detach(), valid_BT),
        **ratio_metrics(log_ratio_BT, mask_BT),
    }
    return loss, metrics
