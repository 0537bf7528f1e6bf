"""The RL loop on a tiny model built in the test: every algorithm learns; resume is exact."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from minimalrl.algorithms import ALGORITHMS
from minimalrl.config import TrainConfig
from minimalrl.eval.metrics import ITERATION_KEYS, read_metrics
from minimalrl.policy.checkpoint import CheckpointError, latest_checkpoint
from minimalrl.policy.optim import lr_factor
from minimalrl.policy.update import NonFiniteLossError
from minimalrl.train.trainer import Trainer, train

TIMING_KEYS = {
    "rollout_seconds",
    "update_seconds",
    "tokens_per_second",
    "update/weight_sync_seconds",
}


def toy_config(model_dir, task, **changes) -> TrainConfig:
    """The toy task: every gold answer is 7; the last number of the response counts."""
    base = dict(
        algo="grpo",
        model=str(model_dir),
        train_data=str(task),
        eval_data="",
        iterations=10,
        prompts_per_iteration=8,
        samples_per_prompt=8,
        max_new_tokens=4,
        temperature=1.0,  # what the toy tests were sized at (the default run samples at 0.7)
        fallback_last_number=True,
        lr=1e-2,
        minibatch_size=32,
        micro_batch_size=16,
        eval_every=0,
        save_every=0,
        threads=1,
    )
    base.update(changes)
    return TrainConfig(**base)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_algorithm_raises_the_reward(algo, tiny_model_dir, toy_task, tmp_path):
    cfg = toy_config(tiny_model_dir, toy_task, algo=algo, iterations=12)
    records = train(cfg, tmp_path, progress=False)
    acc = [r["accuracy"] for r in records]
    # The untrained model says 7 last about 3-11% of the time; every algorithm must get past 60%.
    assert acc[0] < 0.2
    assert sum(acc[-3:]) / 3 > 0.6, acc


def _strip(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_resume_equals_uninterrupted(algo, tiny_model_dir, toy_task, tmp_path):
    cfg = toy_config(tiny_model_dir, toy_task, algo=algo, iterations=4, save_every=2)
    full = _strip(train(cfg, tmp_path / "full", progress=False))
    # Kill after iteration 2 (simulated by a shorter run), then resume to 4.
    train(cfg.replace(iterations=2), tmp_path / "cut", progress=False)
    train(cfg, tmp_path / "cut", resume=True, progress=False)
    resumed = _strip(read_metrics(tmp_path / "cut"))
    assert [r["iteration"] for r in resumed] == [1, 2, 3, 4]
    for a, b in zip(full, resumed, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key


def test_resume_refuses_another_config(tiny_model_dir, toy_task, tmp_path):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=1)
    train(cfg, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="lr"):
        Trainer(cfg.replace(lr=0.5, iterations=2), tmp_path, resume=True, progress=False)
    # Forced, it resumes at iteration 1.
    t = Trainer(
        cfg.replace(lr=0.5, iterations=2), tmp_path, resume=True, force=True, progress=False
    )
    assert t.start_iteration == 1


def test_metrics_schema_and_checkpoint_loads_anywhere(tiny_model_dir, toy_task, tmp_path):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=2, eval_every=1, eval_data=str(toy_task))
    train(cfg, tmp_path, progress=False)
    records = read_metrics(tmp_path)
    assert records[0] == {
        "iteration": 0, "eval_accuracy": records[0]["eval_accuracy"], "eval_problems": 32
    }  # fmt: skip
    for r in records[1:]:
        assert set(ITERATION_KEYS) <= set(r), set(ITERATION_KEYS) - set(r)
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["prompts_kept"] <= 1
        assert r["eval_accuracy"] is not None
        assert r["entropy"] > 0 and r["kl_to_init"] >= 0
    assert (tmp_path / "tensorboard").is_dir()
    ckpt = latest_checkpoint(tmp_path / "checkpoints")
    assert ckpt is not None and ckpt.name == "iter_000002"
    model = AutoModelForCausalLM.from_pretrained(ckpt / "policy")
    assert sum(p.numel() for p in model.parameters()) > 0
    assert json.loads((ckpt / "config.json").read_text())["algo"] == "grpo"


def test_all_prompts_filtered_skips_the_update(tiny_model_dir, toy_task, tmp_path):
    # An unreachable gold: every group is all wrong, so Reinforce-Rej keeps nothing.
    cfg = toy_config(tiny_model_dir, toy_task, algo="reinforce_rej", iterations=2,
                     fallback_last_number=False)  # fmt: skip
    records = train(cfg, tmp_path, progress=False)
    assert all(r["skipped_update"] and r["samples_kept"] == 0 for r in records)
    assert all(r["prompts_all_wrong"] == 1.0 for r in records)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(
    tiny_model_dir, toy_task, tmp_path, monkeypatch
):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=3, save_every=1)
    train(cfg.replace(iterations=1), tmp_path, progress=False)
    import dataclasses

    from minimalrl.algorithms import ALGORITHMS, POLICY_LOSSES, with_common_signature

    def nan_loss(logp_BT):
        return torch.tensor(float("nan"), requires_grad=True), {}

    nan = with_common_signature(nan_loss)
    monkeypatch.setitem(POLICY_LOSSES, "clipped", nan)
    monkeypatch.setitem(ALGORITHMS, "grpo", dataclasses.replace(ALGORITHMS["grpo"], loss=nan))
    with pytest.raises(NonFiniteLossError):
        train(cfg, tmp_path, resume=True, progress=False)
    assert latest_checkpoint(tmp_path / "checkpoints").name == "iter_000001"


def test_interrupt_saves_at_the_iteration_boundary(tiny_model_dir, toy_task, tmp_path):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=5)
    trainer = Trainer(cfg, tmp_path, progress=False)
    original = trainer.iteration

    def interrupted_at_2(it):
        record = original(it)
        if it == 1:
            trainer._on_sigint(2, None)  # what Ctrl-C does
        return record

    trainer.iteration = interrupted_at_2
    records = trainer.run()
    assert [r["iteration"] for r in records] == [1, 2]
    assert latest_checkpoint(tmp_path / "checkpoints").name == "iter_000002"


def test_failed_save_never_becomes_latest(tiny_model_dir, toy_task, tmp_path, monkeypatch):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=2, save_every=1)
    trainer = Trainer(cfg, tmp_path, progress=False)
    trainer.save(1)
    import minimalrl.policy.checkpoint as ck

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", disk_full)
    with pytest.raises(CheckpointError, match=r"no space left on device.*iter_000001 is intact"):
        trainer.save(2)
    assert latest_checkpoint(tmp_path / "checkpoints").name == "iter_000001"
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_lr_schedules():
    cfg = TrainConfig(iterations=10, warmup_iterations=2, lr_schedule="linear")
    assert [lr_factor(i, cfg) for i in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_factor(6, cfg) == pytest.approx(0.5)
    cos = cfg.replace(lr_schedule="cosine")
    assert lr_factor(6, cos) == pytest.approx(0.5)
    assert lr_factor(9, cfg.replace(lr_schedule="constant")) == 1.0


def test_empty_dataset_is_a_clear_error(tiny_model_dir, tmp_path):
    from minimalrl.data import DataError

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        Trainer(toy_config(tiny_model_dir, empty), tmp_path / "run", progress=False)


@pytest.mark.parametrize("algo", ["grpo", "raft", "ppo", "iterative_dpo"])
def test_on_policy_update_equals_a_separate_old_logprob_forward(
    algo, tiny_model_dir, toy_task, tmp_path, monkeypatch
):
    """One optimizer step per iteration: the update's own forward stands in for π_old; the
    weights and every rollout metric match a run that scores the rollout separately."""
    from minimalrl.policy import Policy

    scored: list[int] = []
    real = Policy._policy_scores

    def counting(self, batch):  # the separate π_old forward
        scored.append(batch.response_ids_BR.shape[0])
        return real(self, batch)

    monkeypatch.setattr(Policy, "_policy_scores", counting)
    cfg = toy_config(tiny_model_dir, toy_task, algo=algo, iterations=3, minibatch_size=64)
    runs = {}
    for name, recompute in (("fast", False), ("plain", True)):
        scored.clear()
        trainer = Trainer(
            cfg.replace(recompute_old_logprobs=recompute), tmp_path / name, progress=False
        )
        runs[name] = (trainer.run(), dict(trainer.policy.model.named_parameters()), sum(scored))
    (fast, w_fast, n_fast), (plain, w_plain, n_plain) = runs["fast"], runs["plain"]
    assert n_plain == 3 * 64  # every row of every iteration scored by a separate forward
    trained = sum(r["samples_kept"] for r in fast)
    assert n_fast == 3 * 64 - trained  # only the rows the update does not train
    for k in w_plain:
        torch.testing.assert_close(w_fast[k], w_plain[k], rtol=1e-5, atol=1e-6)
    for a, b in zip(_strip(fast), _strip(plain)):
        for key in ("entropy", "kl_to_init", "reward_mean", "grad_norm", "clip_fraction"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    assert fast[-1]["kl_to_init"] > 0  # the metric is measured, not left at 0


def test_on_policy_update_refuses_several_steps(tiny_model_dir, toy_task, tmp_path):
    from minimalrl.experience import build_experience
    from minimalrl.policy.update import update
    from minimalrl.rollout import SamplingParams

    trainer = Trainer(
        toy_config(tiny_model_dir, toy_task, minibatch_size=8), tmp_path, progress=False
    )
    policy = trainer.policy
    ro = policy.generate(trainer.prompt_ids[:2], SamplingParams(n=8, max_new_tokens=4), [0, 1])
    correct_B = torch.arange(16) % 2 == 0
    exp = build_experience(
        policy.alg, ro, correct_B.float() * 2 - 1, correct_B, group_size=8, band=(0.0, 1.0),
        ref_logp_BR=None, values_BR=None, gamma=1.0, lam=1.0, pair_rng=torch.Generator(),
        pair_reference="iteration",
    )  # fmt: skip
    with pytest.raises(ValueError, match="single optimizer step, this update takes 2"):
        update(policy, exp, policy.alg, policy.settings, torch.Generator(), on_policy=True)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bf16_rollouts_train_and_refuse_fsdp(tiny_model_dir, toy_task, tmp_path, precision):
    from minimalrl.config import ConfigError

    # GRPO with samples drawn from the bfloat16 cast still learns the toy task (as the fp32 test),
    # with a float32 update and with a bf16 autocast one (fused head, matmul attention).
    cfg = toy_config(
        tiny_model_dir, toy_task, iterations=12, rollout_precision="bf16", precision=precision
    )
    acc = [r["accuracy"] for r in train(cfg, tmp_path, progress=False)]
    assert acc[0] < 0.2 and sum(acc[-3:]) / 3 > 0.6, acc
    with pytest.raises(ConfigError, match="rollout_precision"):
        cfg.replace(fsdp=True)
    with pytest.raises(ConfigError, match="rollout_precision must be one of"):
        cfg.replace(rollout_precision="fp8")


def test_iteration_runs_the_update_in_the_configured_precision(
    tiny_model_dir, toy_task, tmp_path, monkeypatch
):
    """precision=bf16 is applied by `iteration` itself (a benchmark or script calling it directly
    gets it too)."""
    import minimalrl.policy.policy as policy_mod

    seen = []
    real_update = policy_mod.update

    def spy(*args, **kwargs):
        autocast = torch.is_autocast_enabled("cpu")
        result = real_update(*args, **kwargs)
        seen.append((autocast, result.metrics["optimizer_steps"]))  # 64 samples, minibatches of 32
        return result

    monkeypatch.setattr(policy_mod, "update", spy)
    for precision in ("fp32", "bf16"):
        cfg = toy_config(tiny_model_dir, toy_task, iterations=1, precision=precision)
        Trainer(cfg, tmp_path / precision, progress=False).iteration(0)
    assert seen == [(False, 2), (True, 2)]
    assert not torch.is_autocast_enabled("cpu")


def test_kl_to_init_starts_at_zero_at_any_temperature(tiny_model_dir, toy_task, tmp_path):
    """The reference is scored at the sampling temperature, as π_old is: before any update the
    policy is the initial model, so the KL to it is 0 (not the gap between T = 0.7 and T = 1)."""
    for kl_coef, on_policy in ((0.05, True), (0.0, False)):
        cfg = toy_config(
            tiny_model_dir, toy_task, iterations=1, temperature=0.7, kl_coef=kl_coef,
            minibatch_size=64, recompute_old_logprobs=not on_policy,
        )  # fmt: skip
        (record,) = train(cfg, tmp_path / f"kl{kl_coef}", progress=False)
        # k3 of identical log-probs is 0; float32 rounding of the two forwards leaves ~1e-7.
        assert abs(record["kl_to_init"]) < 1e-5, record["kl_to_init"]
        if kl_coef:  # one optimizer step: the penalty is taken before the policy moves
            assert record["update/optimizer_steps"] == 1
            assert abs(record["update/kl_loss"]) < 1e-5


BF16 = {"rollout_precision": "bf16"}
NARROW = {"rollout_correction_min": 0.999, "rollout_correction_max": 1.001}


@pytest.mark.parametrize(
    ("algo", "changes", "keys"),
    [
        ("grpo", {"kl_coef": 0.05, "entropy_coef": 0.01}, ("loss", "kl_loss", "clip_fraction")),
        ("raft", {}, ("loss", "nll")),
        ("ppo", {}, ("loss", "value_loss")),
        ("iterative_dpo", {}, ("loss",)),
        ("dr_grpo", {}, ("loss", "clip_fraction")),  # seq_mean_token_sum_norm
        ("gspo", {}, ("loss", "clip_fraction")),  # seq_mean_token_mean
        ("cispo", {"loss_agg": "seq_mean_token_sum"}, ("loss", "clip_fraction")),
        ("reinforce_rej_zero", {}, ("loss",)),
        ("raft", {"filtered": "zero"}, ("loss", "nll")),  # wrong responses in the denominator
        # Rollout correction on bf16 samples (bands this narrow act on the tiny model's gap).
        ("grpo", {**BF16, "rollout_correction": "tis", "rollout_correction_cap": 1.001},
         ("loss", "clip_fraction", "tis_weight_mean", "tis_capped")),
        ("grpo", {**BF16, "rollout_correction": "token_mask", **NARROW},
         ("loss", "rollout_masked")),
        ("gspo", {**BF16, "rollout_correction": "seq_mask", **NARROW}, ("loss", "rollout_masked")),
    ],
)  # fmt: skip
def test_logged_losses_do_not_depend_on_the_micro_batch(
    algo, changes, keys, tiny_model_dir, toy_task, tmp_path
):
    """A logged loss is the loss that was optimised: the same for micro-batches of 2 or 32."""
    logged = []
    for micro in (2, 32):
        cfg = toy_config(
            tiny_model_dir, toy_task, algo=algo, iterations=1, micro_batch_size=micro,
            recompute_old_logprobs=True, **changes,
        )  # fmt: skip
        (record,) = train(cfg, tmp_path / str(micro), progress=False)
        logged.append(record)
    assert logged[0]["update/optimizer_steps"] == logged[1]["update/optimizer_steps"] >= 1
    for key in keys:  # float32 sums in another order: relative differences ~1e-6
        small, large = logged[0][f"update/{key}"], logged[1][f"update/{key}"]
        assert small == pytest.approx(large, rel=1e-4, abs=1e-6), key
    assert logged[0]["update/loss"] != 0


def test_critic_optimizer_has_its_own_decay_and_schedule(tiny_model_dir, toy_task, tmp_path):
    cfg = toy_config(
        tiny_model_dir, toy_task, algo="ppo", iterations=4, critic_lr=1e-3,
        critic_weight_decay=0.05, critic_lr_schedule="linear", adam_eps=1e-6,
    )  # fmt: skip
    trainer = Trainer(cfg, tmp_path, progress=False)
    (group,) = trainer.policy.optimizers.critic.param_groups
    assert (group["weight_decay"], group["eps"]) == (0.05, 1e-6)
    assert (
        trainer.policy.optimizers.policy.param_groups[0]["weight_decay"] == 0.0
    )  # the policy's own setting
    records = trainer.run()
    assert [r["critic_lr"] for r in records] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])
    assert [r["lr"] for r in records] == pytest.approx([1e-2] * 4)  # policy: constant


def test_progress_tells_each_evaluation(tiny_model_dir, toy_task, tmp_path, capsys):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=2, eval_every=2, eval_data=str(toy_task))
    train(cfg, tmp_path, progress=True)
    out = capsys.readouterr()
    said = out.out + out.err
    assert "evaluating the initial model on 32 held-out problems" in said
    assert "held-out accuracy after 0 iterations: " in said
    assert "held-out accuracy after 2 iterations: " in said and "(32 problems, greedy" in said


def test_sampler_mismatch_is_measured_and_the_corrections_act_on_it(
    tiny_model_dir, toy_task, tmp_path
):
    """Float32 rollouts: the sampler runs π_old's weights, the mismatch is rounding. bfloat16
    rollouts: a measured gap, the same whatever the correction (same seed, same samples), which
    tis weighs (some tokens capped) and the masks cut (some tokens or responses dropped)."""
    cfg = toy_config(tiny_model_dir, toy_task, iterations=1, minibatch_size=64)
    (fp32,) = train(cfg, tmp_path / "fp32", progress=False)
    assert fp32["mismatch_abs_log_ratio"] < 1e-6, fp32
    assert fp32["mismatch_ratio_max"] == pytest.approx(1.0, abs=1e-5)
    runs = {}
    for name, changes in {
        "none": {},
        "tis": {"rollout_correction": "tis", "rollout_correction_cap": 1.001},
        "token_mask": {"rollout_correction": "token_mask", **NARROW},
        "seq_mask": {"rollout_correction": "seq_mask", **NARROW},
    }.items():
        (runs[name],) = train(cfg.replace(**BF16, **changes), tmp_path / name, progress=False)
    none = runs["none"]
    assert 1e-4 < none["mismatch_abs_log_ratio"] < 1e-2, none
    assert none["mismatch_ratio_min"] < 1 < none["mismatch_ratio_max"] and none["mismatch_kl"] > 0
    for r in runs.values():  # the correction changes the update, never the measurement
        for key in ("mismatch_abs_log_ratio", "mismatch_ratio_max", "mismatch_kl"):
            assert r[key] == pytest.approx(none[key], rel=1e-3), key
    assert "update/tis_capped" not in none and "update/rollout_masked" not in none
    assert 0 < runs["tis"]["update/tis_capped"] < 1
    assert 0 < runs["token_mask"]["update/rollout_masked"] < 1
    assert 0 < runs["seq_mask"]["update/rollout_masked"] < 1
    for name in ("tis", "token_mask", "seq_mask"):
        assert runs[name]["update/loss"] != none["update/loss"], name


def test_on_policy_tis_takes_pi_old_from_the_update_forward(tiny_model_dir, toy_task, tmp_path):
    """One optimizer step: tis weighs tokens with π_old from the update's own forward, in the
    trainer's precision; the result is the run that scores π_old with a forward of its own.
    A mask needs π_old before the update: it always gets that forward."""
    from minimalrl.policy import Policy

    scored: list[int] = []
    real = Policy._policy_scores

    def counting(self, batch):
        scored.append(batch.response_ids_BR.shape[0])
        return real(self, batch)

    cfg = toy_config(
        tiny_model_dir, toy_task, iterations=2, minibatch_size=64, **BF16,
        rollout_correction="tis", rollout_correction_cap=1.001,
    )  # fmt: skip
    runs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Policy, "_policy_scores", counting)
        for name, recompute in (("fast", False), ("plain", True)):
            scored.clear()
            trainer = Trainer(
                cfg.replace(recompute_old_logprobs=recompute), tmp_path / name, progress=False
            )
            runs[name] = (trainer.run(), dict(trainer.policy.model.named_parameters()), sum(scored))
        scored.clear()
        masked = cfg.replace(rollout_correction="token_mask", **NARROW, iterations=1)
        Trainer(masked, tmp_path / "mask", progress=False).run()
        assert sum(scored) == 64  # the whole rollout scored before the update
    (fast, w_fast, n_fast), (plain, w_plain, n_plain) = runs["fast"], runs["plain"]
    assert n_plain == 2 * 64 and n_fast < n_plain
    for k in w_plain:
        torch.testing.assert_close(w_fast[k], w_plain[k], rtol=1e-5, atol=1e-6)
    for a, b in zip(fast, plain):
        for key in ("update/tis_weight_mean", "update/tis_capped", "mismatch_abs_log_ratio"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
