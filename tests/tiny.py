"""A tiny causal LM and tokenizer built in the test, saved as an ordinary transformers folder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL = ["<pad>", "<unk>", "<eos>", "<user>", "<assistant>"]
WORDS = [str(d) for d in range(10)] + ["+", "-", "=", "What", "is", "?", "the", "answer"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<user> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins tokens with spaces
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    path: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2, init_std: float = 0.02
) -> Path:
    """Save a randomly initialised tiny Llama and its tokenizer to `path`; return it.

    With the default init the logits of a 32-wide model span about ±0.7, so only the (tied)
    embeddings can make one token likely; LoRA, which leaves them frozen, needs a larger init_std.
    """
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        initializer_range=init_std,
    )
    model = LlamaForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_toy_task(path: Path, n: int = 32, answer: str = "7") -> Path:
    """Prompts whose gold answer is always `answer`: the policy must learn to say it."""
    with open(path, "w") as f:
        for i in range(n):
            a, b = i % 10, (i * 3) % 10
            f.write(json.dumps({"question": f"What is {a} + {b} ?", "answer": answer}) + "\n")
    return path


def train_rank(rank: int, world: int, port: int, cfg_dict: dict, out: str, resume: bool) -> None:
    """One rank of a gloo data-parallel run (the target of torch.multiprocessing.spawn)."""
    import os

    import torch.distributed as dist

    from minimalrl.config import TrainConfig
    from minimalrl.train.trainer import Trainer

    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    try:
        Trainer(TrainConfig(**cfg_dict), out, resume=resume, progress=False).run()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
