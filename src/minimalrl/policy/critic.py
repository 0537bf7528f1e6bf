"""PPO's critic: a copy of the policy's transformer body with a scalar value head (PAPER.md)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from minimalrl.model.fast.support import fast_paths
from minimalrl.model.logprobs import TokenBatch, backbone_and_head, response_token_states


class ValueModel(nn.Module):
    """V(s_t) for every response token: the value of the state before the token is generated."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        body, _ = backbone_and_head(policy)
        self.body = copy.deepcopy(body)
        self.paths = fast_paths(policy)  # the policy's: the body is its copy
        hidden = self.body.config.hidden_size
        self.head = nn.Linear(hidden, 1)
        # A zero head starts every value at 0, so the first advantages are the plain rewards.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, batch: TokenBatch) -> torch.Tensor:
        """Values (B, R) of the states before each response token; 0 on response padding."""
        mask_BR = batch.response_mask_BR
        values_N = (
            self.head(response_token_states(self.body, batch, self.paths)).squeeze(-1).float()
        )
        zeros_BR = torch.zeros(mask_BR.shape, dtype=values_N.dtype, device=values_N.device)
        return zeros_BR.masked_scatter(mask_BR.bool(), values_N)
