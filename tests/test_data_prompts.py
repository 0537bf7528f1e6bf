"""Prompt building with a tiny offline tokenizer, with and without a chat template."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from minimalrl.data import DEFAULT_INSTRUCTION, Problem, build_prompt, build_prompts

# A SmolLM2-like template: a default system turn unless the messages bring one.
TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|system|>default system\n{% endif %}"
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_tokenizer(chat_template: str | None) -> PreTrainedTokenizerFast:
    vocab = {"[UNK]": 0, "<|system|>": 1, "<|user|>": 2, "<|assistant|>": 3}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    tok.chat_template = chat_template
    return tok


@pytest.fixture
def chat_tok():
    return tiny_tokenizer(TEMPLATE)


@pytest.fixture
def plain_tok():
    return tiny_tokenizer(None)


def test_default_instruction_is_the_papers():
    assert DEFAULT_INSTRUCTION == (
        "Let's think step by step and output the final answer within \\boxed{}."
    )


def test_chat_template(chat_tok):
    prompt = build_prompt(chat_tok, "What is 2 + 3?")
    assert prompt == (
        f"<|system|>default system\n<|user|>What is 2 + 3? {DEFAULT_INSTRUCTION}\n<|assistant|>"
    )


def test_system_prompt_replaces_the_default(chat_tok):
    prompt = build_prompt(chat_tok, "Q?", system_prompt="Be brief.", instruction="Answer.")
    assert prompt == "<|system|>Be brief.\n<|user|>Q? Answer.\n<|assistant|>"
    assert build_prompt(chat_tok, "Q?", system_prompt="").startswith("<|system|>\n<|user|>")


def test_no_chat_template_falls_back_to_plain_text(plain_tok):
    assert build_prompt(plain_tok, "What is 2 + 3?") == f"What is 2 + 3? {DEFAULT_INSTRUCTION}"
    assert build_prompt(plain_tok, "Q?", instruction="") == "Q?"
    assert build_prompt(plain_tok, "Q?", instruction="A.", system_prompt="S.") == "S.\n\nQ? A."


def test_build_prompts(chat_tok):
    problems = [Problem("One?", "1"), Problem("Two?", "2")]
    prompts = build_prompts(chat_tok, problems, instruction="Go.")
    assert prompts == [build_prompt(chat_tok, q, instruction="Go.") for q in ("One?", "Two?")]
    assert build_prompts(chat_tok, ["One?", "Two?"], instruction="Go.") == prompts
    assert build_prompts(chat_tok, []) == []
