"""The policy seam: scoring returns new records; the rollout backend is a setting used by training
and evaluation alike; the backend hears of every update (`sync_weights`)."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from test_trainer import toy_config

from minimalrl.config import ConfigError, TrainConfig
from minimalrl.data import load_problems
from minimalrl.eval.evaluate import EvalSettings, evaluate
from minimalrl.experience import build_experience
from minimalrl.policy import Scores
from minimalrl.rollout import BACKENDS, HFBackend, Rollout, SamplingParams, make_backend
from minimalrl.train.trainer import Trainer, train


def _snapshot(ro: Rollout) -> tuple[dict, dict]:
    """The rollout's fields, and copies of their values."""
    fields = dict(vars(ro))
    copies = {k: v.clone() if isinstance(v, torch.Tensor) else dict(v) for k, v in fields.items()}
    return fields, copies


def _assert_unchanged(ro: Rollout, before: tuple[dict, dict]) -> None:
    """The same fields, holding the same objects, holding the same values."""
    fields, copies = before
    assert vars(ro).keys() == fields.keys()
    for name, value in fields.items():
        assert getattr(ro, name) is value, name
        same = torch.equal(value, copies[name]) if isinstance(value, torch.Tensor) else None
        assert same if same is not None else value == copies[name], name


def test_scoring_returns_new_records_and_leaves_the_rollout_alone(
    tiny_model_dir, toy_task, tmp_path
):
    # PPO: a reference (kl_to_init), a critic, and one optimizer step (π_old from the update).
    cfg = toy_config(tiny_model_dir, toy_task, algo="ppo", minibatch_size=64)
    policy = Trainer(cfg, tmp_path, progress=False).policy
    prompts = [[5, 6, 7, 8], [5, 9, 10]]
    ro = policy.generate(prompts, SamplingParams(n=8, max_new_tokens=4, seed=1), [0, 1])
    before = _snapshot(ro)
    scores = policy.score(ro)
    assert isinstance(scores, Scores)
    B, R = ro.response_ids_BR.shape
    assert scores.ref_logp_BR.shape == scores.values_BR.shape == (B, R)
    assert scores.old_logp_BR is None  # π_old comes with the training step
    _assert_unchanged(ro, before)
    correct_B = torch.arange(B) % 3 == 0
    exp = build_experience(
        policy.alg, ro, correct_B.float() * 2 - 1, correct_B, group_size=8, band=(0.0, 1.0),
        ref_logp_BR=scores.ref_logp_BR,
        values_BR=scores.values_BR, gamma=1.0, lam=1.0, pair_rng=torch.Generator(),
        pair_reference="iteration",
    )  # fmt: skip
    step = policy.train(exp, torch.Generator().manual_seed(0))
    assert step.metrics["optimizer_steps"] == 1
    _assert_unchanged(ro, before)
    assert step.scores is not scores and step.scores.old_logp_BR.shape == (B, R)
    # Before the step the policy was the initial model: π_old = the reference's log-probs.
    torch.testing.assert_close(step.scores.old_logp_BR, scores.ref_logp_BR, rtol=0, atol=1e-5)
    assert (step.scores.entropy_BR[ro.response_mask_BR.bool()] > 0).all()
    assert not hasattr(ro, "old_logp_BR")  # a rollout holds samples, never their scores


def test_rollout_backend_is_a_checked_setting():
    assert TrainConfig().rollout_backend == "hf"
    with pytest.raises(
        ConfigError, match=r"rollout_backend must be one of \('hf', 'vllm'\), got 'sglang'"
    ):
        toy_config("m", "t", rollout_backend="sglang")
    with pytest.raises(ValueError, match="unknown rollout backend 'sglang'; valid: hf, vllm"):
        EvalSettings(rollout_backend="sglang")
    with pytest.raises(ValueError, match="unknown rollout backend 'sglang'; valid: hf, vllm"):
        make_backend("sglang", torch.nn.Linear(1, 1), None)
    with pytest.raises(ConfigError, match=r"vllm_gpu_memory_fraction must be in \(0, 1\)"):
        toy_config("m", "t", vllm_gpu_memory_fraction=1.5)


