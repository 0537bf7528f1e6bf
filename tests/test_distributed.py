"""Data parallelism on gloo: 2 ranks × M/2 prompts == 1 rank × M prompts, and 2-rank resume."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from tiny import train_rank

from minimalrl.config import TrainConfig
from minimalrl.eval.metrics import read_metrics
from minimalrl.train.trainer import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Parameters are compared after Adam steps. Ranks cut different micro-batches and sum them in
# another order, so the gradients differ by float32 rounding, |Δg| <= ~1e-7·max|g| <= 1e-7 here
# (max|g| <= grad_clip = 1). Adam's first step moves an element by lr·g/(|g| + ε), whose slope in
# g is at most lr/ε: with PyTorch's ε = 1e-8 that is 1e6, and an element whose gradient is itself
# ~1e-8 (a near-cancelling sum) turns a 1e-11 rounding difference into ~1e-5, on one CPU and not
# on another. It also makes the step blind to the gradient's scale (g and 2g move alike). With
# ε = 1e-3 the slope is lr/ε = 10, so rounding moves a parameter by <= 10·1e-7 = 1e-6 (tolerance
# below: 1e-5), while a wrong scale (a mean over ranks instead of a sum) moves elements with
# |g| ~ ε by ~lr/6 ≈ 2e-3, far outside it.
ADAM_EPS = 1e-3


def _config(model_dir, task, **changes) -> dict:
    cfg = dict(
        model=str(model_dir), train_data=str(task), eval_data="", iterations=1,
        prompts_per_iteration=8, samples_per_prompt=4, max_new_tokens=4,
        fallback_last_number=True, lr=1e-2, adam_eps=ADAM_EPS, minibatch_size=64,
        micro_batch_size=8, eval_every=0, save_every=1, threads=1,
    )  # fmt: skip
    cfg.update(changes)
    return cfg


def _two_ranks(cfg: dict, out, resume: bool = False) -> None:
    mp.spawn(train_rank, args=(2, _free_port(), cfg, str(out), resume), nprocs=2, join=True)


def _weights(run) -> dict[str, torch.Tensor]:
    ckpt = sorted((run / "checkpoints").glob("iter_*"))[-1]
    return load_file(str(ckpt / "policy" / "model.safetensors"))


@pytest.mark.parametrize(
    ("algo", "changes"),
    [
        ("grpo", {}),
        ("raft", {}),
        ("ppo", {}),  # advantages whitened globally
        ("lite_ppo", {"loss_agg": "seq_mean_token_sum_norm"}),  # batch std over both ranks
        # bf16 samples corrected: weights per token; a mask's token counts summed over ranks
        ("grpo", {"rollout_precision": "bf16", "rollout_correction": "tis",
                  "rollout_correction_cap": 1.001}),
        ("grpo", {"rollout_precision": "bf16", "rollout_correction": "token_mask",
                  "rollout_correction_min": 0.999, "rollout_correction_max": 1.001}),
    ],
)  # fmt: skip
def test_two_ranks_match_one_rank(algo, changes, tiny_model_dir, toy_task, tmp_path):
    cfg = _config(tiny_model_dir, toy_task, algo=algo, **changes)
    train(TrainConfig(**cfg), tmp_path / "one", progress=False)
    _two_ranks(cfg, tmp_path / "two")
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    initial = load_file(str(tiny_model_dir / "model.safetensors"))
    moved = max(float((one[k] - initial[k]).abs().max()) for k in one)
    assert moved > 1e-3  # the update did something
    for k in one:  # rounding moves <= lr/ε · 1e-7 = 1e-6 (see ADAM_EPS)
        torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-5)
    a, b = read_metrics(tmp_path / "one")[-1], read_metrics(tmp_path / "two")[-1]
    keys = ("reward_mean", "accuracy", "entropy", "kl_to_init", "samples_kept", "grad_norm")
    mismatch = ("mismatch_abs_log_ratio", "mismatch_ratio_max", "mismatch_ratio_min")
    correction = ("update/tis_weight_mean", "update/tis_capped", "update/rollout_masked")
    for key in (*keys, *mismatch, "update/loss"):  # rank 0 logs all ranks', not its share
        assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    for key in correction:
        assert (key in a) == (key in b), key
        assert a.get(key, 0.0) == pytest.approx(b.get(key, 0.0), rel=1e-4, abs=1e-6), key


def _assert_resume_is_exact(cfg: dict, tmp_path) -> None:
    """2 ranks × 2 iterations == 2 ranks × 1 iteration, then resumed for the second."""
    _two_ranks(cfg, tmp_path / "full")
    _two_ranks({**cfg, "iterations": 1}, tmp_path / "cut")
    _two_ranks(cfg, tmp_path / "cut", resume=True)
    full, cut = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    for k in full:
        torch.testing.assert_close(cut[k], full[k], rtol=1e-5, atol=1e-6)


def test_two_ranks_resume_to_the_same_result(tiny_model_dir, toy_task, tmp_path):
    _assert_resume_is_exact(_config(tiny_model_dir, toy_task, algo="grpo", iterations=2), tmp_path)


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_fsdp_two_ranks_match_one_rank(algo, tiny_model_dir, toy_task, tmp_path):
    """FSDP2 on 2 gloo ranks: the same parameters as one unsharded process (two optimizer steps
    per iteration, two iterations, eval between), with the critic sharded too for PPO.

    (The reduce-scatter sums in another order: float32 rounding of the gradients, which each of
    the four Adam steps passes on with slope <= ~lr/ε = 10 (see ADAM_EPS), ~1e-6 per step; the
    next gradients, taken at weights that differ by that much, add as much again. 5e-5 leaves
    a margin of ~10x over that estimate; the moves themselves are ~1e-2.)"""
    cfg = _config(tiny_model_dir, toy_task, algo=algo, iterations=2, eval_data=str(toy_task),
                  eval_every=1, minibatch_size=32, micro_batch_size=4)  # fmt: skip
    train(TrainConfig(**cfg), tmp_path / "one", progress=False)
    _two_ranks({**cfg, "fsdp": True}, tmp_path / "two")
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert set(two) == set(one)  # a full save_pretrained folder, not shards
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=5e-5)
    a, b = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [r.get("eval_accuracy") for r in a] == [r.get("eval_accuracy") for r in b]
    for key in ("reward_mean", "entropy", "kl_to_init", "grad_norm"):
        assert a[-1][key] == pytest.approx(b[-1][key], rel=1e-4, abs=1e-6), key


def test_fsdp_uneven_kept_samples_and_resume(tiny_model_dir, toy_task, tmp_path):
    """RAFT keeps different numbers of samples per rank (idle micro-steps keep the collectives
    in step); a sharded run resumes from its full checkpoint to the uninterrupted result."""
    cfg = _config(tiny_model_dir, toy_task, algo="raft", iterations=2, micro_batch_size=2,
                  fsdp=True)  # fmt: skip
    _assert_resume_is_exact(cfg, tmp_path)
    kept = [r["samples_kept"] for r in read_metrics(tmp_path / "full") if "samples_kept" in r]
    assert kept and all(k > 0 for k in kept)


def test_fsdp_with_lora_is_a_clear_config_error(tiny_model_dir, toy_task):
    from minimalrl.config import ConfigError

    with pytest.raises(ConfigError, match="fsdp: not supported with LoRA"):
        TrainConfig(**_config(tiny_model_dir, toy_task, fsdp=True, lora_rank=4))
