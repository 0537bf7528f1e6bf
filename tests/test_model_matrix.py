"""The correctness matrix: every checked architecture family (and one that is not) against
transformers' own forward, on tiny random models (`model_zoo`).

For each: the training log-probs at T = 1 and 0.7 equal `log_softmax(model(ids).logits / T)` of
each sequence alone; the gradient of a loss on them equals the gradient through transformers'
forward; the sampler's own log-probs equal the trainer's. Prompts and responses are longer than
the 8-token windows and of unequal lengths, so packing and windows meet. bf16 and LoRA on two
families each.

Tolerances. In float32 the two computations are the same real function summed in other orders
(the prompt's KV cache shared or not, packed or padded rows, the head fused or by autograd), so
they differ by rounding only. A sum of n terms in blocked or pairwise order carries up to about
log2(n) units of roundoff u = 2^-24 of its magnitude; the deepest reduction is the log-sum-exp
over the 49,152-token vocabulary (16 u), then per layer the 64- and 128-term dot products and
the attention softmax (7 + 7 + 5 u each, two layers): ~54 u of the largest magnitude in play,
which is |log p| (~11 here) plus 1. `FP32_ULPS = 64` covers it; a lost window or a skipped logit
transform is 10^-2 to 2 nats. Gradients: the backward pass is the same chain transposed, so its
norm-wise relative error is bounded by the same count of roundoffs, taken relative to the
gradient's norm (`64 u` ≈ 4e-6), times the loss's depth of two layers and the head: 4 x 64 u.
"""

from __future__ import annotations

import pytest
import torch
from model_zoo import CONFIGS, GENERAL_PATH, TRANSFORMED, WINDOWED, build, tokenizer

from minimalrl.model.fast.support import UnsupportedModelError, check_runnable, fast_paths
from minimalrl.model.loading import end_of_turn_ids
from minimalrl.model.logprobs import TokenBatch, response_logprobs
from minimalrl.rollout import HFBackend, SamplingParams, make_backend, pad_left

U32 = 2.0**-24
FP32_ULPS = 64
FAMILIES = list(CONFIGS)
PROMPT_LENGTHS = (12, 7, 15)
RESPONSE_LENGTHS = (16, 5, 12, 1, 14, 9)  # unequal: packed into fewer rows where allowed
PROMPT_OF = (0, 0, 1, 2, 2, 2)


@pytest.fixture(scope="module")
def zoo():
    built: dict[str, torch.nn.Module] = {}

    def get(name: str) -> torch.nn.Module:
        if name not in built:
            built[name] = build(name)
        return built[name]

    return get


def _batch() -> TokenBatch:
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(10, 5000, (n,), generator=g).tolist() for n in PROMPT_LENGTHS]
    R = max(RESPONSE_LENGTHS)
    lengths = torch.tensor(RESPONSE_LENGTHS)
    resp = torch.randint(10, 5000, (len(lengths), R), generator=g)
    rmask = (torch.arange(R)[None] < lengths[:, None]).long()
    ids, mask = pad_left(prompts, tokenizer().pad_token_id)
    return TokenBatch(ids, mask, torch.tensor(PROMPT_OF), resp.masked_fill(rmask == 0, 0), rmask)


def transformers_logprobs(model, b: TokenBatch, temperature: float) -> torch.Tensor:
    """`log_softmax(model(ids).logits / T)` of each prompt + response alone, no padding."""
    out = []
    for r in range(b.response_ids_BR.shape[0]):
        u = b.prompt_index_B[r]
        p = b.prompt_ids_UP[u][b.prompt_mask_UP[u].bool()]
        n = int(b.response_mask_BR[r].sum())
        seq = torch.cat([p, b.response_ids_BR[r, :n]])[None]
        logits = model(seq).logits[0, len(p) - 1 : -1].float() / temperature
        lp = torch.log_softmax(logits, -1).gather(-1, b.response_ids_BR[r, :n, None])[:, 0]
        out.append(torch.nn.functional.pad(lp, (0, b.response_ids_BR.shape[1] - n)))
    return torch.stack(out)


def _fp32_bound(reference: torch.Tensor) -> float:
    return FP32_ULPS * U32 * (1.0 + float(reference.abs().max()))


def _grads(model, logp_BR: torch.Tensor, weights_BR: torch.Tensor) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad((weights_BR * logp_BR).sum(), params, allow_unused=True)
    return torch.cat([
        (g if g is not None else torch.zeros_like(p)).to_dense().reshape(-1).float()
        for g, p in zip(grads, params)
    ])  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_training_logprobs_equal_transformers_forward(zoo, family, temperature):
    model, b = zoo(family), _batch()
    with torch.no_grad():
        ref = transformers_logprobs(model, b, temperature)
        mine, _ = response_logprobs(model, b, temperature=temperature, chunk_tokens=7)
    err = float((mine - ref).abs().max())
    assert err <= _fp32_bound(ref), (family, err)


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_equals_the_gradient_through_transformers_forward(zoo, family):
    model, b = zoo(family), _batch()
    weights_BR = torch.randn(b.response_ids_BR.shape, generator=torch.Generator().manual_seed(1))
    g_ref = _grads(model, transformers_logprobs(model, b, 0.7), weights_BR)
    g_mine = _grads(model, response_logprobs(model, b, temperature=0.7)[0], weights_BR)
    rel = float((g_mine - g_ref).norm() / g_ref.norm())
    assert rel <= 4 * FP32_ULPS * U32, (family, rel)


