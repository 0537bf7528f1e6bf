"""LoRA through peft: it learns, the reference is the base with adapters off, checkpoints merge."""

from __future__ import annotations

import torch
from test_trainer import toy_config
from transformers import AutoModelForCausalLM

from minimalrl.cli import main
from minimalrl.policy.checkpoint import latest_checkpoint
from minimalrl.train.trainer import Trainer, train


def test_lora_learns_and_keeps_no_reference_copy(tiny_wide_logits_model_dir, toy_task, tmp_path):
    model_dir = tiny_wide_logits_model_dir
    cfg = toy_config(model_dir, toy_task, lora_rank=8, lora_alpha=16, lr=1e-2, iterations=12)
    trainer = Trainer(cfg, tmp_path, progress=False)
    assert (
        trainer.policy.reference.model is trainer.policy.model
    )  # adapters disabled, no second copy
    trainable = sum(p.numel() for p in trainer.policy.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.policy.model.parameters())
    assert 0 < trainable < total / 2
    records = trainer.run()
    acc = [r["accuracy"] for r in records]
    assert acc[0] < 0.1 and sum(acc[-3:]) / 3 > 0.8, acc
    assert records[-1]["kl_to_init"] > 0.01  # the reference really is the base, not the policy


def test_lora_checkpoint_resumes_and_merges(tiny_model_dir, toy_task, tmp_path, capsys):
    cfg = toy_config(tiny_model_dir, toy_task, lora_rank=4, iterations=2, save_every=1)
    full = train(cfg, tmp_path / "full", progress=False)
    train(cfg.replace(iterations=1), tmp_path / "cut", progress=False)
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed[-1]["reward_mean"] == full[-1]["reward_mean"]
    policy = latest_checkpoint(tmp_path / "full" / "checkpoints") / "policy"
    assert (policy / "adapter_model.safetensors").is_file()
    assert main(["merge", str(policy), "--output", str(tmp_path / "merged")]) == 0
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[3, 18, 19, 8, 15, 9, 4]])
    assert not torch.allclose(merged(ids).logits, base(ids).logits)
