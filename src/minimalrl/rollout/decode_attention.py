"""Attention for one new token per row, as two matmuls instead of PyTorch's CPU flash kernel.

With one query per row, `scaled_dot_product_attention` on CPU spends most of its time in
per-block bookkeeping: at 64 rows, 3 key/value heads of 3 query heads each and ~100 cached
positions, two batched matmuls and a softmax do the same in about a third of the time. Used
by the sampling loop only (`decode_attention_for`); prompts and training keep SDPA.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

NAME = "minimalrl_decode"


def decode_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention interface: (B, heads, 1, D) query over (B, kv_heads, L, D) keys.

    Query heads sharing a key/value head are stacked as rows (h = kv · g + j, as `repeat_kv`);
    the boolean mask (B, 1, 1, L), True = attend, comes from the SDPA mask builder. Anything
    but one query per row (a prompt, a softcap, attention sinks) goes to SDPA unchanged.
    """
    B, heads, q_len, D = query.shape
    if q_len != 1 or dropout > 0.0 or set(kwargs) & {"softcap", "s_aux", "position_bias"}:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    kv_heads = key.shape[1]
    q = query.reshape(B, kv_heads, heads // kv_heads, D)
    scores = torch.matmul(q, key.transpose(-1, -2)).float()
    scores.mul_(D**-0.5 if scaling is None else scaling)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores.masked_fill_(~attention_mask, float("-inf"))
        else:
            scores.add_(attention_mask)
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    out = torch.matmul(probs, value)  # (B, kv_heads, g, D)
    return out.reshape(B, 1, heads, value.shape[-1]), None


AttentionInterface.register(NAME, decode_attention_forward)
ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)


@contextlib.contextmanager
def decode_attention_for(model: nn.Module) -> Iterator[None]:
    """Within the block, a model on SDPA runs `decode_attention_forward`; restored after.

    Models on any other attention implementation (eager, flash, flex) are left as they are.
    """
    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        yield
        return
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = "sdpa"
