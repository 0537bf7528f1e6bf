"""Turning a question into the text the policy is prompted with.

The user turn is the question followed by the paper's (and verl's) instruction, which asks for the
final answer in ``\\boxed{}`` so the verifier can find it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from minimalrl.data.problems import Problem

DEFAULT_INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."


def build_prompt(
    tokenizer: Any,
    question: str,
    *,
    instruction: str = DEFAULT_INSTRUCTION,
    system_prompt: str | None = None,
) -> str:
    """The prompt text for one question: the chat template applied to one user turn.

    The user turn is ``question + " " + instruction``. With a chat template the text comes from
    ``apply_chat_template(..., add_generation_prompt=True, tokenize=False)`` and already holds
    the special tokens, so tokenize it with ``add_special_tokens=False`` (else a BOS may be
    doubled). A tokenizer without a chat template gets the plain user turn (after
    ``system_prompt`` and a blank line, if given); tokenize that with
    ``add_special_tokens=False`` too, so the model sees exactly this text.

    ``system_prompt=None`` keeps the template's default: SmolLM2's template then adds its own
    system prompt ("You are a helpful AI assistant named SmolLM..."). Any string, even ``""``,
    replaces it.
    """
    user = f"{question} {instruction}" if instruction else question
    if getattr(tokenizer, "chat_template", None) is None:
        return f"{system_prompt}\n\n{user}" if system_prompt else user
    messages = [{"role": "user", "content": user}]
    if system_prompt is not None:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def build_prompts(
    tokenizer: Any,
    problems: Iterable[Problem | str],
    *,
    instruction: str = DEFAULT_INSTRUCTION,
    system_prompt: str | None = None,
) -> list[str]:
    """``build_prompt`` for each problem (or bare question), in order. A problem read from a
    conversational row keeps its own system turn (``meta["system_prompt"]``) unless
    ``system_prompt`` is given, which replaces every one."""
    return [
        build_prompt(
            tokenizer,
            p.question if isinstance(p, Problem) else p,
            instruction=instruction,
            system_prompt=(
                p.meta.get("system_prompt")
                if system_prompt is None and isinstance(p, Problem)
                else system_prompt
            ),
        )
        for p in problems
    ]
