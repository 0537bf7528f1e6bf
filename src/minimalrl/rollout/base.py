"""The rollout seam: a backend samples responses to prompts (`Rollout`); seeds from integers."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Protocol

import torch
from torch import nn

from minimalrl.model.logprobs import TokenBatch


@dataclass(frozen=True)
class SamplingParams:
    """How responses are sampled."""

    n: int = 1
    """Responses per prompt."""
    max_new_tokens: int = 256
    """Generation stops after this many tokens (or at EOS)."""
    temperature: float = 1.0
    """Softmax temperature; 0 means greedy."""
    top_p: float = 1.0
    """Nucleus sampling mass (1.0 = off)."""
    seed: int = 0
    """Seed of the sampling generator: the same seed gives the same responses."""


@dataclass
class Rollout(TokenBatch):
    """A batch of B = prompts × n sampled responses (rows of a prompt are contiguous).

    Made once by a backend and only read downstream: scores of its responses (log-probs,
    entropies, values) are records of their own (`minimalrl.policy.Scores`)."""

    stats: dict[str, float] = field(default_factory=dict)
    sampler_logp_BR: torch.Tensor | None = None
    """The sampler's own log-probs of the tokens it drew (B, R), 0 on pads; None: the backend
    gives none. Taken from the logits it sampled from, at the log-prob temperature, over the whole
    vocabulary (top-p's truncation left out, as the trainer's log-probs leave it out): beside
    π_old's they measure the sampler/trainer mismatch and feed the rollout correction
    (`minimalrl.algorithms.rollout_correction`)."""

    def select(self, rows: list[int] | torch.Tensor) -> Rollout:
        """The given responses as a rollout (`TokenBatch.select`), their sampler log-probs cut
        alike; `stats` (of the whole batch) stay behind."""
        tokens = super().select(rows)
        logp_BR = self.sampler_logp_BR
        if logp_BR is not None:
            idx = torch.as_tensor(rows, dtype=torch.long, device=logp_BR.device)
            logp_BR = logp_BR[idx, : tokens.response_ids_BR.shape[1]]
        same = {f.name: getattr(tokens, f.name) for f in fields(TokenBatch)}
        return Rollout(**same, sampler_logp_BR=logp_BR)

    @property
    def response_lengths_B(self) -> torch.Tensor:
        return self.response_mask_BR.sum(-1)

    @property
    def sequence_lengths_B(self) -> torch.Tensor:
        """Prompt + response tokens of each row (what a training forward costs)."""
        return self.prompt_mask_UP.sum(-1)[self.prompt_index_B] + self.response_lengths_B


class RolloutBackend(Protocol):
    """What a generation engine must do for the trainer."""

    def generate(
        self,
        prompt_token_ids: list[list[int]],
        params: SamplingParams,
        prompt_keys: list[int] | None = None,
    ) -> Rollout:
        """Sample `params.n` responses for each prompt (given as token ids).

        `prompt_keys` (default: positions in the list) identify prompts for seeding: a response
        depends only on (params.seed, its prompt's key, its sample index).
        """
        ...

    def sync_weights(self, model: nn.Module) -> None:
        """Make the engine sample from `model`'s current weights."""
        ...


def keys_of(prompt_token_ids: list[list[int]], prompt_keys: list[int] | None) -> list[int]:
    """The prompts' seeding keys: the given ones, else their positions in the list."""
    return list(range(len(prompt_token_ids))) if prompt_keys is None else list(prompt_keys)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from several integers (seed, iteration, purpose; or seed, prompt, sample).

    Python hashes a tuple of ints the same in every process (no hash randomisation for ints),
    so a resumed run or another rank derives the same seeds."""
    return hash(parts) & 0x7FFF_FFFF_FFFF_FFFF


def pad_left(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token id lists into (B, P) ids and mask."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s) :] = 1
    return ids, mask
