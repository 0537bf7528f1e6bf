"""Fast paths (shared prompt cache, chunked vocabulary projection, our sampler) vs plain ones."""

from __future__ import annotations

import contextlib

import pytest
import torch

from minimalrl.model.fast.packing import pack
from minimalrl.model.fast.support import fast_paths, with_cache
from minimalrl.model.loading import load_policy
from minimalrl.model.logprobs import (
    TokenBatch,
    _packing_applies,
    batched_logprobs,
    packed_response_states,
    response_hidden_states,
    response_logprobs,
)
from minimalrl.rollout import HFBackend, SamplingParams, pad_left


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    model, tokenizer = load_policy(str(tiny_model_dir))
    return model.eval(), tokenizer


def _batch(tokenizer) -> TokenBatch:
    g = torch.Generator().manual_seed(0)
    prompts = [[3, 18, 19, 8, 15, 9], [3, 10, 4], [3, 18, 19, 12, 15, 13, 20, 4]]
    ids, mask = pad_left(prompts, tokenizer.pad_token_id)
    index = torch.tensor([0, 0, 1, 2, 2, 2])
    lengths = torch.tensor([5, 2, 7, 1, 7, 4])
    resp = torch.randint(5, 23, (6, 7), generator=g)
    rmask = (torch.arange(7)[None] < lengths[:, None]).long()
    return TokenBatch(ids, mask, index, resp.masked_fill(rmask == 0, 0), rmask)


def _plain(model, b: TokenBatch, temperature: float = 1.0):
    """Row by row: the whole unpadded sequence through the model, full log-softmax."""
    logp = torch.zeros(b.response_ids_BR.shape)
    ent = torch.zeros(b.response_ids_BR.shape)
    for r in range(b.response_ids_BR.shape[0]):
        p = b.prompt_ids_UP[b.prompt_index_B[r]][b.prompt_mask_UP[b.prompt_index_B[r]].bool()]
        n = int(b.response_mask_BR[r].sum())
        seq = torch.cat([p, b.response_ids_BR[r, :n]])[None]
        logits = model(seq).logits[0, len(p) - 1 : -1].float() / temperature
        lsm = torch.log_softmax(logits, -1)
        logp[r, :n] = lsm.gather(-1, b.response_ids_BR[r, :n, None]).squeeze(-1)
        ent[r, :n] = -(lsm.exp() * lsm).sum(-1)
    return logp, ent


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_shared_prompt_logprobs_match_plain_forward(tiny, temperature):
    model, tokenizer = tiny
    b = _batch(tokenizer)
    with torch.no_grad():
        plain_logp, plain_ent = _plain(model, b, temperature)
        logp, ent = response_logprobs(model, b, temperature=temperature, with_entropy=True,
                                      chunk_tokens=5)  # fmt: skip
    torch.testing.assert_close(logp, plain_logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent, plain_ent, atol=1e-5, rtol=1e-5)
    # Micro-batched (selected rows, trimmed columns) gives the same numbers.
    mb_logp, _ = batched_logprobs(model, b, micro_batch=2, temperature=temperature)
    torch.testing.assert_close(mb_logp, plain_logp, atol=1e-5, rtol=1e-5)


def test_gradients_through_the_shared_prompt_match_plain(tiny):
    model, tokenizer = tiny
    b = _batch(tokenizer)
    weight = model.model.layers[0].mlp.up_proj.weight
    plain_logp, _ = _plain(model, b)
    (g_plain,) = torch.autograd.grad(plain_logp.sum(), weight)
    logp, _ = response_logprobs(model, b)
    (g_fast,) = torch.autograd.grad(logp.sum(), weight)
    torch.testing.assert_close(g_fast, g_plain, atol=1e-5, rtol=1e-4)


