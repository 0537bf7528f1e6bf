"""Rollout backends by name: the config's `rollout_backend` picks one for training and eval.

A backend is built from the policy module, its tokenizer, the sampling dtype (None: the weights'
own) and the engine settings (read by engines that allocate their own memory). Adding one is one
constructor function and one entry in `BACKENDS`; it implements `RolloutBackend` (`generate`, and
`sync_weights`, which the policy calls after every update).

Any of them can write down what it samples (`record`), and a record can stand in for all of them
(`replay`): `minimalrl.rollout.replay`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from minimalrl.model.loading import end_of_turn_ids
from minimalrl.rollout.base import RolloutBackend
from minimalrl.rollout.hf import HFBackend
from minimalrl.rollout.replay import RecordingBackend, ReplayBackend
from minimalrl.rollout.vllm_engine import EngineSettings

BackendFactory = Callable[
    [nn.Module, PreTrainedTokenizerBase, "torch.dtype | None", EngineSettings], RolloutBackend
]


def hf_backend(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    dtype: torch.dtype | None,
    engine: EngineSettings,
) -> RolloutBackend:
    """Sampling from the policy module itself with a KV cache (the CPU default)."""
    return HFBackend(model, tokenizer.pad_token_id, end_of_turn_ids(model, tokenizer), dtype)


def vllm_backend(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    dtype: torch.dtype | None,
    engine: EngineSettings,
) -> RolloutBackend:
    """A vLLM engine in this process, given the policy's weights after every update."""
    from minimalrl.rollout.vllm_engine import VLLMBackend

    return VLLMBackend(model, tokenizer, end_of_turn_ids(model, tokenizer), dtype, engine)


BACKENDS: dict[str, BackendFactory] = {
    "hf": hf_backend,
    "vllm": vllm_backend,
}


def make_backend(
    name: str,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    dtype: torch.dtype | None = None,
    engine: EngineSettings | None = None,
    *,
    record: str = "",
    replay: str = "",
) -> RolloutBackend:
    """The backend registered as `name`, sampling from `model`; each call's responses appended
    to the file `record` when one is given; or, with `replay`, the responses recorded there
    (nothing sampled, `name` unused)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown rollout backend {name!r}; valid: {', '.join(sorted(BACKENDS))}")
    if replay:
        return ReplayBackend(replay, tokenizer.pad_token_id, next(model.parameters()).device)
    backend = BACKENDS[name](model, tokenizer, dtype, engine or EngineSettings())
    return RecordingBackend(backend, record) if record else backend


def close_backend(backend: RolloutBackend) -> None:
    """Free what a backend holds outside this process's tensors (an engine's KV cache and weight
    copy); a backend with nothing of its own (`hf`) has no `close`."""
    close = getattr(backend, "close", None)
    if close is not None:
        close()