@pytest.mark.parametrize("family", FAMILIES)
def test_sampler_logprobs_equal_the_trainers(zoo, family):
    """What the sampler drew, scored by the trainer: the same numbers as the sampler's own (the
    decode loop on its KV cache, windows and transforms included)."""
    model, tok = zoo(family), tokenizer()
    b = _batch()
    prompts = [b.prompt_ids_UP[u][b.prompt_mask_UP[u].bool()].tolist() for u in range(3)]
    backend = HFBackend(model, tok.pad_token_id, end_of_turn_ids(model, tok))
    ro = backend.generate(prompts, SamplingParams(n=2, max_new_tokens=14, temperature=0.7, seed=3))
    assert ro.response_mask_BR.sum(-1).max() > 8  # past the window
    with torch.no_grad():
        trainer, _ = response_logprobs(model, ro, temperature=0.7)
    valid = ro.response_mask_BR.bool()
    err = float((ro.sampler_logp_BR - trainer)[valid].abs().max())
    assert err <= _fp32_bound(trainer), (family, err)


@pytest.mark.parametrize("family", ["llama", "mistral_window", "starcoder2"])
def test_critic_values_equal_its_body_on_each_sequence_alone(zoo, family):
    """PPO's critic reads the body's hidden states by the same rule: packed, padded on the
    shared prompt cache, or (a family not checked) whole rows."""
    from minimalrl.policy.critic import ValueModel

    critic, b = ValueModel(zoo(family)), _batch()
    torch.nn.init.normal_(critic.head.weight, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        values = critic(b)
        for r in range(b.response_ids_BR.shape[0]):
            u, n = b.prompt_index_B[r], int(b.response_mask_BR[r].sum())
            p = b.prompt_ids_UP[u][b.prompt_mask_UP[u].bool()]
            seq = torch.cat([p, b.response_ids_BR[r, :n]])[None]
            h = critic.body(input_ids=seq).last_hidden_state[0, len(p) - 1 : -1]
            ref = critic.head(h).squeeze(-1)
            assert float((values[r, :n] - ref).abs().max()) <= _fp32_bound(ref), (family, r)


def test_which_fast_paths_each_family_takes(zoo):
    for family in FAMILIES:
        paths = fast_paths(zoo(family))
        assert paths.split == (family not in GENERAL_PATH), family
        if not paths.split:
            assert not (paths.packing or paths.fused_head or paths.matmul_attention), family
            continue
        sdpa = zoo(family).config._attn_implementation == "sdpa"
        assert paths.packing == (sdpa and family not in WINDOWED), family
        assert (paths.logit_transform is not None) == (family in TRANSFORMED), family
        assert paths.fused_head == (family not in TRANSFORMED), family
        assert paths.declined or (paths.packing and paths.fused_head), family


def test_a_subclass_with_its_own_forward_takes_the_general_path():
    """A user's subclass may change what forward computes: the fast paths do not assume it."""
    from transformers import LlamaForCausalLM

    class Doubled(LlamaForCausalLM):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = 2 * out.logits
            return out

    torch.manual_seed(0)
    model = Doubled(CONFIGS["llama"]()).eval()
    assert not fast_paths(model).split
    b = _batch()
    with torch.no_grad():
        ref = transformers_logprobs(model, b, 1.0)
        mine, _ = response_logprobs(model, b)
    assert float((mine - ref).abs().max()) <= _fp32_bound(ref)


def test_a_model_no_path_can_run_gets_one_clear_error():
    from transformers import MambaConfig, MambaForCausalLM

    model = MambaForCausalLM(MambaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1))
    with pytest.raises(UnsupportedModelError, match=r"MambaForCausalLM.*position_ids"):
        check_runnable(model)
    with pytest.raises(UnsupportedModelError):
        response_logprobs(model, _batch())


@pytest.mark.parametrize("family", ["mistral_window", "gemma3"])
def test_bf16_autocast_logprobs_are_as_close_to_float32_as_transformers_own(zoo, family):
    """Under bf16 autocast both computations round to 8 bits at other points, so they are not
    equal; each is as far from the float32 values as the other, up to the rounding of bf16
    (u = 2^-8) of the logits, which a lost window (~1.7 nats) or cap far exceeds."""
    model, b = zoo(family), _batch()
    with torch.no_grad():
        truth = transformers_logprobs(model, b, 0.7)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ref = transformers_logprobs(model, b, 0.7)
            mine, _ = response_logprobs(model, b, temperature=0.7)
    valid = b.response_mask_BR.bool()
    ref_err = float((ref - truth)[valid].abs().max())
    mine_err = float((mine - truth)[valid].abs().max())
    assert ref_err > 0  # bf16 really ran
    assert mine_err <= 2 * ref_err + 4 * 2.0**-8, (family, mine_err, ref_err)


