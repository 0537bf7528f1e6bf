"""PPO's critic: a copy of the policy's transformer body with a scalar value head (PAPER.md)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from minimalrl.logprobs import backbone_and_head, position_ids_from_mask


class ValueModel(nn.Module):
    """V(s_t) for every response token: the value of the state before the token is generated."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        body, _ = backbone_and_head(policy)
        self.body = copy.deepcopy(body)
        hidden = self.body.config.hidden_size
        self.head = nn.Linear(hidden, 1)
        # A zero head starts every value at 0, so the first advantages are the plain rewards.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(
        self,
        prompt_ids_BP: torch.Tensor,
        prompt_mask_BP: torch.Tensor,
        response_ids_BR: torch.Tensor,
        response_mask_BR: torch.Tensor,
    ) -> torch.Tensor:
        """Values (B, R); 0 on response padding."""
        ids_BL = torch.cat([prompt_ids_BP, response_ids_BR], dim=1)
        mask_BL = torch.cat([prompt_mask_BP, response_mask_BR], dim=1)
        h_BLH = self.body(
            input_ids=ids_BL,
            attention_mask=mask_BL,
            position_ids=position_ids_from_mask(mask_BL),
            use_cache=False,
        ).last_hidden_state
        P = prompt_ids_BP.shape[1]
        values_BR = self.head(h_BLH[:, P - 1 : -1]).squeeze(-1).float()
        return values_BR * response_mask_BR
