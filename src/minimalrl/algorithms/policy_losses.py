"""Every policy loss behind one signature: a trainer calls `POLICY_LOSSES[alg.loss](...)`, no `if`.

    loss, metrics = POLICY_LOSSES[alg.loss](
        logp_BT, old_logp_BT, advantages_BT, mask_BT,
        clip_low=0.2, clip_high=0.2, dual_clip=None, dpo_beta=0.1,
        agg="token_mean", num_tokens=None, num_seqs=None,
    )

Each entry forwards the settings its loss reads and ignores the rest:
- `clipped`: all but `dpo_beta`.
- `is_no_clip`: ignores the clip settings.
- `sft`: ignores old_logp_BT, advantages_BT and the clip settings.
- `dpo`: reads old_logp_BT as the reference log-probs (PAPER.md: by default π_ref is the policy at
  the start of the iteration, i.e. π_old), ignores advantages_BT, the clip settings, `agg` and
  `num_tokens`, and expects K chosen rows then their K rejected rows (`dpo_policy_loss`).
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor

from minimalrl.algorithms._lookup import lookup
from minimalrl.algorithms.dpo import dpo_policy_loss
from minimalrl.algorithms.losses import clipped_policy_loss, is_policy_loss, sft_loss

LossOutput = tuple[Tensor, dict[str, Tensor]]


class PolicyLossFn(Protocol):
    """The uniform signature of every entry of `POLICY_LOSSES`."""

    def __call__(
        self,
        logp_BT: Tensor,
        old_logp_BT: Tensor,
        advantages_BT: Tensor,
        mask_BT: Tensor,
        *,
        clip_low: float = 0.2,
        clip_high: float = 0.2,
        dual_clip: float | None = None,
        dpo_beta: float = 0.1,
        agg: str = "token_mean",
        num_tokens: float | None = None,
        num_seqs: float | None = None,
    ) -> LossOutput: ...


def _clipped(
    logp_BT: Tensor,
    old_logp_BT: Tensor,
    advantages_BT: Tensor,
    mask_BT: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    dpo_beta: float = 0.1,
    agg: str = "token_mean",
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> LossOutput:
    return clipped_policy_loss(
        logp_BT,
        old_logp_BT,
        advantages_BT,
        mask_BT,
        clip_low=clip_low,
        clip_high=clip_high,
        dual_clip=dual_clip,
        agg=agg,
        num_tokens=num_tokens,
        num_seqs=num_seqs,
    )


def _is_no_clip(
    logp_BT: Tensor,
    old_logp_BT: Tensor,
    advantages_BT: Tensor,
    mask_BT: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    dpo_beta: float = 0.1,
    agg: str = "token_mean",
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> LossOutput:
    return is_policy_loss(
        logp_BT,
        old_logp_BT,
        advantages_BT,
        mask_BT,
        agg=agg,
        num_tokens=num_tokens,
        num_seqs=num_seqs,
    )


def _sft(
    logp_BT: Tensor,
    old_logp_BT: Tensor,
    advantages_BT: Tensor,
    mask_BT: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    dpo_beta: float = 0.1,
    agg: str = "token_mean",
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> LossOutput:
    return sft_loss(logp_BT, mask_BT, agg, num_tokens=num_tokens, num_seqs=num_seqs)


def _dpo(
    logp_BT: Tensor,
    old_logp_BT: Tensor,
    advantages_BT: Tensor,
    mask_BT: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    dpo_beta: float = 0.1,
    agg: str = "token_mean",
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> LossOutput:
    return dpo_policy_loss(logp_BT, old_logp_BT, mask_BT, beta=dpo_beta, num_seqs=num_seqs)


POLICY_LOSSES: dict[str, PolicyLossFn] = {
    "clipped": _clipped,  # −agg(min(s·A, clip(s)·A))
    "is_no_clip": _is_no_clip,  # −agg(s·A)
    "sft": _sft,  # −agg(log π_θ)
    "dpo": _dpo,  # −log σ(β·margin), mean over pairs
}


def get_policy_loss(name: str) -> PolicyLossFn:
    """`POLICY_LOSSES[name]`, or `UnknownNameError` (a ValueError, KeyError) listing valid names."""
    return lookup(POLICY_LOSSES, name, "policy loss")
