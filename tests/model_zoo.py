"""Tiny random models of the architecture families users bring to RL, built from transformers'
own config classes (width 64, 2 layers, the default model's tokenizer and vocabulary).

Windows are 8 tokens, shorter than the test prompts and responses, so a lost window shows; the
logit transforms (Gemma's soft-capping, Cohere's and Granite's scaling) are set where they bite:
with `initializer_range` 0.1 the logits span a few units, so a cap of 5 is far from identity.
"""

from __future__ import annotations

import functools

import torch
import transformers as T

WINDOW = 8


@functools.cache
def tokenizer():
    from minimalrl.model.loading import default_model_dir, load_tokenizer

    return load_tokenizer(str(default_model_dir()))


def _common(**kw) -> dict:
    tok = tokenizer()
    d = dict(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None,
        initializer_range=0.1,
    )  # fmt: skip
    d.update(kw)
    return d


CONFIGS = {
    "llama": lambda: T.LlamaConfig(**_common(tie_word_embeddings=True)),
    "qwen2_tied": lambda: T.Qwen2Config(**_common(tie_word_embeddings=True)),
    "qwen2_untied": lambda: T.Qwen2Config(**_common(tie_word_embeddings=False)),
    "qwen3": lambda: T.Qwen3Config(**_common(head_dim=16)),
    "mistral_window": lambda: T.MistralConfig(**_common(sliding_window=WINDOW)),
    "gemma": lambda: T.GemmaConfig(**_common(head_dim=16)),
    "gemma2": lambda: T.Gemma2Config(
        **_common(head_dim=16, sliding_window=WINDOW, final_logit_softcapping=5.0)
    ),
    "gemma3": lambda: T.Gemma3TextConfig(
        **_common(
            head_dim=16,
            sliding_window=WINDOW,
            final_logit_softcapping=5.0,
            layer_types=["sliding_attention", "full_attention"],
        )
    ),
    "phi3_window": lambda: T.Phi3Config(**_common(sliding_window=WINDOW)),
    "phi3": lambda: T.Phi3Config(**_common(sliding_window=None)),
    "olmo2": lambda: T.Olmo2Config(**_common()),
    "gpt_neox": lambda: T.GPTNeoXConfig(**_common(num_key_value_heads=None)),
    "smollm3": lambda: T.SmolLM3Config(**_common()),
    "cohere": lambda: T.CohereConfig(**_common(logit_scale=0.5)),
    "granite": lambda: T.GraniteConfig(**_common(logits_scaling=4.0)),
    # Not a checked family: the general path (its own forward) must be right for it too.
    "starcoder2": lambda: T.Starcoder2Config(**_common(sliding_window=WINDOW)),
}
WINDOWED = {"mistral_window", "gemma2", "gemma3", "phi3_window", "starcoder2"}
TRANSFORMED = {"gemma2", "gemma3", "cohere", "granite"}
GENERAL_PATH = {"starcoder2"}


def build(name: str, seed: int = 0, dtype: torch.dtype = torch.float32) -> T.PreTrainedModel:
    """A randomly initialised model of family `name` (a `CONFIGS` key), in eval mode."""
    torch.manual_seed(seed)
    model = T.AutoModelForCausalLM.from_config(CONFIGS[name](), dtype=dtype)
    return model.eval()