def test_tied_embedding_gradient_is_dense_and_matches_plain(tiny):
    # The lookup's gradient is taken sparse and added into the head's dense one.
    model, tokenizer = tiny
    b = _batch(tokenizer)
    weight = model.get_input_embeddings().weight
    assert weight is model.get_output_embeddings().weight
    plain_logp, plain_ent = _plain(model, b)
    (g_plain,) = torch.autograd.grad((plain_logp + 0.1 * plain_ent).sum(), weight)
    logp, ent = response_logprobs(model, b, with_entropy=True, chunk_tokens=4)
    (g_fast,) = torch.autograd.grad((logp + 0.1 * ent).sum(), weight)
    assert not g_fast.is_sparse and not model.get_input_embeddings().sparse
    torch.testing.assert_close(g_fast, g_plain, atol=1e-5, rtol=1e-4)
    assert g_plain.abs().max() > 1e-3  # a gradient worth comparing


def test_select_keeps_only_used_prompts_and_trims(tiny):
    _, tokenizer = tiny
    b = _batch(tokenizer).select([3, 1])
    assert b.prompt_ids_UP.shape[0] == 2 and b.prompt_index_B.tolist() == [1, 0]
    assert b.response_ids_BR.shape[1] == 2  # longest selected response
    assert b.prompt_mask_UP[:, 0].any()  # no all-padding prompt column left


def test_greedy_sampler_matches_hf_generate(tiny):
    model, tokenizer = tiny
    prompts = [[3, 18, 19, 8, 15, 9, 20, 4], [3, 10, 11, 4]]
    backend = HFBackend(model, tokenizer.pad_token_id, [tokenizer.eos_token_id])
    out = backend.generate(prompts, SamplingParams(n=1, max_new_tokens=6, temperature=0))
    for i, p in enumerate(prompts):
        ref = model.generate(torch.tensor([p]), max_new_tokens=6, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)[0, len(p) :]  # fmt: skip
        mine = out.response_ids_BR[i][out.response_mask_BR[i].bool()]
        assert mine.tolist() == ref[: len(mine)].tolist()


def test_matmul_attention_equals_sdpa_when_decoding_a_padded_batch(tiny):
    from transformers import DynamicCache

    from minimalrl.model.fast.matmul_attention import matmul_attention_for
    from minimalrl.model.logprobs import position_ids_from_mask

    model, tokenizer = tiny
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # GQA stacking
    ids, mask = pad_left([[3, 18, 19, 8, 15, 9, 20, 4], [3, 10, 4]], tokenizer.pad_token_id)
    pos = position_ids_from_mask(mask)
    logits = []
    for decode in (False, True):
        cache = DynamicCache()
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask, position_ids=pos, **with_cache(model, cache))
            step_mask = torch.cat([mask, mask.new_ones(2, 1)], 1)
            with matmul_attention_for(model) if decode else contextlib.nullcontext():
                assert model.config._attn_implementation == (
                    "minimalrl_matmul" if decode else "sdpa"
                )
                out = model(input_ids=torch.tensor([[11], [12]]), attention_mask=step_mask,
                            position_ids=pos[:, -1:] + 1, **with_cache(model, cache))  # fmt: skip
        logits.append(out.logits)
    assert model.config._attn_implementation == "sdpa"  # restored
    torch.testing.assert_close(logits[1], logits[0], atol=1e-5, rtol=1e-5)
    assert logits[0][0].sub(logits[0][1]).abs().max() > 1e-3  # the rows really differ


def test_samples_do_not_depend_on_the_batch(tiny):
    model, tokenizer = tiny
    prompts = [[3, 18, 19, 8, 15, 9, 20, 4], [3, 10, 11, 4], [3, 12, 4]]
    backend = HFBackend(model, tokenizer.pad_token_id, [tokenizer.eos_token_id])
    params = SamplingParams(n=3, max_new_tokens=6, temperature=1.0, top_p=0.9, seed=7)
    full = backend.generate(prompts, params)
    part = backend.generate(prompts[2:], params, prompt_keys=[2])
    torch.testing.assert_close(
        full.response_ids_BR[6:, : part.response_ids_BR.shape[1]], part.response_ids_BR
    )
    again = backend.generate(prompts, params)
    assert torch.equal(again.response_ids_BR, full.response_ids_BR)
    other = backend.generate(prompts, SamplingParams(n=3, max_new_tokens=6, seed=8))
    assert not torch.equal(other.response_ids_BR, full.response_ids_BR)


