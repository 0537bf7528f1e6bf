"""Attention as two matmuls and a softmax, for the short rows this library runs on CPU.

PyTorch's CPU flash kernel for `scaled_dot_product_attention` is slow on short rows: one query
per row (sampling) and packed training rows in bfloat16 run faster as matmuls (the measurements:
docs/measurements.md, "Speed").

Query heads sharing a key/value head are stacked as rows (h = kv · g + j, as `repeat_kv`), so
keys and values are never repeated. Masked scores get the dtype's minimum, as transformers'
eager attention does: a query row with no visible key (left padding) gets finite values that
nothing reads, never NaN.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

NAME = "minimalrl_matmul"


def matmul_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention interface: (B, heads, Q, D) queries over (B, kv_heads, L, D) keys.

    The mask is SDPA's: boolean (B or 1, 1, Q, L), True = attend, or additive floats. Without a
    mask (plain causal), with a per-head mask, dropout, a softcap, sinks or a position bias: SDPA.
    """
    if (
        attention_mask is None
        or attention_mask.shape[1] != 1  # a per-head mask
        or dropout > 0.0
        or set(kwargs) & {"softcap", "s_aux", "sinks", "position_bias"}
    ):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    B, heads, Q, D = query.shape
    kv_heads, L = key.shape[1], key.shape[2]
    g = heads // kv_heads
    q = query.reshape(B, kv_heads, g * Q, D)
    scores = torch.matmul(q, key.transpose(-1, -2)).view(B, kv_heads, g, Q, L)
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32))  # softmax in >= fp32
    scores = scores * (D**-0.5 if scaling is None else scaling)
    mask = attention_mask[:, :, None]  # (B, 1, 1, Q, L): the same for every head
    if mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    else:
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1).to(value.dtype).view(B, kv_heads, g * Q, L)
    out = torch.matmul(probs, value).view(B, heads, Q, value.shape[-1])
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, matmul_attention_forward)
ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)


@contextlib.contextmanager
def matmul_attention_for(model: nn.Module) -> Iterator[None]:
    """Within the block, a model on SDPA runs `matmul_attention_forward`; restored after.

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
