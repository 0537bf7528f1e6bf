"""Which fast paths a model may take: one function, `fast_paths(model)`, decided from its class and
config, so every fast path either computes what the model's own forward computes or is not taken.

The fast paths split the model into its transformer body and its vocabulary head, run each
distinct prompt once into a shared KV cache, pack responses into shared rows under a 4D mask,
compute log-probs from hidden states by a hand-written head, decode with matmul attention and
prepacked linear layers, and take a tied embedding's gradient sparse. Each assumes something of
the model's `*ForCausalLM.forward`; they are taken only for the families in `FAMILIES`, whose
forward is known to be the body, then the head, then (where there is one) the logit transform
given there, and which the correctness matrix (`tests/test_model_matrix.py`) checks against
transformers' own forward. Within those:

- packing: SDPA attention and no sliding-window layer (the 4D mask a packed row needs replaces
  the one transformers builds, windows included);
- the fused head: a bias-free `nn.Linear` and no logit transform (soft-capping, logit scaling);
- matmul attention: SDPA attention (it is registered as an SDPA-like implementation);
- the sparse embedding gradient: a plain `nn.Embedding` tied to a plain `nn.Linear` head.

Any other causal LM runs on the general path: log-probs from the model's own forward over each
whole prompt + response row, and sampling through its own forward with the cache transformers
builds for it. A model that path cannot run either (no `position_ids` or `cache` arguments, an
encoder-decoder) gets one `UnsupportedModelError`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

LogitTransform = Callable[[torch.Tensor], torch.Tensor]


class UnsupportedModelError(ValueError):
    """A model neither the fast paths nor the general path can run exactly."""


def _softcap(config) -> LogitTransform | None:
    """Gemma-2/3: `tanh(z / cap) * cap` after the head, when `final_logit_softcapping` is set."""
    cap = getattr(config, "final_logit_softcapping", None)
    if cap is None:
        return None
    return lambda z: torch.tanh(z / cap) * cap


def _times_logit_scale(config) -> LogitTransform | None:
    """Cohere: `z * logit_scale`."""
    scale = config.logit_scale
    return None if scale == 1.0 else lambda z: z * scale


def _over_logits_scaling(config) -> LogitTransform | None:
    """Granite: `z / logits_scaling`."""
    scaling = config.logits_scaling
    return None if scaling == 1.0 else lambda z: z / scaling


def _plain(config) -> LogitTransform | None:
    return None


# model_type -> (the transformers class whose forward was read, the transform after its head).
# A subclass or another class of the same model_type takes the general path: it may override
# forward. Every entry is a row of the correctness matrix.
FAMILIES: dict[str, tuple[str, Callable[..., LogitTransform | None]]] = {
    "llama": ("LlamaForCausalLM", _plain),
    "mistral": ("MistralForCausalLM", _plain),
    "qwen2": ("Qwen2ForCausalLM", _plain),
    "qwen3": ("Qwen3ForCausalLM", _plain),
    "phi3": ("Phi3ForCausalLM", _plain),
    "olmo2": ("Olmo2ForCausalLM", _plain),
    "gpt_neox": ("GPTNeoXForCausalLM", _plain),
    "smollm3": ("SmolLM3ForCausalLM", _plain),
    "gemma": ("GemmaForCausalLM", _plain),
    "gemma2": ("Gemma2ForCausalLM", _softcap),
    "gemma3_text": ("Gemma3ForCausalLM", _softcap),
    "cohere": ("CohereForCausalLM", _times_logit_scale),
    "granite": ("GraniteForCausalLM", _over_logits_scaling),
}


@dataclass(frozen=True)
class FastPaths:
    """What `fast_paths` allows for one model; `declined` says why each path not taken was not."""

    family: str | None
    """The checked family (a `FAMILIES` key), or None: the general path for everything."""
    logit_transform: LogitTransform | None
    """Applied to the head's logits before the temperature, as the model's forward does."""
    packing: bool
    fused_head: bool
    matmul_attention: bool
    prepacked_linears: bool
    sparse_embedding_grad: bool
    declined: tuple[str, ...] = ()

    @property
    def split(self) -> bool:
        """Body and head run separately (the shared prompt cache): a checked family."""
        return self.family is not None


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def model_class(model: nn.Module) -> type:
    """The model's own class: FSDP2's `fully_shard` swaps in a subclass `FSDP<cls>`."""
    cls = type(model)
    from torch.distributed.fsdp import FSDPModule

    if issubclass(cls, FSDPModule):
        cls = next(c for c in cls.__mro__[1:] if not issubclass(c, FSDPModule))
    return cls


@functools.cache
def forward_arguments(cls: type) -> frozenset[str]:
    """The names `cls.forward` takes; with `**kwargs`, the names of the first base class whose
    forward names them (a subclass's `forward(*args, **kwargs)` passes them on)."""
    for c in cls.__mro__:
        params = inspect.signature(c.forward).parameters if "forward" in vars(c) else {}
        named = frozenset(
            n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )
        if named - {"self"}:
            return named
    return frozenset()


def takes_argument(module: nn.Module, name: str) -> bool:
    """Whether the module's own forward (peft and FSDP unwrapped) takes `name`."""
    return name in forward_arguments(model_class(unwrap(module)))


def cache_argument(module: nn.Module) -> str | None:
    """The name the module's forward gives its KV cache: `cache` from transformers 5.24 on,
    `past_key_values` before (the range the project supports spans both); None: neither."""
    return next((n for n in ("cache", "past_key_values") if takes_argument(module, n)), None)


def with_cache(module: nn.Module, cache: object) -> dict[str, object]:
    """`{name: cache}` for the module's forward (`cache_argument`)."""
    name = cache_argument(module)
    if name is None:
        raise UnsupportedModelError(
            f"{model_class(unwrap(module)).__name__}: its forward takes no KV cache"
        )
    return {name: cache}


def check_runnable(model: nn.Module) -> None:
    """Raise `UnsupportedModelError` unless the general path can run this model: a causal LM
    whose forward takes the attention mask, position ids and a cache (left-padded batches and a
    KV cache need all three)."""
    base = unwrap(model)
    cls = model_class(base)
    config = getattr(base, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        raise UnsupportedModelError(f"{cls.__name__}: not a decoder-only causal LM")
    missing = sorted({"attention_mask", "position_ids"} - forward_arguments(cls))
    missing += [] if cache_argument(base) else ["cache (or past_key_values)"]
    if missing:
        raise UnsupportedModelError(
            f"{cls.__name__} ({config.model_type}): its forward takes no {', '.join(missing)}, "
            "which batched sampling with left padding and a KV cache needs; "
            "minimalrl cannot run it"
        )


def sliding_window_layers(config) -> bool:
    """Whether any layer attends within a window (or in chunks) rather than to all keys."""
    types = getattr(config, "layer_types", None)
    if types is not None:
        return any(t != "full_attention" for t in types)
    return getattr(config, "sliding_window", None) is not None


def fast_paths(model: nn.Module) -> FastPaths:
    """The fast paths this model may take (module doc); raises `UnsupportedModelError` for a
    model no path runs exactly."""
    check_runnable(model)
    base = unwrap(model)
    config = base.config
    entry = FAMILIES.get(config.model_type)
    if entry is None or model_class(base).__name__ != entry[0]:
        why = (
            f"{model_class(base).__name__} is not a checked family's class "
            f"({', '.join(sorted(FAMILIES))}): log-probs from its own forward"
        )
        return FastPaths(None, None, False, False, False, False, False, (why,))
    transform = entry[1](config)
    declined = []
    sdpa = getattr(config, "_attn_implementation", None) == "sdpa"
    windowed = sliding_window_layers(config)
    if not sdpa:
        declined.append(
            f"attention {config._attn_implementation!r}: no packing, no matmul attention"
        )
    if windowed:
        declined.append("sliding-window layers: no packing (their mask is transformers' own)")
    head = base.get_output_embeddings()
    plain_head = type(head) is nn.Linear and head.bias is None
    if transform is not None:
        declined.append("a logit transform after the head: the head by autograd, not fused")
    elif not plain_head:
        declined.append(f"head {type(head).__name__}: by autograd, not fused")
    emb = base.get_input_embeddings()
    tied = type(emb) is nn.Embedding and type(head) is nn.Linear and emb.weight is head.weight
    return FastPaths(
        family=config.model_type,
        logit_transform=transform,
        packing=sdpa and not windowed,
        fused_head=plain_head and transform is None,
        matmul_attention=sdpa,
        prepacked_linears=True,
        sparse_embedding_grad=tied,
        declined=tuple(declined),
    )
