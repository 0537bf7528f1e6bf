"""KL-to-reference estimators and token entropy (PAPER.md, "KL and entropy terms").

Both terms are optional and off in the paper's minimal setting. The trainer adds β·agg(KL_t) and
−c_ent·agg(H_t) with `aggregate`, and logs both as training curves.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from minimalrl.algorithms._lookup import lookup
from minimalrl.algorithms.losses import MAX_LOG_RATIO


def _k1(q_BT: Tensor) -> Tensor:
    return -q_BT  # log π_θ − log π_ref: unbiased for KL(π_θ‖π_ref), negative on some tokens


def _k2(q_BT: Tensor) -> Tensor:
    return 0.5 * q_BT.square()


def _k3(q_BT: Tensor) -> Tensor:
    # q is clamped before exp, as the losses' log-ratios are: no overflow to inf (NaN gradients)
    q_BT = q_BT.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    return torch.expm1(q_BT) - q_BT  # exp(q) − q − 1 ("low-var KL"), >= 0; expm1 exact near 0


KL_ESTIMATORS = {"k1": _k1, "k2": _k2, "k3": _k3}


def kl_penalty(logp_BT: Tensor, ref_logp_BT: Tensor, kind: str = "k3") -> Tensor:
    """Per-token estimate of KL(π_θ‖π_ref) on tokens sampled from π_θ; q_t = log π_ref − log π_θ.

    - `k3` = exp(q) − q − 1 (PAPER.md's "low-var KL", used in the loss): unbiased and >= 0.
    - `k2` = ½q²: >= 0, biased, low variance.
    - `k1` = log π_θ − log π_ref = −q: unbiased, negative on some tokens. PAPER.md writes "k1 (q)";
      we keep the standard sign so that k1 estimates +KL, like k2 and k3 (E[−q] = KL(π_θ‖π_ref)).
    An unknown `kind` raises `UnknownNameError` (a ValueError) listing the estimators.
    """
    estimator = lookup(KL_ESTIMATORS, kind, "KL estimator")
    return estimator(ref_logp_BT - logp_BT)


def entropy_from_logits(logits_BTV: Tensor, chunk_rows: int | None = 1024) -> Tensor:
    """Entropy H = logsumexp(z) − Σ softmax(z)·z of logits (..., T, V), as float32 (..., T).

    Memory: the logits are processed in slices along T of about `chunk_rows` rows (a row is one
    position, V wide). Each slice is upcast to float32 and its softmax formed there, so the extra
    memory is a few `chunk_rows × V` float32 buffers, never a second full (B, T, V) tensor. Slicing
    a view copies nothing, so non-contiguous logits (e.g. `logits[:, :-1]`) are fine. Under autograd
    each slice's softmax is saved for backward (about one (B, T, V) float32 tensor in total), so
    compute it under `torch.no_grad()` when it is only logged. `chunk_rows=None`: one slice.
    """
    if logits_BTV.ndim < 2:
        raise ValueError(f"logits must be (..., T, V), got shape {tuple(logits_BTV.shape)}")
    num_steps = logits_BTV.shape[-2]
    rows_per_step = max(math.prod(logits_BTV.shape[:-2]), 1)
    if chunk_rows is None:
        steps_per_chunk = max(num_steps, 1)
    else:
        steps_per_chunk = max(chunk_rows // rows_per_step, 1)
    pieces = []
    for z_BtV in logits_BTV.split(steps_per_chunk, dim=-2):
        z_BtV = z_BtV.float()
        probs_BtV = torch.softmax(z_BtV, dim=-1)
        pieces.append(torch.logsumexp(z_BtV, dim=-1) - (probs_BtV * z_BtV).sum(dim=-1))
    if not pieces:
        return logits_BTV.new_zeros(logits_BTV.shape[:-1], dtype=torch.float32)
    return torch.cat(pieces, dim=-1)
