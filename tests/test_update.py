"""Micro-batch layout of the update: fewest computed positions, same rows."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from minimalrl.model.fast.allocator import keep_freed_memory
from minimalrl.policy.steps import clip_and_step, plan_micro_batches, positions
from minimalrl.rollout import Rollout


def _rollout(prompt_lengths: list[int], response_lengths: list[list[int]]) -> Rollout:
    """U prompts (left-padded) with their responses (right-padded), rows grouped by prompt."""
    P, R = max(prompt_lengths), max(max(r) for r in response_lengths)
    pmask = torch.tensor([[0] * (P - n) + [1] * n for n in prompt_lengths])
    lengths = [n for group in response_lengths for n in group]
    rmask = torch.tensor([[1] * n + [0] * (R - n) for n in lengths])
    index = torch.tensor([u for u, g in enumerate(response_lengths) for _ in g])
    return Rollout(pmask.clone(), pmask, index, rmask.clone(), rmask)


def test_long_prompts_keep_a_prompts_responses_together():
    # 2 prompts of 100 tokens, 2 responses each of lengths (10, 50) and (12, 48).
    ro = _rollout([100, 100], [[10, 50], [12, 48]])
    units = [[0], [1], [2], [3]]
    micro = plan_micro_batches(ro, units, 2)
    # by length: {0,2} and {3,1} = 2*100 + 2*12 + 2*100 + 2*50 = 524 positions;
    # by prompt: {2,3} and {0,1} = 100 + 2*48 + 100 + 2*50 = 396 positions.
    assert micro == [[2, 3], [0, 1]]
    assert sum(positions(ro, rows) for rows in micro) == 396


def test_short_prompts_sort_responses_by_length():
    # 2 prompts of 2 tokens; the short responses of both prompts pad together.
    ro = _rollout([2, 2], [[5, 60], [6, 64]])
    micro = plan_micro_batches(ro, [[0], [1], [2], [3]], 2)
    assert micro == [[0, 2], [1, 3]]  # 2*2 + 2*6 + 2*2 + 2*64 = 148 < by prompt 2+120 + 2+128
    assert sorted(r for rows in micro for r in rows) == [0, 1, 2, 3]


def test_keep_freed_memory_is_idempotent():
    import platform

    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected
    assert keep_freed_memory() is expected


def test_optimizer_step_refreshes_autocast_weights():
    """Under one bf16 autocast block, a forward after an optimizer step sees the new weights."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 8, bias=False)
    opt = torch.optim.SGD(lin.parameters(), lr=1.0)
    x = torch.randn(4, 8)
    ctx = SimpleNamespace(world_size=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        before = lin(x)
        before.sum().backward()
        clip_and_step(list(lin.parameters()), opt, 0.0, ctx, sharded=True)
        after = lin(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fresh = lin(x)
    assert torch.equal(after, fresh)
    # SGD moved each weight row by -x.sum(0), so each output by -x @ x.sum(0)
    expected_change = -(x @ x.sum(0))[:, None].expand(4, 8)
    torch.testing.assert_close((after - before).float(), expected_change, atol=0.1, rtol=0.02)
