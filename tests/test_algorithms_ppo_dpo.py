"""PPO (GAE, whitening, value loss) and DPO (loss, preference pairs): loops and hand values."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F

from minimalrl.algorithms import (
    clipped_value_loss,
    dpo_loss,
    dpo_policy_loss,
    gae,
    make_preference_pairs,
    pair_indices,
    place_on_last_token,
    whiten,
)

# --- GAE ------------------------------------------------------------------------------------------


def _gae_loop(rewards, values, valid, gamma, lam):
    """Plain Python GAE over each row's contiguous valid tokens."""
    batch, steps = len(rewards), len(rewards[0])
    advantages = [[0.0] * steps for _ in range(batch)]
    for b in range(batch):
        positions = [t for t in range(steps) if valid[b][t]]
        next_value, next_advantage = 0.0, 0.0
        for t in reversed(positions):
            delta = rewards[b][t] + gamma * next_value - values[b][t]
            next_advantage = delta + gamma * lam * next_advantage
            next_value = values[b][t]
            advantages[b][t] = next_advantage
    returns = [
        [advantages[b][t] + (values[b][t] if valid[b][t] else 0.0) for t in range(steps)]
        for b in range(batch)
    ]
    return advantages, returns


@pytest.mark.parametrize(("gamma", "lam"), [(1.0, 1.0), (0.99, 0.95), (0.9, 0.5), (1.0, 0.0)])
@pytest.mark.parametrize("left_padded", [False, True])
def test_gae_matches_python_loop(gamma, lam, left_padded):
    gen = torch.Generator().manual_seed(0)
    batch, steps = 5, 7
    rewards = torch.randn(batch, steps, generator=gen, dtype=torch.float64)
    values = torch.randn(batch, steps, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 0, 1, 5])
    positions = torch.arange(steps)
    start = (steps - lengths if left_padded else torch.zeros_like(lengths))[:, None]
    mask = (positions >= start) & (positions < start + lengths[:, None])
    advantages, returns = gae(rewards, values, mask, gamma=gamma, lam=lam)
    expected_adv, expected_ret = _gae_loop(
        rewards.tolist(), values.tolist(), mask.tolist(), gamma, lam
    )
    torch.testing.assert_close(advantages, torch.tensor(expected_adv, dtype=torch.float64))
    torch.testing.assert_close(returns, torch.tensor(expected_ret, dtype=torch.float64))
    assert (advantages[~mask] == 0).all() and (returns[~mask] == 0).all()


def test_gae_outcome_reward_gamma_lambda_one_by_hand():
    mask = torch.tensor([[1, 1, 1, 0]])
    rewards = place_on_last_token(torch.tensor([2.0]), mask)
    assert rewards.tolist() == [[0.0, 0.0, 2.0, 0.0]]
    values = torch.tensor([[0.5, 1.0, 1.5, 99.0]], requires_grad=True)
    advantages, returns = gae(rewards, values, mask)
    assert advantages.tolist() == [[1.5, 1.0, 0.5, 0.0]]  # A_t = R − V_t
    assert returns.tolist() == [[2.0, 2.0, 2.0, 0.0]]
    assert not advantages.requires_grad


def test_place_on_last_token_empty_row_and_left_padding():
    mask = torch.tensor([[0, 0, 0], [0, 1, 1], [1, 0, 0]])
    rewards = place_on_last_token(torch.tensor([5.0, 1.0, -1.0]), mask)
    assert rewards.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]]


def test_whiten():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    values = torch.tensor([[1.0, 2.0, 50.0], [3.0, -7.0, 8.0]])
    # valid: 1, 2, 3 -> mean 2, unbiased var 1
    torch.testing.assert_close(whiten(values, mask), torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0, 0]]))
    torch.testing.assert_close(
        whiten(values, mask, shift_mean=False), torch.tensor([[1.0, 2.0, 0.0], [3.0, 0, 0]])
    )
    single = whiten(torch.tensor([[4.0, 1.0]]), torch.tensor([[1, 0]]))
    assert single.tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize(
    ("value", "target", "loss", "grad"),
    [
        (1.5, 2.0, 0.5 * 0.8**2, 0.0),  # clip(V) = 1.2 is farther from R: clipped term, no grad
        (1.5, 1.0, 0.5 * 0.5**2, 0.5),  # unclipped term is larger: gradient V − R
        (1.1, 2.0, 0.5 * 0.9**2, -0.9),  # inside the band: both equal
    ],
)
def test_clipped_value_loss_by_hand(value, target, loss, grad):
    values = torch.tensor([[value, 0.0]], requires_grad=True)
    got, metrics = clipped_value_loss(
        values, torch.tensor([[1.0, 0.0]]), torch.tensor([[target, 9.0]]), torch.tensor([[1, 0]])
    )
    got.backward()
    assert got.item() == pytest.approx(loss)
    assert values.grad[0, 0].item() == pytest.approx(grad)
    assert values.grad[0, 1].item() == 0.0
    assert metrics["value_clip_fraction"].item() == (1.0 if grad == 0.0 else 0.0)