class RecordingBackend(HFBackend):
    """The CPU sampler, recording what it is asked to do (a backend a test registers)."""

    built: ClassVar[list[RecordingBackend]] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events: list[str] = []
        RecordingBackend.built.append(self)

    def generate(self, prompt_token_ids, params, prompt_keys=None):
        self.events.append(f"generate {params.temperature}")
        return super().generate(prompt_token_ids, params, prompt_keys)

    def sync_weights(self, model):
        self.events.append("sync")
        assert model is self.model  # the policy module itself: nothing to copy
        super().sync_weights(model)


@pytest.fixture
def recording(monkeypatch):
    RecordingBackend.built = []

    def factory(model, tokenizer, dtype, engine):
        return RecordingBackend(model, tokenizer.pad_token_id, [tokenizer.eos_token_id], dtype)

    monkeypatch.setitem(BACKENDS, "recording", factory)
    return RecordingBackend.built


def test_training_and_evaluation_sample_through_the_configured_backend(
    recording, tiny_model_dir, toy_task, tmp_path
):
    # reinforce keeps every sample: every iteration updates the policy.
    cfg = toy_config(
        tiny_model_dir, toy_task, algo="reinforce", iterations=2, rollout_backend="recording",
        eval_every=1, eval_data=str(toy_task),
    )  # fmt: skip
    records = train(cfg, tmp_path, progress=False)
    assert not any(r.get("skipped_update") for r in records)
    (backend,) = recording  # one backend for the run, its evaluations included
    # eval before, then per iteration: sample, update (sync), evaluate the new weights
    assert backend.events == ["generate 0.0"] + ["generate 1.0", "sync", "generate 0.0"] * 2

    model = Trainer(cfg, tmp_path / "again", progress=False).policy
    settings = EvalSettings(max_new_tokens=2, rollout_backend="recording")
    result = evaluate(
        model.model, model.tokenizer, load_problems(str(toy_task))[:3], settings, progress=False
    )
    assert result.summary["problems"] == 3
    assert len(recording) == 3 and recording[-1].events == ["generate 0.0"]


def test_resume_tells_the_backend_of_the_loaded_weights(
    recording, tiny_model_dir, toy_task, tmp_path
):
    cfg = toy_config(
        tiny_model_dir, toy_task, algo="reinforce", iterations=1, rollout_backend="recording"
    )
    train(cfg, tmp_path, progress=False)
    Trainer(cfg.replace(iterations=2), tmp_path, resume=True, progress=False)
    assert recording[-1].events == ["sync"]


def test_trainer_and_update_reach_the_model_only_through_the_seam():
    """Neither imports FSDP nor a CPU fast path (packing, fused head, matmul attention, prepacked
    linears, allocator): those are the policy's decisions."""
    import ast
    from pathlib import Path

    import minimalrl.policy.update as update
    import minimalrl.train.trainer as trainer

    for module in (trainer, update):
        tree = ast.parse(Path(module.__file__).read_text())
        names = {
            f"{n.module}.{a.name}" if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in n.names
        }
        banned = {n for n in names if "fsdp" in n or n.startswith("minimalrl.model.fast")}
        assert not banned, (module.__name__, banned)


def test_prepare_device_turns_deterministic_kernels_on_or_off():
    import torch

    from minimalrl.config import TrainConfig
    from minimalrl.policy import prepare_device

    try:
        prepare_device(TrainConfig(deterministic=False))
        assert not torch.are_deterministic_algorithms_enabled()
        prepare_device(TrainConfig())
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert not torch.utils.deterministic.fill_uninitialized_memory  # no pass over buffers
    finally:
        prepare_device(TrainConfig())


def test_indexing_backward_with_repeated_indices_repeats_to_the_bit():
    """What made seeded runs drift: the CPU backward of `x[idx]` adds repeated indices with
    atomic adds from several threads (tensors of >= 32768 elements). With the config's
    deterministic kernels (the default) every call gives the same gradient."""
    import torch

    from minimalrl.config import TrainConfig
    from minimalrl.policy import prepare_device

    prepare_device(TrainConfig())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 60, 64, generator=gen, requires_grad=True)
    g = torch.randn(64, 3, 60, 64, generator=gen)
    idx = torch.arange(16).repeat(4)  # every row read 4 times, far apart: different threads
    grads = []
    for _ in range(20):
        x.grad = None
        (x[idx] * g).sum().backward()
        grads.append(x.grad.clone())
    assert all(torch.equal(grads[0], other) for other in grads[1:])
