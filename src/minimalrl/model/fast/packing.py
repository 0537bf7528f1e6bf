"""Responses packed into fewer rows so a forward computes no padding.

A batch of B responses, right-padded to the longest, wastes (B * R - tokens) positions; with RL
rollouts capped at max_new_tokens most prompt groups hold one capped response, so every
micro-batch is as wide as the cap (14% of a GRPO update's positions on the default model).
Here short responses share a row: first-fit decreasing into rows of the longest response's width.

A packed row may hold responses to different prompts. Its key/value context is then the row's
distinct prompts side by side (from the once-per-prompt prompt cache) followed by the row's own
tokens, and a 4D boolean mask lets each response see only its own prompt and, causally, itself.
Position ids restart at each response's prompt length, so every token is computed exactly as in
its own padded row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def first_fit_decreasing(lengths: list[int]) -> tuple[list[int], list[int], int]:
    """(row, start column) of each length, and the row count, packing into rows as wide as the
    longest. Zero lengths take no room (row 0, start 0)."""
    width = max(lengths, default=0)
    free: list[int] = []
    row, start = [0] * len(lengths), [0] * len(lengths)
    for b in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        n = lengths[b]
        if n == 0:
            continue
        r = next((i for i, f in enumerate(free) if f >= n), len(free))
        if r == len(free):
            free.append(width)
        row[b], start[b] = r, width - free[r]
        free[r] -= n
    return row, start, len(free)


def packed_rows(lengths: list[int]) -> int:
    """How many rows `first_fit_decreasing` packs these lengths into."""
    return first_fit_decreasing(lengths)[2]


@dataclass
class PackedBatch:
    """The model inputs of the packed responses and where each response token's predictor is."""

    input_ids_RW: torch.Tensor
    position_ids_RW: torch.Tensor
    mask_R1WK: torch.Tensor
    """Boolean 4D attention mask over [row's prompts (slots x P) ; row's own W columns]."""
    prompt_slots_RS: torch.Tensor
    """Which prompt fills each of a row's S prompt slots (unused slots repeat one, masked out)."""
    predictor_N: torch.Tensor
    """For each response token in (response, position) order: index into
    [last prompt state of each response (B) ; packed states (R * W)]."""


def pack(
    prompt_mask_UP: torch.Tensor,
    prompt_index_B: torch.Tensor,
    response_ids_BR: torch.Tensor,
    response_mask_BR: torch.Tensor,
    pad_token_id: int = 0,
) -> PackedBatch:
    """The packed model inputs for B responses to U left-padded prompts (see the module doc).

    Needs at least one non-empty response; empty ones get no row and no predictor.
    """
    device = response_ids_BR.device
    lengths = response_mask_BR.sum(-1).tolist()
    row, start, rows = first_fit_decreasing(lengths)
    B, W, P = len(lengths), max(lengths, default=0), prompt_mask_UP.shape[1]
    prompt_of = prompt_index_B.tolist()
    slots: list[list[int]] = [[] for _ in range(rows)]
    slot = [0] * B
    for b in range(B):
        if lengths[b]:
            u, used = prompt_of[b], slots[row[b]]
            if u not in used:
                used.append(u)
            slot[b] = used.index(u)
    S = max((len(s) for s in slots), default=1)
    prompt_slots = torch.tensor([s + [s[0]] * (S - len(s)) for s in slots], dtype=torch.long)
    ids = torch.full((rows, W), pad_token_id, dtype=torch.long)
    pos = torch.zeros((rows, W), dtype=torch.long)
    mask = torch.zeros((rows, 1, W, S * P + W), dtype=torch.bool)
    # Unused columns attend to themselves only: no all-masked query row (NaN in SDPA).
    mask[:, 0, torch.arange(W), S * P + torch.arange(W)] = True
    prompt_mask = prompt_mask_UP.bool().cpu()
    prompt_len = prompt_mask.sum(-1).tolist()
    causal = torch.ones(W, W, dtype=torch.bool).tril()
    predictors = []
    response_ids = response_ids_BR.cpu()
    for b in range(B):
        n, r, s0, k = lengths[b], row[b], start[b], slot[b]
        if n == 0:
            continue
        cols = slice(s0, s0 + n)
        ids[r, cols] = response_ids[b, :n]
        pos[r, cols] = prompt_len[prompt_of[b]] + torch.arange(n)
        mask[r, 0, cols, k * P : (k + 1) * P] = prompt_mask[prompt_of[b]]
        mask[r, 0, cols, S * P + s0 : S * P + s0 + n] = causal[:n, :n]
        # token 0 is predicted by the prompt's last state, token j by the state at column j - 1
        predictors.append(torch.tensor([b]))
        predictors.append(B + r * W + s0 + torch.arange(n - 1))
    predictor = torch.cat(predictors) if predictors else torch.zeros(0, dtype=torch.long)
    return PackedBatch(
        ids.to(device), pos.to(device), mask.to(device), prompt_slots.to(device),
        predictor.to(device),
    )  # fmt: skip
