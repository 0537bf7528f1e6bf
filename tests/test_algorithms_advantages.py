"""Keep filters and group advantages: hand-computed tables for every variant, plus properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minimalrl.algorithms import (
    ALGORITHMS,
    UnknownNameError,
    broadcast_to_tokens,
    group_advantages,
    group_outcome_stats,
    group_std,
)

T, F = True, False
S3 = 1 / math.sqrt(4 / 3)  # GRPO on [1, 1, -1, -1]: mean 0, unbiased std sqrt(4/3) -> ±0.8660

# Rows: mixed 2/4, all correct, all wrong, one correct of four.
PM1 = [[1.0, 1.0, -1.0, -1.0], [1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0], [1.0, -1, -1, -1]]
BIN = [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]
KEEP_ALL = [[T] * 4] * 4
KEEP_RAFT = [[T, T, F, F], [T, T, T, T], [F, F, F, F], [T, F, F, F]]
KEEP_MIXED = [[T] * 4, [F] * 4, [F] * 4, [T] * 4]  # rows 0 and 3
KEEP_NOT_WRONG = [[T] * 4, [T] * 4, [F] * 4, [T] * 4]
KEEP_NOT_CORRECT = [[T] * 4, [F] * 4, [T] * 4, [T] * 4]
Z = [0.0] * 4

# name -> (expected advantages, expected keep) for the ±1 table (correct 1, wrong -1).
EXPECTED_PM1 = {
    "raft": ([[1, 1, 0, 0], [1, 1, 1, 1], Z, [1, 0, 0, 0]], KEEP_RAFT),
    "raft++": ([[1, 1, 0, 0], [1, 1, 1, 1], Z, [1, 0, 0, 0]], KEEP_RAFT),
    "raft++_no_clip": ([[1, 1, 0, 0], [1, 1, 1, 1], Z, [1, 0, 0, 0]], KEEP_RAFT),
    "reinforce": (PM1, KEEP_ALL),
    "ppo": (PM1, KEEP_ALL),
    "reinforce_rej": ([PM1[0], Z, Z, PM1[3]], KEEP_MIXED),
    "iterative_dpo": ([PM1[0], Z, Z, PM1[3]], KEEP_MIXED),
    "reinforce_band": ([PM1[0], Z, Z, PM1[3]], KEEP_MIXED),
    # row 3: mean -0.5, deviations (1.5, -0.5, -0.5, -0.5), unbiased var 3/3 = 1 -> std 1
    "reinforce_rej_std": ([[S3, S3, -S3, -S3], Z, Z, [1, -1, -1, -1]], KEEP_MIXED),
    "reinforce_drop_all_wrong": ([PM1[0], PM1[1], Z, PM1[3]], KEEP_NOT_WRONG),
    "reinforce_drop_all_correct": ([PM1[0], Z, PM1[2], PM1[3]], KEEP_NOT_CORRECT),
    "reinforce_mean": ([PM1[0], Z, Z, [1.5, -0.5, -0.5, -0.5]], KEEP_ALL),
    "grpo": ([[S3, S3, -S3, -S3], Z, Z, [1.5, -0.5, -0.5, -0.5]], KEEP_ALL),
}

# The same for 0/1 rewards (correct 1, wrong 0).
# row 0: mean 0.5, unbiased std sqrt(1/3) = 0.57735; row 3: mean 0.25, unbiased std 0.5.
R3 = 1 / math.sqrt(1 / 3)
EXPECTED_BIN = {
    "raft": ([[1, 1, 0, 0], [1, 1, 1, 1], Z, [1, 0, 0, 0]], KEEP_RAFT),
    "raft++": ([[1, 1, 0, 0], [1, 1, 1, 1], Z, [1, 0, 0, 0]], KEEP_RAFT),
    "raft++_no_clip": ([[1, 1, 0, 0], [1, 1, 1, 1], Z, [1, 0, 0, 0]], KEEP_RAFT),
    "reinforce": (BIN, KEEP_ALL),
    "ppo": (BIN, KEEP_ALL),
    "reinforce_rej": ([BIN[0], Z, Z, BIN[3]], KEEP_MIXED),
    "iterative_dpo": ([BIN[0], Z, Z, BIN[3]], KEEP_MIXED),
    "reinforce_band": ([BIN[0], Z, Z, BIN[3]], KEEP_MIXED),
    "reinforce_rej_std": ([[R3, R3, 0, 0], Z, Z, [2, 0, 0, 0]], KEEP_MIXED),
    "reinforce_drop_all_wrong": ([BIN[0], BIN[1], Z, BIN[3]], KEEP_NOT_WRONG),
    "reinforce_drop_all_correct": ([BIN[0], Z, BIN[2], BIN[3]], KEEP_NOT_CORRECT),
    "reinforce_mean": ([[0.5, 0.5, -0.5, -0.5], Z, Z, [0.75, -0.25, -0.25, -0.25]], KEEP_ALL),
    "grpo": ([[S3, S3, -S3, -S3], Z, Z, [1.5, -0.5, -0.5, -0.5]], KEEP_ALL),
}


def _check(name, rewards, expected, **kwargs):
    advantages_PG, keep_PG = group_advantages(name, torch.tensor(rewards), **kwargs)
    expected_adv, expected_keep = expected
    assert keep_PG.dtype == torch.bool
    assert keep_PG.tolist() == expected_keep
    torch.testing.assert_close(advantages_PG, torch.tensor(expected_adv).float(), atol=1e-5, rtol=0)


def test_every_group_rule_has_hand_computed_tables():
    from test_algorithms_axes import EXPECTED as AXES  # rloo, dr_grpo, lite_ppo, reinforce_pp

    assert set(EXPECTED_PM1) == set(EXPECTED_BIN)
    zero = {f"{name}_zero" for name in EXPECTED_PM1 if f"{name}_zero" in ALGORITHMS}
    grpo_like = {"dapo", "gspo", "cispo"}  # GRPO's advantage (dapo: tests/test_algorithms_axes)
    assert set(ALGORITHMS) == set(EXPECTED_PM1) | set(AXES) | zero | grpo_like
    for name in zero:  # the zero-mode variants have their base's filter and advantage
        base, variant = ALGORITHMS[name.removesuffix("_zero")], ALGORITHMS[name]
        assert (variant.keep, variant.advantage) == (base.keep, base.advantage)
        assert variant.loss is base.loss
        assert variant.presets == {"filtered": "zero"}
    for name in grpo_like:
        assert ALGORITHMS[name].advantage is ALGORITHMS["grpo"].advantage


@pytest.mark.parametrize("name", sorted(EXPECTED_PM1))
def test_plus_minus_one_rewards(name):
    _check(name, PM1, EXPECTED_PM1[name], correct_reward=1.0)


@pytest.mark.parametrize("name", sorted(EXPECTED_BIN))
def test_zero_one_rewards(name):
    _check(name, BIN, EXPECTED_BIN[name], correct_PG=torch.tensor(BIN) == 1)


# G = 1: one correct, one wrong prompt. Std is taken as 0, so GRPO and mean-baselines give 0.
EXPECTED_G1 = {
    "raft": ([[1], [0]], [[T], [F]]),
    "raft++": ([[1], [0]], [[T], [F]]),
    "raft++_no_clip": ([[1], [0]], [[T], [F]]),
    "reinforce": ([[1], [-1]], [[T], [T]]),
    "ppo": ([[1], [-1]], [[T], [T]]),
    "reinforce_rej": ([[0], [0]], [[F], [F]]),
    "reinforce_rej_std": ([[0], [0]], [[F], [F]]),
    "reinforce_band": ([[0], [0]], [[F], [F]]),
    "iterative_dpo": ([[0], [0]], [[F], [F]]),
    "reinforce_drop_all_wrong": ([[1], [0]], [[T], [F]]),
    "reinforce_drop_all_correct": ([[0], [-1]], [[F], [T]]),
    "reinforce_mean": ([[0], [0]], [[T], [T]]),
    "grpo": ([[0], [0]], [[T], [T]]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_G1))
def test_group_size_one(name):
    _check(name, [[1.0], [-1.0]], EXPECTED_G1[name])
    advantages_PG, _ = group_advantages(name, torch.tensor([[1.0], [-1.0]]))
    assert torch.isfinite(advantages_PG).all()


def test_group_std_is_unbiased_and_zero_for_one_sample():
    torch.testing.assert_close(
        group_std(torch.tensor([[1.0, 1.0, -1.0, -1.0]])), torch.tensor([[math.sqrt(4 / 3)]])
    )
    assert group_std(torch.tensor([[3.0], [5.0]])).tolist() == [[0.0], [0.0]]


@pytest.mark.parametrize(
    ("lo", "hi", "kept_rows"),
    [
        (None, None, [0, 3]),  # open band (0, 1): Reinforce-Rej
        (0.25, 0.5, [0, 3]),  # inclusive edges: p = 0.5 and p = 0.25
        (0.5, 1.0, [0, 1]),
        (0.0, 1.0, [0, 1, 2, 3]),
        (0.0, None, [0, 2, 3]),  # p < 1
        (0.3, 0.4, []),
    ],
)
def test_reinforce_band(lo, hi, kept_rows):
    advantages_PG, keep_PG = group_advantages("reinforce_band", torch.tensor(PM1), lo=lo, hi=hi)
    assert keep_PG.all(dim=-1).nonzero().flatten().tolist() == kept_rows
    assert (keep_PG.any(dim=-1) == keep_PG.all(dim=-1)).all()  # whole prompts
    expected = torch.tensor(PM1) * keep_PG
    torch.testing.assert_close(advantages_PG, expected)


def test_band_edges_one_third_compare_exactly():
    rewards_PG = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    _, keep_PG = group_advantages("reinforce_band", rewards_PG, lo=1 / 3, hi=1 / 3)
    assert keep_PG[:, 0].tolist() == [True, False]


def test_raft_keeps_only_top_reward_when_correct_with_partial_credit():
    rewards_PG = torch.tensor([[0.5, 1.0, 1.5], [0.5, 0.2, 0.5]])
    advantages_PG, keep_PG = group_advantages("raft", rewards_PG)  # correct: reward >= 1
    assert keep_PG.tolist() == [[F, F, T], [F, F, F]]  # row 1's best (0.5) is not correct
    correct_PG = torch.tensor([[T, T, F], [F, F, F]])  # a verdict the reward does not follow
    _, keep_PG = group_advantages("raft", rewards_PG, correct_PG=correct_PG)
    assert keep_PG.tolist() == [[F, F, F], [F, F, F]]  # the top reward is not a correct one
    assert advantages_PG.tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_integer_rewards_are_accepted():
    advantages_PG, _ = group_advantages("grpo", torch.tensor([[1, 1, -1, -1]]))
    assert advantages_PG.is_floating_point()
    torch.testing.assert_close(advantages_PG, torch.tensor([[S3, S3, -S3, -S3]]), atol=1e-5, rtol=0)


def test_errors():
    with pytest.raises(ValueError, match="grpo") as info:
        group_advantages("nope", torch.tensor(PM1))
    assert isinstance(info.value, UnknownNameError)
    for name in ALGORITHMS:
        assert repr(name) in str(info.value)
    with pytest.raises(ValueError, match=r"\(P, G\)"):
        group_advantages("grpo", torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="correct_PG"):
        group_advantages("grpo", torch.tensor(PM1), correct_PG=torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="lo <= hi"):
        group_advantages("reinforce_band", torch.tensor(PM1), lo=0.8, hi=0.2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        group_advantages("reinforce_band", torch.tensor(PM1), lo=-0.1)


def test_group_outcome_stats():
    stats = group_outcome_stats(torch.tensor(BIN) == 1)
    assert stats == {"frac_all_correct": 0.25, "frac_all_wrong": 0.25, "frac_mixed": 0.5}


def test_broadcast_to_tokens():
    mask_BT = torch.tensor([[1, 1, 0], [1, 0, 0]])
    values_BT = broadcast_to_tokens(torch.tensor([0.5, -2.0]), mask_BT)
    assert values_BT.tolist() == [[0.5, 0.5, 0.0], [-2.0, 0.0, 0.0]]


# --- properties -----------------------------------------------------------------------------------

binary_tables = st.integers(1, 5).flatmap(
    lambda g: st.lists(st.lists(st.booleans(), min_size=g, max_size=g), min_size=1, max_size=6)
)


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(
    table=binary_tables,
    a=st.floats(0.1, 10.0),
    b=st.floats(-10.0, 10.0),
)
def test_grpo_and_every_filter_invariant_to_affine_reward_change(table, a, b):
    correct_PG = torch.tensor(table, dtype=torch.float64)
    base_PG = 2 * correct_PG - 1  # ±1
    moved_PG = a * base_PG + b  # correct -> a + b, wrong -> -a + b
    verdicts_PG = correct_PG.bool()
    one_per_filter = {alg.keep: name for name, alg in ALGORITHMS.items()}.values()
    for name in one_per_filter:
        base_adv, base_keep = group_advantages(name, base_PG, correct_PG=verdicts_PG)
        moved_adv, moved_keep = group_advantages(name, moved_PG, correct_PG=verdicts_PG)
        assert torch.equal(base_keep, moved_keep), name
    base_adv, _ = group_advantages("grpo", base_PG)
    moved_adv, _ = group_advantages("grpo", moved_PG, correct_PG=verdicts_PG)
    torch.testing.assert_close(moved_adv, base_adv, atol=1e-4, rtol=0)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    table=st.integers(1, 5).flatmap(
        lambda g: st.lists(
            st.lists(st.sampled_from([-1.0, 0.0, 0.5, 1.0]), min_size=g, max_size=g),
            min_size=1,
            max_size=6,
        )
    )
)
def test_reinforce_rej_never_keeps_an_all_equal_prompt(table):
    rewards_PG = torch.tensor(table)
    advantages_PG, keep_PG = group_advantages("reinforce_rej", rewards_PG)
    all_equal_P = (rewards_PG == rewards_PG[:, :1]).all(dim=-1)
    assert not (keep_PG.any(dim=-1) & all_equal_P).any()
    assert torch.equal(keep_PG.all(dim=-1), ~all_equal_P)  # and keeps every other prompt whole
    assert (advantages_PG[~keep_PG] == 0).all()
