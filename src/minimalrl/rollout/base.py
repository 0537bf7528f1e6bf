"""The rollout seam: a backend samples responses; `rollout` adds the sampling policy's log-probs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from minimalrl.policy.logprobs import TokenBatch, batched_logprobs, logprob_temperature


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
    """A batch of B = prompts × n sampled responses (rows of a prompt are contiguous)."""

    old_logp_BR: torch.Tensor | None = None
    """Log-probs of the sampled tokens under the sampling policy."""
    entropy_BR: torch.Tensor | None = None
    """Token entropies of the sampling policy (from the same forward pass as old_logp_BR)."""
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def response_lengths_B(self) -> torch.Tensor:
        return self.response_mask_BR.sum(-1)

    @property
    def sequence_lengths_B(self) -> torch.Tensor:
        """Prompt + response tokens of each row (what a training forward costs)."""
        return self.prompt_mask_UP.sum(-1)[self.prompt_index_B] + self.response_lengths_B

    def store_scores(
        self, rows: list[int], logp_BR: torch.Tensor, entropy_BR: torch.Tensor | None
    ) -> None:
        """Write the log-probs (and entropies) of `rows`, possibly trimmed to fewer columns, into
        `old_logp_BR` (and `entropy_BR`); rows never stored stay 0."""
        B, R = self.response_ids_BR.shape
        idx = torch.as_tensor(rows, dtype=torch.long, device=logp_BR.device)
        for name, values in (("old_logp_BR", logp_BR), ("entropy_BR", entropy_BR)):
            if values is None:
                continue
            if getattr(self, name) is None:
                setattr(self, name, torch.zeros(B, R, dtype=values.dtype, device=values.device))
            getattr(self, name)[idx, : values.shape[1]] = values


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


def score_rollout(
    model: nn.Module,
    batch: Rollout,
    micro_batch: int,
    temperature: float,
    rows: list[int] | None = None,
) -> None:
    """Fill `old_logp_BR` and `entropy_BR` with the policy's values (one forward, no gradients).

    `rows` scores only those responses and keeps the other rows' values (the on-policy update
    scores the rows it trains; this fills in the rest for the metrics).
    """
    temperature = logprob_temperature(temperature)
    sub = batch if rows is None else batch.select(rows)
    logp, ent = batched_logprobs(
        model, sub, micro_batch, temperature=temperature, with_entropy=True
    )
    if rows is None:
        batch.old_logp_BR, batch.entropy_BR = logp, ent
    else:
        batch.store_scores(rows, logp, ent)
