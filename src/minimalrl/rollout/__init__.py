"""Rollout backends: turn prompts into sampled responses (HF transformers on CPU; vLLM on GPUs)."""

from minimalrl.rollout.base import (
    Rollout,
    RolloutBackend,
    SamplingParams,
    pad_left,
    score_rollout,
)
from minimalrl.rollout.hf import HFBackend

__all__ = [
    "HFBackend",
    "Rollout",
    "RolloutBackend",
    "SamplingParams",
    "pad_left",
    "score_rollout",
]
