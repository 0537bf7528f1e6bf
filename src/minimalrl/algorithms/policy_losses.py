"""Every policy loss behind one call: a trainer calls `alg.loss(...)` (or `POLICY_LOSSES[name]`).

    loss, metrics = POLICY_LOSSES[name](
        logp_BT, old_logp_BT, advantages_BT, mask_BT,
        clip_low=0.2, clip_high=0.2, dual_clip=None, dpo_beta=0.1,
        agg="token_mean", num_tokens=None, num_seqs=None, max_len=None,
    )

Each loss is a pure function that names, as parameters, the tensors and settings it reads (see
its signature): `sft_loss` reads no π_old and no clip settings; `dpo_policy_loss`
reads `old_logp_BT` as the reference's log-probs and expects K chosen rows then their K rejected
rows. `with_common_signature` hands each loss what it names and drops the rest, so no loss needs
an adapter; a setting no loss knows (a typo) is a TypeError.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import Tensor

from minimalrl.algorithms._lookup import lookup, parameters
from minimalrl.algorithms.dpo import dpo_policy_loss
from minimalrl.algorithms.losses import (
    cispo_loss,
    clipped_policy_loss,
    gspo_loss,
    is_policy_loss,
    sft_loss,
)

LossOutput = tuple[Tensor, dict[str, Tensor]]
PolicyLossFn = Callable[..., LossOutput]
"""(logp_BT, old_logp_BT, advantages_BT, mask_BT, **settings) -> (loss, metrics)."""

TENSORS = ("logp_BT", "old_logp_BT", "advantages_BT", "mask_BT")


def with_common_signature(fn: Callable[..., LossOutput]) -> PolicyLossFn:
    """`fn` callable as every policy loss is: the four tensors, then any settings by keyword.

    `fn` receives, by name, those it declares; `.reads` holds their names (so a reader can ask
    whether a loss reads advantages)."""
    reads = parameters(fn)

    @functools.wraps(fn)
    def loss(
        logp_BT: Tensor, old_logp_BT: Tensor, advantages_BT: Tensor, mask_BT: Tensor, **settings
    ) -> LossOutput:
        unknown = sorted(settings.keys() - SETTINGS)
        if unknown:
            raise TypeError(f"unknown policy-loss settings {unknown}; known: {sorted(SETTINGS)}")
        given = dict(zip(TENSORS, (logp_BT, old_logp_BT, advantages_BT, mask_BT)), **settings)
        return fn(**{name: value for name, value in given.items() if name in reads})

    loss.reads = reads  # type: ignore[attr-defined]
    return loss


POLICY_LOSSES: dict[str, PolicyLossFn] = {
    name: with_common_signature(fn)
    for name, fn in {
        "clipped": clipped_policy_loss,  # −agg(min(s·A, clip(s)·A))
        "is_no_clip": is_policy_loss,  # −agg(s·A)
        "sft": sft_loss,  # −agg(A·log π_θ), A = 1 on kept responses
        "dpo": dpo_policy_loss,  # −log σ(β·margin), mean over pairs
        "cispo": cispo_loss,  # −agg(sg(clip(s))·A·log π)
        "gspo": gspo_loss,  # −agg(min(s_i·A, clip(s_i)·A)), s_i per sequence
    }.items()
}
# Every setting some loss reads: what a trainer may pass to any loss.
SETTINGS = frozenset().union(*(loss.reads for loss in POLICY_LOSSES.values())) - set(TENSORS)


def get_policy_loss(name: str) -> PolicyLossFn:
    """`POLICY_LOSSES[name]`, or `UnknownNameError` (a ValueError, KeyError) listing valid names."""
    return lookup(POLICY_LOSSES, name, "policy loss")