def test_sampler_follows_the_distribution():
    from minimalrl.rollout.hf import row_generators, sample_next

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0]])).expand(4000, 4)
    gens = row_generators(0, list(range(4000)), 1, torch.device("cpu"))
    tokens = sample_next(logits, 1.0, 1.0, gens)
    freq = torch.bincount(tokens, minlength=4).float() / 4000
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.2, 0.0]), atol=0.03, rtol=0)
    cold = sample_next(logits, 0.5, 1.0, gens)  # T = 0.5 squares the probabilities: 25:9:4
    freq = torch.bincount(cold, minlength=4).float() / 4000
    torch.testing.assert_close(freq, torch.tensor([25, 9, 4, 0]) / 38.0, atol=0.03, rtol=0)
    top = sample_next(logits, 1.0, 0.7, gens)  # top-p 0.7 keeps the 0.5 and 0.3 tokens
    assert set(top.tolist()) == {0, 1}


def test_packed_states_equal_padded_ones(tiny):
    # Rows [7], [7], [5 + 2], [4 + 1]: the last two mix prompts 0/1 and 2/2.
    model, tokenizer = tiny
    b = _batch(tokenizer)
    body = model.get_decoder()
    assert _packing_applies(fast_paths(model).packing, b)
    assert pack(b.prompt_mask_UP, b.prompt_index_B, b.response_ids_BR, b.response_mask_BR
                ).input_ids_RW.shape == (4, 7)  # fmt: skip
    with torch.no_grad():
        padded = response_hidden_states(body, b)[b.response_mask_BR.bool()]
        packed = packed_response_states(body, b)
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)
    empty = TokenBatch(b.prompt_ids_UP, b.prompt_mask_UP, b.prompt_index_B,
                       b.response_ids_BR, torch.zeros_like(b.response_mask_BR))  # fmt: skip
    assert not _packing_applies(True, empty)  # nothing to pack: the padded path
    logp, _ = response_logprobs(model, empty)
    assert logp.abs().sum() == 0


