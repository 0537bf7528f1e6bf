"""The registry: every algorithm of PAPER.md is a record, and one generic step runs them all."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from minimalrl.algorithms import (
    ALGORITHMS,
    POLICY_LOSSES,
    Algorithm,
    UnknownNameError,
    broadcast_to_tokens,
    clipped_value_loss,
    describe_registry,
    filter_and_advantages,
    gae,
    get_algorithm,
    get_policy_loss,
    group_advantages,
    keep_all,
    make_preference_pairs,
    mean_std_normalised,
    pair_indices,
    place_on_last_token,
    whiten,
)

NAMES = [
    "raft",
    "raft++",
    "raft++_no_clip",
    "reinforce",
    "reinforce_rej",
    "reinforce_rej_std",
    "reinforce_drop_all_wrong",
    "reinforce_drop_all_correct",
    "reinforce_mean",
    "reinforce_band",
    "grpo",
    "ppo",
    "iterative_dpo",
    "reinforce_rej_zero",
    "reinforce_rej_std_zero",
    "reinforce_drop_all_wrong_zero",
    "reinforce_drop_all_correct_zero",
    "rloo",
    "dr_grpo",
    "lite_ppo",
    "reinforce_pp",
    "dapo",
    "gspo",
    "cispo",
]


def test_every_algorithm_is_registered():
    assert sorted(ALGORITHMS) == sorted(NAMES)
    for algorithm in ALGORITHMS.values():
        assert callable(algorithm.keep) and callable(algorithm.advantage)
        assert algorithm.loss in POLICY_LOSSES.values()
        assert algorithm.description


def test_records_match_the_paper():
    assert get_algorithm("raft").loss is POLICY_LOSSES["sft"]
    assert get_algorithm("raft++").loss is POLICY_LOSSES["clipped"]
    assert get_algorithm("raft++_no_clip").loss is POLICY_LOSSES["is_no_clip"]
    ppo = get_algorithm("ppo")
    assert (ppo.needs_critic, ppo.loss) == (True, POLICY_LOSSES["clipped"])
    dpo = get_algorithm("iterative_dpo")
    assert (dpo.loss, dpo.needs_pairs, dpo.needs_reference) == (POLICY_LOSSES["dpo"], True, True)
    grpo = get_algorithm("grpo")
    assert (grpo.keep, grpo.advantage) == (keep_all, mean_std_normalised)
    assert get_algorithm("raft").reads_advantages and grpo.reads_advantages  # RAFT: A = 1 kept
    assert not get_algorithm("iterative_dpo").reads_advantages
    assert get_algorithm("grpo").min_group_size == 2
    assert get_algorithm("reinforce_rej").min_group_size == 2
    assert get_algorithm("reinforce").min_group_size == 1
    others = [a for name, a in ALGORITHMS.items() if name not in ("ppo", "iterative_dpo")]
    assert not any(a.needs_critic or a.needs_pairs or a.needs_reference for a in others)


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError) as info:
        get_algorithm("vapo")
    assert isinstance(info.value, ValueError) and isinstance(info.value, UnknownNameError)
    message = str(info.value)
    assert "'vapo'" in message and all(repr(name) in message for name in NAMES)
    with pytest.raises(ValueError, match="'clipped'"):
        get_policy_loss("ppo_loss")


def test_describe_registry_mentions_every_name():
    table = describe_registry()
    lines = table.splitlines()
    assert lines[0].startswith("| name") and "samples kept" in lines[0] and "critic/ref" in lines[0]
    assert len(lines) == 2 + len(NAMES)
    for name in NAMES:
        assert any(line.startswith(f"| {name} ") for line in lines)


def test_records_are_frozen_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_algorithm("grpo").loss = POLICY_LOSSES["sft"]
    with pytest.raises(ValueError, match="POLICY_LOSSES"):
        Algorithm(keep_all, mean_std_normalised, lambda *a, **k: None)
    with pytest.raises(ValueError, match="min_group_size"):
        Algorithm(keep_all, mean_std_normalised, POLICY_LOSSES["clipped"], min_group_size=0)


def test_a_loss_gets_the_settings_it_names_and_refuses_unknown_ones():
    logp_BT = torch.zeros(1, 2)
    sft = POLICY_LOSSES["sft"]
    assert sft.reads >= {"logp_BT", "mask_BT", "agg"} and "clip_low" not in sft.reads
    sft(logp_BT, logp_BT, logp_BT, torch.ones(1, 2), clip_low=0.1, dpo_beta=0.5)  # ignored
    with pytest.raises(TypeError, match="clip_lo"):
        POLICY_LOSSES["clipped"](logp_BT, logp_BT, logp_BT, torch.ones(1, 2), clip_lo=0.1)


# --- one generic step, no algorithm-specific `if` -------------------------------------------------


def _generic_step(algorithm, rewards_PG, logp_BT, old_logp_BT, mask_BT, values_BT):
    """What a trainer does with a record: branches on its fields only, never on its name."""
    group_size = rewards_PG.shape[1]
    correct_PG = rewards_PG == 1.0
    advantages_PG, keep_PG = filter_and_advantages(
        algorithm.keep, algorithm.advantage, rewards_PG, correct_PG
    )
    keep_B = keep_PG.flatten()
    if algorithm.needs_critic:
        token_rewards_BT = place_on_last_token(rewards_PG.flatten(), mask_BT)
        advantages_BT, returns_BT = gae(token_rewards_BT, values_BT, mask_BT)
        advantages_BT = whiten(advantages_BT, mask_BT)
    else:
        advantages_BT = broadcast_to_tokens(advantages_PG.flatten(), mask_BT)
    rows = keep_B.nonzero().flatten()
    if algorithm.needs_pairs:
        pairs = make_preference_pairs(correct_PG, random.Random(0))
        rows = torch.cat(pair_indices(pairs, group_size))
    loss, metrics = algorithm.loss(
        logp_BT[rows],
        old_logp_BT[rows],
        advantages_BT[rows],
        mask_BT[rows],
        clip_low=0.2,
        clip_high=0.28,
        dual_clip=3.0,
        dpo_beta=0.1,
        agg="token_mean",
        num_tokens=None,
        num_seqs=None,
    )
    if algorithm.needs_critic:
        value_loss, _ = clipped_value_loss(values_BT, values_BT.detach(), returns_BT, mask_BT)
        loss = loss + value_loss
    return loss, metrics


@pytest.mark.parametrize("name", NAMES)
def test_every_algorithm_runs_through_one_generic_step(name):
    gen = torch.Generator().manual_seed(0)
    rewards_PG = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    batch, steps = rewards_PG.numel(), 5
    logp_BT = (-torch.rand(batch, steps, generator=gen)).requires_grad_()
    old_logp_BT = logp_BT.detach() + 0.1 * torch.randn(batch, steps, generator=gen)
    mask_BT = torch.arange(steps) < torch.randint(1, steps + 1, (batch, 1), generator=gen)
    values_BT = torch.randn(batch, steps, generator=gen).requires_grad_()
    loss, metrics = _generic_step(
        get_algorithm(name), rewards_PG, logp_BT, old_logp_BT, mask_BT, values_BT
    )
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert all(value.ndim == 0 and not value.requires_grad for value in metrics.values())
    loss.backward()
    assert logp_BT.grad is not None and logp_BT.grad.abs().sum() > 0


@pytest.mark.parametrize("loss_name", sorted(POLICY_LOSSES))
def test_every_policy_loss_accepts_an_empty_batch(loss_name):
    """All responses filtered out (e.g. RAFT on an all-wrong batch): loss 0, backward works."""
    logp_BT = torch.zeros(0, 4, requires_grad=True)
    loss, metrics = POLICY_LOSSES[loss_name](
        logp_BT, torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0, 4, dtype=torch.bool)
    )
    loss.backward()
    assert loss.item() == 0.0
    assert all(torch.isfinite(value) for value in metrics.values())


def test_readme_table_is_the_registry():
    """The README's algorithm table is what `minimalrl algorithms` prints (RAFT keeps every
    correct response, not one best response per prompt)."""
    from pathlib import Path

    from minimalrl.algorithms.registry import describe_registry

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert describe_registry() in readme
    raft = next(line for line in describe_registry().splitlines() if line.startswith("| raft "))
    assert "Every correct response" in raft
    _, keep = group_advantages("raft", torch.tensor([[1.0, 1.0, -1.0, 1.0]]))
    assert keep.tolist() == [[True, True, False, True]]


def test_reinforce_band_default_filters_and_a_keep_all_band_is_refused():
    from minimalrl.config import ConfigError, TrainConfig

    cfg = TrainConfig(algo="reinforce_band")
    # 8 samples: 0, 1, 4, 7 and 8 correct out of 8
    rewards = torch.tensor([[1.0] * k + [-1.0] * (8 - k) for k in (0, 1, 4, 7, 8)])
    _, keep = group_advantages("reinforce_band", rewards, lo=cfg.band_lo, hi=cfg.band_hi)
    assert keep.any(-1).tolist() == [False, False, True, False, False]
    with pytest.raises(ConfigError, match="this band keeps every prompt"):
        TrainConfig(algo="reinforce_band", band_lo=0.0, band_hi=1.0)
    TrainConfig(algo="grpo", band_lo=0.0, band_hi=1.0)  # unused by other algorithms


def test_config_docs_name_the_paper_codes_values():
    """Where a default differs from the paper's released code, the field's docstring says so."""
    from minimalrl.config_file import field_docs

    docs = field_docs()
    assert "0.5" in docs["value_clip"] and "verl" in docs["value_clip"]
    assert "c = 3" in docs["dual_clip"]
    assert "[−10, 10]" in docs["kl_estimator"]
    assert "0.01" in docs["weight_decay"] and "0.01" in docs["critic_weight_decay"]