# --- DPO ------------------------------------------------------------------------------------------


def test_dpo_loss_by_hand():
    beta = 0.1
    pc, pr = torch.tensor([-1.0, -4.0], requires_grad=True), torch.tensor([-2.0, -3.0])
    rc, rr = torch.tensor([-1.5, -3.0]), torch.tensor([-1.5, -3.5])
    loss, metrics = dpo_loss(pc, pr, rc, rr, beta=beta)
    margins = [beta * ((-1 + 1.5) - (-2 + 1.5)), beta * ((-4 + 3) - (-3 + 3.5))]  # 0.1, -0.15
    expected = sum(math.log1p(math.exp(-m)) for m in margins) / 2
    assert loss.item() == pytest.approx(expected)
    assert metrics["reward_margin"].item() == pytest.approx(sum(margins) / 2)
    assert metrics["accuracy"].item() == 0.5
    assert metrics["chosen_reward"].item() == pytest.approx((0.05 - 0.1) / 2)
    assert metrics["rejected_reward"].item() == pytest.approx((-0.05 + 0.05) / 2)
    loss.backward()
    sig = [1 / (1 + math.exp(-m)) for m in margins]
    expected_grad = [-beta * (1 - s) / 2 for s in sig]  # raising log π_θ(a⁺) lowers the loss
    torch.testing.assert_close(pc.grad, torch.tensor(expected_grad))


def test_dpo_loss_empty_and_num_pairs():
    empty = torch.zeros(0)
    loss, metrics = dpo_loss(empty, empty, empty, empty)
    assert loss.item() == 0.0 and metrics["accuracy"].item() == 0.0
    args = [torch.tensor([-1.0, -2.0]), torch.tensor([-2.0, -1.0]), torch.zeros(2), torch.zeros(2)]
    full, _ = dpo_loss(*args)
    first, _ = dpo_loss(*(a[:1] for a in args), num_pairs=2)
    second, _ = dpo_loss(*(a[1:] for a in args), num_pairs=2)
    torch.testing.assert_close(first + second, full)


def test_dpo_policy_loss_layout():
    logp = torch.tensor(
        [[-1.0, -0.5, -7.0], [-2.0, -9.0, -9.0], [-0.2, -0.3, -9.0], [-1.0, -1.0, -1.0]]
    )
    ref = torch.full_like(logp, -0.5)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]])
    loss, _ = dpo_policy_loss(logp, ref, mask, dpo_beta=0.5)
    seq = (logp * mask).sum(-1)
    ref_seq = (ref * mask).sum(-1)
    margin = 0.5 * ((seq[:2] - ref_seq[:2]) - (seq[2:] - ref_seq[2:]))
    torch.testing.assert_close(loss, -F.logsigmoid(margin).mean())
    with pytest.raises(ValueError, match="chosen rows then rejected"):
        dpo_policy_loss(logp[:3], ref[:3], mask[:3])


REWARDS = torch.tensor(
    [[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
CORRECT = REWARDS == 1.0


@pytest.mark.parametrize("make_rng", [random.Random, lambda s: torch.Generator().manual_seed(s)])
def test_preference_pairs_deterministic_and_correct(make_rng):
    pairs = make_preference_pairs(CORRECT, make_rng(7))
    assert pairs == make_preference_pairs(CORRECT, make_rng(7))
    assert [p for p, _, _ in pairs] == [0, 3]  # only prompts with a correct and a wrong response
    for prompt, chosen, rejected in pairs:
        assert REWARDS[prompt, chosen] == 1.0 and REWARDS[prompt, rejected] == 0.0
    seen = {make_preference_pairs(CORRECT, make_rng(seed))[0][1:] for seed in range(40)}
    assert seen == {(0, 1), (0, 3), (2, 1), (2, 3)}  # uniform over correct × wrong of prompt 0


def test_preference_pairs_read_verdicts_and_errors():
    correct = torch.tensor([[False, True, False]])  # "wrong" = not correct, whatever the reward
    pairs = make_preference_pairs(correct, random.Random(0))
    assert pairs[0][1] == 1 and pairs[0][2] in (0, 2)
    with pytest.raises(TypeError, match="Generator"):
        make_preference_pairs(CORRECT, 3)
    with pytest.raises(ValueError, match=r"\(P, G\)"):
        make_preference_pairs(CORRECT[0], random.Random(0))


def test_pair_indices():
    chosen, rejected = pair_indices([(0, 2, 1), (3, 3, 0)], group_size=4)
    assert chosen.tolist() == [2, 15] and rejected.tolist() == [1, 12]
