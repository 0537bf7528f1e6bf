"""The algorithm axes (advantage baseline × scale, clip-higher, dual clip, CISPO, GSPO, Dr. GRPO's
aggregation, drop vs zero, dynamic sampling): each formula against hand-computed numbers, and the
loss and its gradient unchanged when a batch is split into micro-batches or over 2 ranks."""

from __future__ import annotations

import math
import socket

import pytest
import torch
import torch.multiprocessing as mp

from minimalrl.algorithms import (
    AGGREGATIONS,
    POLICY_LOSSES,
    aggregate,
    dynamic_sampling_take,
    group_advantages,
    normalised,
)
from minimalrl.config import ConfigError, TrainConfig

T, F = True, False
# Two prompts of four: 5 of the 8 rewards are 1. Batch mean 5/8; unbiased batch variance
# (5·(3/8)² + 3·(5/8)²) / 7 = 120/448, std 0.5175492.
R = [[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]]
BSTD = math.sqrt(120 / 448)
EXPECTED = {
    # leave-one-out: r − mean of the other three = 4/3·(r − mean)
    "rloo": [[2 / 3, -2 / 3, -2 / 3, 2 / 3], [1 / 3, 1 / 3, 1 / 3, -1.0]],
    "dr_grpo": [[0.5, -0.5, -0.5, 0.5], [0.25, 0.25, 0.25, -0.75]],  # r − mean, no std
    "lite_ppo": [[0.5 / BSTD, -0.5 / BSTD, -0.5 / BSTD, 0.5 / BSTD],
                 [0.25 / BSTD, 0.25 / BSTD, 0.25 / BSTD, -0.75 / BSTD]],
    "reinforce_pp": [[3 / 8 / BSTD, -5 / 8 / BSTD, -5 / 8 / BSTD, 3 / 8 / BSTD],
                     [3 / 8 / BSTD, 3 / 8 / BSTD, 3 / 8 / BSTD, -5 / 8 / BSTD]],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_group_advantages_of_the_new_rules(name):
    advantages_PG, keep_PG = group_advantages(name, torch.tensor(R), correct_reward=1.0)
    assert keep_PG.all()
    torch.testing.assert_close(advantages_PG, torch.tensor(EXPECTED[name]), atol=1e-5, rtol=0)


def test_the_advantage_grid_by_hand():
    rewards_PG = torch.tensor(R)
    # leave-one-out over the group std: row 0 has std sqrt(1/3), so 2/3 / 0.57735 = 1.1547
    loo_std = normalised("leave_one_out", "group_std")(rewards_PG)
    assert loo_std[0, 0].item() == pytest.approx((2 / 3) / (math.sqrt(1 / 3) + 1e-6), rel=1e-5)
    over_batch_std = normalised("none", "batch_std")(rewards_PG)
    assert over_batch_std[0, 0].item() == pytest.approx(1 / (BSTD + 1e-6))
    assert normalised("batch_mean")(rewards_PG)[0, 1].item() == pytest.approx(-5 / 8)
    lone = normalised("leave_one_out")(torch.tensor([[1.0], [-1.0]]))  # G = 1: no other response
    assert lone.tolist() == [[0.0], [0.0]]
    assert normalised("group_mean", "group_std") is normalised("group_mean", "group_std")
    assert normalised("leave_one_out").__doc__ == "r − mean_{j≠i} r."


def test_dapo_filters_all_equal_groups_and_normalises_like_grpo():
    rewards_PG = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    advantages_PG, keep_PG = group_advantages("dapo", rewards_PG)
    assert keep_PG.tolist() == [[T] * 4, [F] * 4]
    grpo, _ = group_advantages("grpo", rewards_PG)
    torch.testing.assert_close(advantages_PG[0], grpo[0])


def test_dynamic_sampling_takes_kept_prompts_up_to_the_missing_count():
    keep_PG = torch.tensor([[T, T], [F, F], [T, T], [T, T]])
    take_P, missing = dynamic_sampling_take(keep_PG, 2)
    assert (take_P.tolist(), missing) == ([T, F, T, F], 0)
    take_P, missing = dynamic_sampling_take(keep_PG, 5)
    assert (take_P.tolist(), missing) == ([T, F, T, T], 2)


# --- losses on one token: ratio s, advantage A ---------------------------------------------------


def _one_token(name, ratio, advantage, **settings):
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    loss, metrics = POLICY_LOSSES[name](
        logp, torch.zeros(1, 1), torch.tensor([[advantage]]), torch.ones(1, 1), **settings
    )
    loss.backward()
    return loss.item(), logp.grad.item(), metrics


def test_clip_higher_is_asymmetric():
    clip = {"clip_low": 0.2, "clip_high": 0.28}
    assert _one_token("clipped", 1.25, 1.0, **clip)[1] == pytest.approx(-1.25)  # inside 1.28
    assert _one_token("clipped", 1.30, 1.0, **clip)[1] == 0.0  # past 1 + ε_high
    assert _one_token("clipped", 0.75, -1.0, **clip)[1] == 0.0  # past 1 − ε_low
    assert _one_token("clipped", 0.85, -1.0, **clip)[1] == pytest.approx(0.85)


def test_dual_clip_floors_negative_advantages():
    # s = 5, A = −1: min(−5, −1.2) = −5, floored at c·A = −3: loss 3, no gradient
    loss, grad, metrics = _one_token("clipped", 5.0, -1.0, dual_clip=3.0)
    assert (loss, grad, metrics["clip_fraction_dual"].item()) == (pytest.approx(3.0), 0.0, 1.0)


def test_cispo_keeps_the_gradient_of_clipped_tokens():
    # s = 1.5 > 1.28: the weight is clip(s) = 1.28 (detached), loss −1.28·A·log s
    loss, grad, metrics = _one_token("cispo", 1.5, 1.0, clip_low=0.2, clip_high=0.28)
    assert loss == pytest.approx(-1.28 * math.log(1.5), rel=1e-6)
    assert grad == pytest.approx(-1.28, rel=1e-6)  # the clipped surrogate would give 0
    assert metrics["clip_fraction"].item() == 1.0
    loss, grad, _ = _one_token("cispo", 0.5, -1.0, clip_low=0.2, clip_high=0.28)
    assert grad == pytest.approx(0.8, rel=1e-6)  # weight clip(0.5) = 0.8, A = −1
    assert _one_token("cispo", 1.1, 2.0)[1] == pytest.approx(-2.2, rel=1e-6)  # inside: s·A


def test_cispo_preset_follows_the_paper_no_lower_bound_weight_capped_at_5():
    """MiniMax-M1: no lower bound on the IS weight, only the upper one tuned; the cap of 5 is
    TRL's ScaleRL recipe (`epsilon_high=5.0`, TRL's cap on the weight itself)."""
    from minimalrl.config import TrainConfig

    cfg = TrainConfig(algo="cispo").effective()
    assert (cfg.clip_low, cfg.clip_high) == (1.0, 4.0)
    preset = {"clip_low": cfg.clip_low, "clip_high": cfg.clip_high}
    # s = 0.1, A = −1: no floor, the weight stays 0.1 (the generic clip would make it 0.8)
    assert _one_token("cispo", 0.1, -1.0, **preset)[1] == pytest.approx(0.1, rel=1e-6)
    # s = 4.5: inside the cap; s = 7: capped at 5
    assert _one_token("cispo", 4.5, 1.0, **preset)[1] == pytest.approx(-4.5, rel=1e-6)
    _, grad, metrics = _one_token("cispo", 7.0, 1.0, **preset)
    assert grad == pytest.approx(-5.0, rel=1e-6) and metrics["clip_fraction"].item() == 1.0
    assert TrainConfig(algo="cispo", clip_high=0.28).effective().clip_high == 0.28  # yours wins


def test_gspo_one_ratio_per_sequence_by_hand():
    # Sequence 0: log ratios 0.1, −0.3 -> s = e^−0.1 = 0.904837, inside [0.8, 1.2]; A = 1.
    # Sequence 1: log ratios 0.5, 0.5 -> s = e^0.5 = 1.6487 > 1.2, clipped; A = 1.
    old = torch.zeros(2, 2)
    logp = torch.tensor([[0.1, -0.3], [0.5, 0.5]], requires_grad=True)
    loss, metrics = POLICY_LOSSES["gspo"](
        logp, old, torch.ones(2, 2), torch.ones(2, 2), clip_low=0.2, clip_high=0.2,
        agg="seq_mean_token_mean",
    )  # fmt: skip
    loss.backward()
    s0 = math.exp(-0.1)
    assert loss.item() == pytest.approx(-(s0 + 1.2) / 2, rel=1e-6)
    # ∂/∂logp_t of −½·s_0 = −½·s_0/2 for each token of sequence 0 (s_0 = exp(mean)); 0 for 1
    torch.testing.assert_close(logp.grad, torch.tensor([[-s0 / 4, -s0 / 4], [0.0, 0.0]]))
    assert metrics["clip_fraction"].item() == 0.5


def test_gspo_token_form_equals_the_sequence_objective():
    gen = torch.Generator().manual_seed(0)
    logp = (-torch.rand(4, 5, generator=gen)).requires_grad_()
    old = logp.detach() + 0.3 * torch.randn(4, 5, generator=gen)
    mask = torch.arange(5) < torch.tensor([[5], [3], [1], [4]])
    adv = torch.tensor([[1.0], [-0.5], [2.0], [-1.0]]).expand(4, 5)
    loss, _ = POLICY_LOSSES["gspo"](logp, old, adv, mask, agg="seq_mean_token_mean")
    (grad,) = torch.autograd.grad(loss, logp)
    logp2 = logp.detach().requires_grad_()
    log_s = torch.where(mask, logp2 - old, 0.0).sum(-1) / mask.sum(-1)
    s = log_s.exp()
    a = adv[:, 0]
    seq_loss = -torch.minimum(s * a, s.clamp(0.8, 1.2) * a).mean()
    (seq_grad,) = torch.autograd.grad(seq_loss, logp2)
    torch.testing.assert_close(loss, seq_loss)
    torch.testing.assert_close(grad, seq_grad)


def test_dr_grpo_constant_normaliser_by_hand():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    mode = "seq_mean_token_sum_norm"
    assert aggregate(values, mask, mode, max_len=4).item() == pytest.approx(10 / (2 * 4))
    assert aggregate(values, mask, mode, max_len=4, num_seqs=4).item() == pytest.approx(10 / 16)
    with pytest.raises(ValueError, match="max_len"):
        aggregate(values, mask, mode)


# --- split invariance: micro-batches and ranks ---------------------------------------------------

RATIO_LOSSES = ("clipped", "is_no_clip", "cispo", "gspo", "sft")


def _batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logp = -torch.rand(6, 7, generator=gen, dtype=torch.float64)
    old = logp + 0.2 * torch.randn(6, 7, generator=gen, dtype=torch.float64)
    adv = torch.randn(6, 1, generator=gen, dtype=torch.float64).expand(6, 7).clone()
    mask = torch.arange(7) < torch.tensor([[7], [2], [5], [1], [6], [3]])
    return logp, old, adv, mask


def _counts(mask) -> dict:
    return {"num_tokens": float(mask.sum()), "num_seqs": float(mask.shape[0]), "max_len": 8}


def _loss_and_grad(name, agg, logp, old, adv, mask, counts):
    logp = logp.clone().requires_grad_()
    settings = {"clip_low": 0.2, "clip_high": 0.28, "agg": agg, **counts}
    loss, _ = POLICY_LOSSES[name](logp, old, adv, mask, **settings)
    loss.backward()
    return loss.detach(), logp.grad


@pytest.mark.parametrize("agg", sorted(AGGREGATIONS))
@pytest.mark.parametrize("name", RATIO_LOSSES)
def test_micro_batches_sum_to_the_whole_batch(name, agg):
    logp, old, adv, mask = _batch()
    counts = _counts(mask)  # of the whole batch, as the update passes them
    whole_loss, whole_grad = _loss_and_grad(name, agg, logp, old, adv, mask, counts)
    loss, grad = 0.0, torch.zeros_like(logp)
    for rows in ([0, 1], [2], [3, 4, 5]):
        part_loss, part_grad = _loss_and_grad(
            name, agg, logp[rows], old[rows], adv[rows], mask[rows], counts
        )
        loss, grad[rows] = loss + part_loss, part_grad
    torch.testing.assert_close(loss, whole_loss)
    torch.testing.assert_close(grad, whole_grad)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, results: str) -> None:
    """Rank r holds rows 3r..3r+2; gradients all-reduced (summed), as `update` does."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    logp, old, adv, mask = _batch()
    counts = _counts(mask)  # the whole batch's counts, summed over ranks by the update
    rows = slice(3 * rank, 3 * rank + 3)
    out = {}
    for name in RATIO_LOSSES:
        for agg in AGGREGATIONS:
            loss, grad = _loss_and_grad(
                name, agg, logp[rows], old[rows], adv[rows], mask[rows], counts
            )
            full = torch.zeros_like(logp)
            full[rows] = grad  # this rank's rows; the other rank fills the rest
            both = torch.cat([loss.view(1), full.flatten()])
            dist.all_reduce(both)
            out[name, agg] = both
    if rank == 0:
        torch.save(out, results)
    dist.destroy_process_group()


def test_two_ranks_give_the_whole_batch_loss_and_gradient(tmp_path):
    mp.spawn(_rank, args=(_free_port(), str(tmp_path / "out.pt")), nprocs=2, join=True)
    out = torch.load(tmp_path / "out.pt")
    logp, old, adv, mask = _batch()
    for (name, agg), both in out.items():
        loss, grad = _loss_and_grad(name, agg, logp, old, adv, mask, _counts(mask))
        torch.testing.assert_close(both[0], loss, msg=f"{name} {agg}")
        torch.testing.assert_close(both[1:].view_as(grad), grad, msg=f"{name} {agg}")


# --- configs that make no sense are refused by name -----------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"algo": "grpo", "dynamic_sampling": True}, "dynamic_sampling: grpo's filter keeps every"),
        ({"algo": "rloo", "samples_per_prompt": 1}, "leave_one_out needs samples_per_prompt >= 2"),
        ({"algo": "reinforce", "advantage_baseline": "leave_one_out", "samples_per_prompt": 1},
         "advantage_baseline = leave_one_out"),
        ({"algo": "iterative_dpo", "filtered": "zero"}, "filtered = zero: iterative_dpo"),
        ({"algo": "raft", "policy_loss": "clipped"}, "policy_loss: raft trains without a π_old"),
        ({"algo": "iterative_dpo", "policy_loss": "gspo"}, "policy_loss: iterative_dpo"),
        ({"algo": "grpo", "policy_loss": "dpo"}, "policy_loss must be one of"),
        ({"algo": "ppo", "advantage_scale": "batch_std"}, "ppo has no group advantage"),
        ({"algo": "grpo", "advantage_baseline": "median"}, "advantage_baseline must be one of"),
        ({"algo": "dr_grpo", "loss_agg_max_len": -1}, "loss_agg_max_len must be >= 0"),
        ({"algo": "gspo", "rollout_correction": "tis"},
         "rollout_correction = tis with algo = gspo: GSPO weighs each response by one"),
        ({"algo": "grpo", "policy_loss": "gspo", "rollout_correction": "token_mask"},
         "rollout_correction = token_mask with policy_loss = gspo"),
        ({"algo": "raft", "rollout_correction": "tis"}, "rollout_correction = tis: raft's loss"),
        ({"algo": "iterative_dpo", "rollout_correction": "seq_mask"},
         "rollout_correction = seq_mask: iterative_dpo's loss"),
        ({"algo": "grpo", "rollout_correction": "is"}, "rollout_correction must be one of"),
        ({"algo": "grpo", "rollout_correction_cap": 0.5}, "rollout_correction_cap must be >= 1"),
        ({"algo": "grpo", "rollout_correction_min": 1.0}, "0 <= rollout_correction_min < 1 <"),
        ({"algo": "grpo", "rollout_correction_max": 1.0}, "0 <= rollout_correction_min < 1 <"),
    ],
)  # fmt: skip
def test_nonsense_combinations_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_named_variants_fill_only_default_fields():
    dapo = TrainConfig(algo="dapo")
    assert (dapo.clip_high, dapo.dynamic_sampling) == (0.2, False)  # as written
    assert (dapo.effective().clip_high, dapo.effective().dynamic_sampling) == (0.28, True)
    assert TrainConfig(algo="dapo", clip_high=0.3).effective().clip_high == 0.3  # yours wins
    assert TrainConfig(algo="dr_grpo").effective().loss_agg == "seq_mean_token_sum_norm"
    assert TrainConfig(algo="reinforce_rej_zero").effective().filtered == "zero"
    gspo = TrainConfig(algo="gspo").effective()
    assert (gspo.clip_low, gspo.clip_high, gspo.loss_agg) == (3e-4, 4e-4, "seq_mean_token_mean")
    assert TrainConfig(algo="grpo").effective() == TrainConfig(algo="grpo")


def test_axes_override_the_record():
    alg = TrainConfig(algo="reinforce_rej", advantage_scale="batch_std").algorithm()
    assert alg.advantage is normalised("none", "batch_std")
    assert TrainConfig(algo="grpo", policy_loss="cispo").algorithm().loss is POLICY_LOSSES["cispo"]
    assert TrainConfig(algo="grpo").algorithm() is TrainConfig(algo="grpo").algorithm()


def test_every_preset_is_a_valid_config_setting():
    from dataclasses import fields

    from minimalrl.algorithms import ALGORITHMS

    names = {f.name for f in fields(TrainConfig)}
    for name, alg in ALGORITHMS.items():
        assert set(alg.presets) <= names, name
        effective = TrainConfig(algo=name, samples_per_prompt=4).effective()  # validates them
        assert all(getattr(effective, k) == v for k, v in alg.presets.items()), name
