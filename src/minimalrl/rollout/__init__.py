"""Rollout backends: turn prompts into sampled responses (HF transformers on CPU; vLLM's place)."""

from minimalrl.rollout.backends import BACKENDS, close_backend, make_backend
from minimalrl.rollout.base import (
    Rollout,
    RolloutBackend,
    SamplingParams,
    derive_seed,
    pad_left,
)
from minimalrl.rollout.hf import HFBackend

__all__ = [
    "BACKENDS",
    "HFBackend",
    "Rollout",
    "RolloutBackend",
    "SamplingParams",
    "close_backend",
    "derive_seed",
    "make_backend",
    "pad_left",
]
