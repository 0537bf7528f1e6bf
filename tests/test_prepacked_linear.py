"""oneDNN linear layers on reordered weights (sampling's fast path) vs PyTorch's plain linear."""

from __future__ import annotations

import functools

import pytest
import torch
from torch.nn import functional as F

from minimalrl.model.fast.prepacked_linear import prepacked_linears, prepacking_supported
from minimalrl.model.fast.support import with_cache
from minimalrl.model.loading import load_policy
from minimalrl.rollout import HFBackend, SamplingParams

pytestmark = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN"
)


def _onednn_calls(fn) -> tuple[torch.Tensor, int]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        out = fn()
    return out, sum(e.count for e in prof.key_averages() if "_linear_pointwise" in e.key)


def _linear(weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.nn.Linear:
    m = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    m.weight = torch.nn.Parameter(weight, requires_grad=weight.requires_grad)
    if bias is not None:
        m.bias = torch.nn.Parameter(bias, requires_grad=False)
    return m


def test_prepacked_linear_equals_plain_linear_and_falls_back_where_it_must():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(96, 48, generator=g)
    bias = torch.randn(96, generator=g)
    x = torch.randn(5, 3, 48, generator=g)  # any leading shape, as (B, 1, H) in decoding
    plain, biased, other = _linear(w.clone()), _linear(w.clone(), bias), _linear(w.clone())
    with torch.no_grad(), prepacked_linears([plain, biased], rows=15):
        y, calls = _onednn_calls(lambda: plain(x))
        yb, calls_b = _onednn_calls(lambda: biased(x))
        _, calls_other = _onednn_calls(lambda: other(x))  # not prepacked
        # a weight swapped in after entry (as functional_call does) is used, by the plain path
        swapped = torch.randn(96, 48, generator=g)
        ys, calls_swapped = _onednn_calls(
            lambda: torch.func.functional_call(plain, {"weight": swapped}, (x,))
        )
    assert calls == 1 and calls_b == 1 and calls_other == 0 and calls_swapped == 0
    torch.testing.assert_close(y, F.linear(x, w), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(yb, F.linear(x, w, bias), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ys, F.linear(x, swapped))
    assert y.shape == (5, 3, 96)
    assert "forward" not in plain.__dict__ and "forward" not in biased.__dict__  # restored

    # a call that needs gradients takes autograd's path, and gets the plain gradient
    trained = _linear(w.clone().requires_grad_())
    with prepacked_linears([trained], rows=15):
        out, calls_grad = _onednn_calls(lambda: trained(x))
    out.sum().backward()
    assert calls_grad == 0
    torch.testing.assert_close(trained.weight.grad, x.reshape(-1, 48).sum(0).expand(96, 48))

    assert not prepacking_supported([w.bfloat16()])  # bf16 is already oneDNN's: left alone
    half = _linear(w.bfloat16())
    with torch.no_grad(), prepacked_linears([half], rows=15):
        _, calls_bf16 = _onednn_calls(lambda: half(x.bfloat16()))
    assert calls_bf16 == 0


def test_sampling_with_prepacked_weights_matches_plain(tiny_model_dir):
    from transformers import DynamicCache

    from minimalrl.model.logprobs import position_ids_from_mask
    from minimalrl.rollout import pad_left

    model, tokenizer = load_policy(str(tiny_model_dir))
    model.eval()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    ids, mask = pad_left([[3, 18, 19, 8, 15, 9, 20, 4], [3, 10, 4]], tokenizer.pad_token_id)
    pos = position_ids_from_mask(mask)
    logits, counts = [], []
    for prepack in (False, True):
        with torch.inference_mode(), prepacked_linears(linears if prepack else [], rows=2):
            cache = DynamicCache()
            model(input_ids=ids, attention_mask=mask, position_ids=pos, **with_cache(model, cache))
            step = {
                "input_ids": torch.tensor([[11], [12]]),
                "attention_mask": torch.cat([mask, mask.new_ones(2, 1)], 1),
                "position_ids": pos[:, -1:] + 1,
                "cache": cache,
            }
            out, n = _onednn_calls(functools.partial(lambda kw: model(**kw).logits, step))
        logits.append(out)
        counts.append(n)
    # every linear layer of the decoding step (and the head) went through oneDNN
    assert counts == [0, len(linears)]
    torch.testing.assert_close(logits[1], logits[0], atol=1e-5, rtol=1e-5)

    prompts = [[3, 18, 19, 8, 15, 9, 20, 4], [3, 10, 11, 4]]
    greedy = SamplingParams(n=2, max_new_tokens=8, temperature=0)
    eos = [tokenizer.eos_token_id]
    fast = HFBackend(model, tokenizer.pad_token_id, eos).generate(prompts, greedy)
    plain = HFBackend(model, tokenizer.pad_token_id, eos, prepack=False).generate(prompts, greedy)
    assert torch.equal(fast.response_ids_BR, plain.response_ids_BR)
    assert all(p.grad is None and not p.is_inference() for p in model.parameters())