def test_bf16_rollout_samples_from_the_cast_weights_and_leaves_the_policy(tiny):
    import copy

    model, tokenizer = tiny
    prompts = [[3, 18, 19, 8, 15, 9, 20, 4], [3, 10, 11, 4]]
    params = SamplingParams(n=3, max_new_tokens=6, temperature=1.0, seed=5)
    cast = copy.deepcopy(model)
    for p in cast.parameters():  # parameters only: rotary frequencies stay float32
        p.data = p.data.to(torch.bfloat16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    eos = [tokenizer.eos_token_id]
    out = HFBackend(model, tokenizer.pad_token_id, eos, dtype=torch.bfloat16).generate(
        prompts, params
    )
    ref = HFBackend(cast, tokenizer.pad_token_id, eos).generate(prompts, params)
    assert torch.equal(out.response_ids_BR, ref.response_ids_BR)
    for k, v in model.state_dict().items():
        assert v.dtype == before[k].dtype and torch.equal(v, before[k])


def test_sampled_logprobs_by_hand():
    from minimalrl.rollout.hf import sampled_logprobs

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    token = torch.tensor([1, 2])
    expected = torch.log(torch.tensor([0.3, 0.2]))
    torch.testing.assert_close(sampled_logprobs(logits, token, 1.0), expected)
    torch.testing.assert_close(sampled_logprobs(logits, token, 0.0), expected)  # greedy: T = 1
    squared = torch.log(torch.tensor([9, 4]) / 38.0)  # T = 0.5 squares them: 25:9:4
    torch.testing.assert_close(sampled_logprobs(logits, token, 0.5), squared)


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_sampler_logprobs_are_the_trainers_in_float32_and_drift_in_bf16(tiny, temperature):
    """The sampler keeps its own log-probs of what it drew: with the policy's float32 weights they
    are π_old's up to the order of float32 sums (a KV cache step by step vs one forward); from
    the bfloat16 cast they differ, which is what the rollout correction is about."""
    from minimalrl.model.logprobs import logprob_temperature

    model, tokenizer = tiny
    prompts = [[3, 18, 19, 8, 15, 9, 20, 4], [3, 10, 11, 4]]
    params = SamplingParams(n=3, max_new_tokens=6, temperature=temperature, seed=5)
    eos = [tokenizer.eos_token_id]
    gaps = {}
    for dtype in (None, torch.bfloat16):
        ro = HFBackend(model, tokenizer.pad_token_id, eos, dtype=dtype).generate(prompts, params)
        with torch.no_grad():
            trainer, _ = response_logprobs(model, ro, temperature=logprob_temperature(temperature))
        valid = ro.response_mask_BR.bool()
        assert ro.sampler_logp_BR.shape == trainer.shape
        assert (ro.sampler_logp_BR[~valid] == 0).all() and (ro.sampler_logp_BR[valid] < 0).all()
        gaps[dtype] = (ro.sampler_logp_BR - trainer)[valid].abs().max().item()
    assert gaps[None] < 1e-5, gaps
    # bfloat16 keeps 8 bits of mantissa: weights move by up to 2^-9 of themselves.
    assert 1e-4 < gaps[torch.bfloat16] < 0.1, gaps


def test_critic_values_from_packed_rows_equal_padded(tiny):
    from minimalrl.policy.critic import ValueModel

    model, tokenizer = tiny
    b = _batch(tokenizer)
    critic = ValueModel(model)
    torch.nn.init.normal_(critic.head.weight, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        values = critic(b)  # packed: 6 responses in 4 rows
        padded = critic.head(response_hidden_states(critic.body, b)).squeeze(-1)
    torch.testing.assert_close(values, padded * b.response_mask_BR, atol=1e-5, rtol=1e-5)
    assert values[b.response_mask_BR.bool()].abs().min() > 0  # real values, padding zero


def test_matmul_attention_equals_sdpa_with_grouped_heads_and_a_4d_mask():
    from types import SimpleNamespace

    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from minimalrl.model.fast.matmul_attention import matmul_attention_forward

    g = torch.Generator().manual_seed(0)
    B, H, Hkv, Q, L, D = 3, 4, 2, 5, 9, 8  # query heads 2j, 2j+1 share key/value head j
    q = torch.randn(B, H, Q, D, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(B, Hkv, L, D, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(B, Hkv, L, D, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(B, 1, Q, L, generator=g) > 0.4
    mask[..., 0] = True  # every query row sees a key (SDPA gives NaN otherwise)
    module = SimpleNamespace(num_key_value_groups=H // Hkv, is_causal=True, training=False)
    go = torch.randn(B, Q, H, D, generator=g, dtype=torch.float64)
    outs = []
    for fn in (sdpa_attention_forward, matmul_attention_forward):
        out, _ = fn(module, q, k, v, mask, scaling=0.3)
        grads = torch.autograd.grad(out, (q, k, v), go)
        outs.append((out, *grads))
    for mine, ref in zip(outs[1], outs[0]):
        torch.testing.assert_close(mine, ref, rtol=1e-10, atol=1e-12)
    # A query row that sees no key at all (left padding in a prompt) stays finite.
    mask[0, 0, 0] = False
    out, _ = matmul_attention_forward(module, q, k, v, mask)
    assert torch.isfinite(out).all()


def test_packed_states_under_bf16_autocast_use_matmul_attention_and_match_padded(tiny):
    from unittest import mock

    import minimalrl.model.fast.matmul_attention as ma

    model, tokenizer = tiny
    b = _batch(tokenizer)
    body = model.get_decoder()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        padded = response_hidden_states(body, b)[b.response_mask_BR.bool()]
        spy = mock.Mock(wraps=ma.matmul_attention_forward)
        with mock.patch.dict(ma.AttentionInterface._global_mapping, {ma.NAME: spy}):
            packed = packed_response_states(body, b)
    assert spy.call_count == model.config.num_hidden_layers  # the packed rows' pass
    assert model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(packed.float(), padded.float(), atol=0.05, rtol=0.05)
