"""The reference policy (the initial model), for the KL penalty and the kl_to_init curve.

Full fine-tuning keeps a frozen copy; with LoRA the reference is the same model with its adapters
disabled, so no second copy of the weights is held in memory.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext

import torch
from torch import nn

from minimalrl.model.logprobs import batched_logprobs
from minimalrl.rollout import Rollout


class Reference:
    def __init__(self, policy: nn.Module, *, shares_weights: bool):
        """`shares_weights`: the policy is a peft model whose base is the initial model."""
        self.shares_weights = shares_weights
        self.model = policy if shares_weights else copy.deepcopy(policy).requires_grad_(False)

    @torch.inference_mode()
    def logprobs(self, ro: Rollout, micro_batch: int, temperature: float) -> torch.Tensor:
        """Per-token log-probs (B, R) of the rollout's responses under the initial model, at the
        sampling temperature (as π_old and the trained log-probs are: the KL penalty and the
        kl_to_init curve compare the tempered policy with the tempered initial model, which
        makes kl_to_init 0 before the first update; the paper's code tempers its reference too)."""
        off = self.model.disable_adapter() if self.shares_weights else nullcontext()
        with off:
            return batched_logprobs(self.model, ro, micro_batch, temperature=temperature)[0]
