"""The one place that meets the model: token ids in, per-token log-probs (and entropies) out.

Rollouts (old log-probs), losses (new log-probs), the reference model and the metrics all call
`response_logprobs`, so the numbers they compare are computed the same way.

Layout: a sequence is `[left-padded prompt | right-padded response]`; we return values for the
response tokens only, shaped (B, R). The vocabulary projection is applied only to the hidden states
that predict response tokens, chunk by chunk, so no (B, T, V) float tensor for the prompt is made.
"""

from __future__ import annotations

import torch
from torch import nn


def position_ids_from_mask(mask_BL: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as `generate` assigns them: cumsum(mask) - 1."""
    return (mask_BL.long().cumsum(-1) - 1).clamp(min=0)


def backbone_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The transformer body (hidden states) and the vocabulary projection of a causal LM."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
    return base.get_decoder(), base.get_output_embeddings()


def hidden_states(
    model: nn.Module, input_ids_BL: torch.Tensor, attention_mask_BL: torch.Tensor
) -> torch.Tensor:
    """Last-layer hidden states (B, L, H) of the body, with positions that skip left padding."""
    body, _ = backbone_and_head(model)
    out = body(
        input_ids=input_ids_BL,
        attention_mask=attention_mask_BL,
        position_ids=position_ids_from_mask(attention_mask_BL),
        use_cache=False,
    )
    return out.last_hidden_state


def _chunk_logprobs(
    head: nn.Module, h_NH: torch.Tensor, targets_N: torch.Tensor, temperature: float, entropy: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(target) and optionally the entropy for N positions from their hidden states."""
    logits_NV = head(h_NH).float()
    if temperature != 1.0:
        logits_NV = logits_NV / temperature
    lse_N = torch.logsumexp(logits_NV, dim=-1)
    logp_N = logits_NV.gather(-1, targets_N[:, None]).squeeze(-1) - lse_N
    if not entropy:
        return logp_N, None
    # H = lse - sum_v p_v * logit_v: one softmax, no second log-softmax copy of the logits.
    ent_N = lse_N - (torch.softmax(logits_NV, dim=-1) * logits_NV).sum(-1)
    return logp_N, ent_N


def response_logprobs(
    model: nn.Module,
    prompt_ids_BP: torch.Tensor,
    prompt_mask_BP: torch.Tensor,
    response_ids_BR: torch.Tensor,
    response_mask_BR: torch.Tensor,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
    chunk_tokens: int = 2048,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (B, R) of the response tokens, and their entropies if asked.

    Padding positions of the response get 0. `temperature` divides the logits, so old log-probs
    match the distribution that sampled them (verl does the same).
    """
    input_ids_BL = torch.cat([prompt_ids_BP, response_ids_BR], dim=1)
    mask_BL = torch.cat([prompt_mask_BP, response_mask_BR], dim=1)
    h_BLH = hidden_states(model, input_ids_BL, mask_BL)
    P = prompt_ids_BP.shape[1]
    # Position P-1+t predicts response token t.
    h_BRH = h_BLH[:, P - 1 : -1]
    _, head = backbone_and_head(model)
    B, R = response_ids_BR.shape
    valid_N = response_mask_BR.reshape(-1).bool()
    h_NH = h_BRH.reshape(B * R, -1)[valid_N]
    targets_N = response_ids_BR.reshape(-1)[valid_N]
    logps, ents = [], []
    for start in range(0, h_NH.shape[0], chunk_tokens):
        end = start + chunk_tokens
        lp, en = _chunk_logprobs(
            head, h_NH[start:end], targets_N[start:end], temperature, with_entropy
        )
        logps.append(lp)
        ents.append(en)
    logp_BR = h_BRH.new_zeros(B * R)
    logp_BR = logp_BR.masked_scatter(valid_N, torch.cat(logps)) if logps else logp_BR
    entropy_BR = None
    if with_entropy:
        entropy_BR = h_BRH.new_zeros(B * R).detach()
        if ents:
            entropy_BR = entropy_BR.masked_scatter(valid_N, torch.cat(ents))
        entropy_BR = entropy_BR.view(B, R)
    return logp_BR.view(B, R), entropy_BR