@pytest.mark.parametrize("family", ["gemma2", "qwen2_untied"])
def test_lora_logprobs_and_adapter_gradients_equal_peft_forward(zoo, family):
    from peft import LoraConfig, get_peft_model

    base = build(family)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(base, config)
    assert fast_paths(model).split  # the family's fast paths, through the peft wrapper
    b = _batch()
    weights_BR = torch.randn(b.response_ids_BR.shape, generator=torch.Generator().manual_seed(1))
    ref = transformers_logprobs(model, b, 0.7)
    mine, _ = response_logprobs(model, b, temperature=0.7)
    assert float((mine - ref).abs().max()) <= _fp32_bound(ref)
    g_ref, g_mine = _grads(model, ref, weights_BR), _grads(model, mine, weights_BR)
    assert g_ref.numel() < sum(p.numel() for p in model.parameters())  # adapters only
    assert float((g_mine - g_ref).norm() / g_ref.norm()) <= 4 * FP32_ULPS * U32


def test_every_end_of_turn_id_stops_a_response(zoo):
    """Llama-3 / Qwen2.5-Instruct end turns with ids only `generation_config.eos_token_id`
    lists: the backend the trainer and eval build (`make_backend`) stops at each of them."""
    model, tok = build("llama"), tokenizer()
    prompts = [[3, 18, 19, 8, 15, 9, 20, 4], [3, 10, 11, 4]]
    greedy = SamplingParams(n=1, max_new_tokens=6, temperature=0)
    free = make_backend("hf", model, tok).generate(prompts, greedy)
    first = int(free.response_ids_BR[0, 1])  # what row 0 says second, greedily
    assert first != tok.eos_token_id and free.response_mask_BR[0].sum() == 6
    model.generation_config.eos_token_id = [tok.eos_token_id, first]
    assert end_of_turn_ids(model, tok) == sorted({tok.eos_token_id, first})
    stopped = make_backend("hf", model, tok).generate(prompts, greedy)
    assert stopped.response_mask_BR[0].sum() == 2 and int(stopped.response_ids_BR[0, 1]) == first
    n1 = int(stopped.response_mask_BR[1].sum())
    assert stopped.response_ids_BR[1, :n1].tolist() == free.response_ids_BR[1, :n1].tolist()


@pytest.mark.slow
def test_a_users_gemma3_checkpoint_trains_on_transformers_logprobs_and_stops_at_its_turn_end(
    tmp_path,
):
    """`minimalrl train` on a saved Gemma-3 folder (8-token windows, soft-capped logits, a
    second end-of-turn id in its generation config): π_old is the sampler's own distribution
    (`mismatch_abs_log_ratio` at float32 rounding, not the ~1 nat a lost window gives), the
    checkpoint loads in plain transformers, and `minimalrl eval` runs on it."""
    from transformers import AutoModelForCausalLM

    from minimalrl.cli import main
    from minimalrl.eval.metrics import read_metrics

    model, tok = build("gemma3"), tokenizer()
    end_of_turn = tok.convert_tokens_to_ids("<|im_start|>")
    model.generation_config.eos_token_id = [tok.eos_token_id, end_of_turn]
    src = tmp_path / "gemma3"
    model.save_pretrained(src)
    tok.save_pretrained(src)
    out = tmp_path / "run"
    sets = {"model": src, "train_data": "arithmetic:digits=1,ops=+,n=16",
            "eval_data": "arithmetic:digits=1,ops=+,n=4,split=test", "iterations": 2,
            "prompts_per_iteration": 2, "samples_per_prompt": 2, "max_new_tokens": 12,
            "eval_every": 0, "save_every": 2, "epochs": 2, "temperature": 0.7}  # fmt: skip
    argv = ["train", "--algo", "grpo", "--output", str(out), "--no-progress"]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    assert main(argv) == 0
    records = [r for r in read_metrics(out) if "reward_mean" in r]
    assert len(records) == 2
    mismatch = max(r["mismatch_abs_log_ratio"] for r in records)
    assert mismatch <= FP32_ULPS * U32 * 20, mismatch  # |log p| < 19 here (log 49,152 ≈ 10.8)
    policy = out / "checkpoints" / "iter_000002" / "policy"
    reloaded = AutoModelForCausalLM.from_pretrained(policy)
    assert reloaded.generation_config.eos_token_id == [tok.eos_token_id, end_of_turn]
    ev = str(tmp_path / "eval")
    argv = ["eval", "--model", str(policy), "--benchmark", sets["eval_data"], "--k", "1",
            "--max-new-tokens", "8", "--output", ev, "--no-progress"]  # fmt: skip
    assert main(argv) == 0
