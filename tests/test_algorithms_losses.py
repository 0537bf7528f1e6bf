"""Aggregation, policy losses, KL estimators and entropy: hand values and autograd checks."""

from __future__ import annotations

import math

import pytest
import torch

from minimalrl.algorithms import (
    AGGREGATIONS,
    POLICY_LOSSES,
    UnknownNameError,
    aggregate,
    clipped_policy_loss,
    entropy_from_logits,
    is_policy_loss,
    kl_penalty,
    sft_loss,
)

# --- aggregate ------------------------------------------------------------------------------------

VALUES = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]])  # third row fully masked (e.g. filtered out)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token_mean", (1 + 2 + 4) / 3),
        ("seq_mean_token_mean", (1.5 + 4) / 2),  # empty rows do not count
        ("seq_mean_token_sum", (3 + 4) / 2),
    ],
)
def test_aggregate_modes_by_hand(mode, expected):
    assert aggregate(VALUES, MASK, mode).item() == pytest.approx(expected)
    assert aggregate(VALUES, MASK.bool(), mode).item() == pytest.approx(expected)


def test_aggregate_explicit_normalisers():
    assert aggregate(VALUES, MASK, "token_mean", num_tokens=7).item() == pytest.approx(1.0)
    assert aggregate(VALUES, MASK, "seq_mean_token_mean", num_seqs=4).item() == pytest.approx(
        5.5 / 4
    )
    assert aggregate(VALUES, MASK, "seq_mean_token_sum", num_seqs=7).item() == pytest.approx(1.0)
    # each mode reads only its own normaliser
    both = {"num_tokens": 100.0, "num_seqs": 4.0}
    assert aggregate(VALUES, MASK, "token_mean", **both).item() == pytest.approx(0.07)
    assert aggregate(VALUES, MASK, "seq_mean_token_sum", **both).item() == pytest.approx(7 / 4)


def test_aggregate_masked_nan_and_inf_do_not_leak():
    values = torch.tensor([[1.0, float("nan")], [float("inf"), 3.0]], requires_grad=True)
    mask = torch.tensor([[1, 0], [0, 1]])
    for mode in AGGREGATIONS:
        out = aggregate(values, mask, mode, max_len=2)  # (read only by the Dr. GRPO mode)
        out.backward()
        assert torch.isfinite(out)
        assert torch.isfinite(values.grad).all()
        values.grad = None


def test_aggregate_empty_mask_is_zero():
    assert aggregate(VALUES, torch.zeros_like(MASK), "token_mean").item() == 0.0


def test_aggregate_errors():
    with pytest.raises(ValueError, match="token_mean") as info:
        aggregate(VALUES, MASK, "sum")
    assert isinstance(info.value, UnknownNameError)
    assert all(mode in str(info.value) for mode in AGGREGATIONS)
    with pytest.raises(ValueError, match="num_tokens"):
        aggregate(VALUES, MASK, num_tokens=0)
    with pytest.raises(ValueError, match="differ"):
        aggregate(VALUES, MASK[:, :2])


# --- clipped surrogate: the four quadrants --------------------------------------------------------


def _grad_one_token(loss_fn, ratio, advantage, **kwargs):
    """Loss and d loss / d logp for a single token with old logp 0 and ratio s."""
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    loss, metrics = loss_fn(
        logp, torch.zeros(1, 1), torch.tensor([[advantage]]), torch.ones(1, 1), **kwargs
    )
    loss.backward()
    return loss.item(), logp.grad.item(), metrics


@pytest.mark.parametrize(
    ("ratio", "advantage", "loss", "grad"),
    [
        (1.5, 1.0, -1.2, 0.0),  # A > 0, s > 1+ε: clipped branch binds, gradient zero
        (0.5, 1.0, -0.5, -0.5),  # A > 0, s < 1−ε: unclipped term is the min, flows (−A·s)
        (1.5, -1.0, 1.5, 1.5),  # A < 0, s > 1+ε: flows, so the update can correct itself
        (0.5, -1.0, 0.8, 0.0),  # A < 0, s < 1−ε: clipped branch binds, gradient zero
        (1.1, 2.0, -2.2, -2.2),  # inside the band: plain s·A
    ],
)
def test_clipped_quadrants(ratio, advantage, loss, grad):
    got_loss, got_grad, metrics = _grad_one_token(clipped_policy_loss, ratio, advantage)
    assert got_loss == pytest.approx(loss)
    assert got_grad == pytest.approx(grad, abs=1e-7)
    assert metrics["clip_fraction"].item() == (1.0 if grad == 0.0 else 0.0)


def test_asymmetric_clip():
    _, grad, _ = _grad_one_token(clipped_policy_loss, 1.25, 1.0, clip_low=0.2, clip_high=0.28)
    assert grad == pytest.approx(-1.25)  # inside [0.8, 1.28]
    _, grad, _ = _grad_one_token(clipped_policy_loss, 1.3, 1.0, clip_low=0.2, clip_high=0.28)
    assert grad == 0.0


def test_dual_clip():
    # A = −1, s = 5: ℓ = min(−5, −1.2) = −5; dual clip c = 3 floors it at −3, gradient zero.
    loss, grad, metrics = _grad_one_token(clipped_policy_loss, 5.0, -1.0, dual_clip=3.0)
    assert (loss, grad) == (pytest.approx(3.0), 0.0)
    assert metrics["clip_fraction_dual"].item() == 1.0
    loss, grad, _ = _grad_one_token(clipped_policy_loss, 5.0, -1.0)
    assert (loss, grad) == (pytest.approx(5.0), pytest.approx(5.0))
    loss, grad, metrics = _grad_one_token(clipped_policy_loss, 2.0, -1.0, dual_clip=3.0)
    assert (loss, grad) == (pytest.approx(2.0), pytest.approx(2.0))  # above the floor: flows
    assert metrics["clip_fraction_dual"].item() == 0.0
    loss, grad, _ = _grad_one_token(clipped_policy_loss, 5.0, 1.0, dual_clip=3.0)
    assert (loss, grad) == (pytest.approx(-1.2), 0.0)  # A > 0 untouched
    with pytest.raises(ValueError, match="dual_clip"):
        _grad_one_token(clipped_policy_loss, 1.0, 1.0, dual_clip=1.0)


def test_clip_metrics_split_by_advantage_sign():
    ratio = torch.tensor([[1.5, 0.5, 1.5, 0.5, 1.0, 9.0]])
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0, 1.0, 1.0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])  # the last (clipped) token is padding
    _, metrics = clipped_policy_loss(ratio.log(), torch.zeros_like(ratio), advantages, mask)
    assert metrics["clip_fraction"].item() == pytest.approx(2 / 5)
    assert metrics["clip_fraction_pos"].item() == pytest.approx(1 / 3)
    assert metrics["clip_fraction_neg"].item() == pytest.approx(1 / 2)
    assert metrics["ratio_mean"].item() == pytest.approx(5.0 / 5)
    assert metrics["ratio_max"].item() == pytest.approx(1.5)
    kl = sum(s - 1 - math.log(s) for s in (1.5, 0.5, 1.5, 0.5, 1.0)) / 5
    assert metrics["approx_kl"].item() == pytest.approx(kl)


@pytest.mark.parametrize(("ratio", "advantage"), [(1.5, 1.0), (0.5, 1.0), (1.5, -1.0), (0.5, -1.0)])
def test_importance_sampling_without_clip_always_flows(ratio, advantage):
    loss, grad, _ = _grad_one_token(is_policy_loss, ratio, advantage)
    assert loss == pytest.approx(-ratio * advantage)
    assert grad == pytest.approx(-ratio * advantage)


def test_sft_loss():
    logp = torch.tensor([[-1.0, -2.0, -9.0], [-3.0, -9.0, -9.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    loss, metrics = sft_loss(logp, mask)
    assert loss.item() == pytest.approx(2.0)
    assert metrics["nll"].item() == pytest.approx(2.0)
    loss.backward()
    third = -1 / 3
    torch.testing.assert_close(logp.grad, torch.tensor([[third, third, 0.0], [third, 0.0, 0.0]]))
    assert sft_loss(logp, mask, "seq_mean_token_sum")[0].item() == pytest.approx(3.0)


def test_sft_loss_weighs_by_the_advantage_and_counts_zeroed_rows():
    """RAFT with filtered = zero: the wrong response stays in the batch with A = 0; its tokens
    are in the token mean's denominator (2 + 1 + 2 = 5) but get no gradient."""
    logp = torch.tensor([[-1.0, -2.0], [-3.0, -9.0], [-4.0, -5.0]], requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 0], [1, 1]])
    adv = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    loss, _ = sft_loss(logp, mask, advantages_BT=adv)
    assert loss.item() == pytest.approx((1 + 2 + 4 + 5) / 5)
    loss.backward()
    fifth = -1 / 5
    expected = torch.tensor([[fifth, fifth], [0.0, 0.0], [fifth, fifth]])
    torch.testing.assert_close(logp.grad, expected)
    # All ones is the plain NLL, bit for bit (drop mode: every row in the batch is kept).
    ones = sft_loss(logp, mask, advantages_BT=torch.ones(3, 2))[0]
    assert ones.item() == sft_loss(logp, mask)[0].item()


def test_raft_zero_has_raft_pp_first_step_gradient():
    """At the first (on-policy) step RAFT++'s ratio is 1: with the same 0/1 advantages and the same
    denominator, RAFT's zeroed SFT loss has exactly its gradient."""
    torch.manual_seed(0)
    logp = torch.randn(3, 4).log_softmax(-1)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    adv = torch.tensor([1.0, 0.0, 1.0])[:, None].expand(3, 4)
    grads = []
    for name in ("sft", "clipped"):
        x = logp.clone().requires_grad_(True)
        POLICY_LOSSES[name](x, logp, adv, mask)[0].backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_wild_padding_log_probs_give_finite_gradients():
    logp = torch.tensor([[-1.0, 500.0]], requires_grad=True)
    old = torch.tensor([[-1.2, -500.0]])
    loss, _ = clipped_policy_loss(logp, old, torch.ones(1, 2), torch.tensor([[1, 0]]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all()


# --- minibatches with a global normaliser = one batch ---------------------------------------------


def _tiny_policy_batch(seed=0, batch=6, steps=5, features=4, vocab=7):
    gen = torch.Generator().manual_seed(seed)
    policy = torch.nn.Linear(features, vocab)
    with torch.no_grad():
        policy.weight.copy_(torch.randn(vocab, features, generator=gen))
        policy.bias.zero_()
    inputs = torch.randn(batch, steps, features, generator=gen)
    tokens = torch.randint(vocab, (batch, steps), generator=gen)
    lengths = torch.tensor([5, 1, 3, 0, 4, 2])
    mask = torch.arange(steps) < lengths[:, None]
    advantages = torch.randn(batch, steps, generator=gen)
    with torch.no_grad():
        old = _logp(policy, inputs, tokens) + 0.3 * torch.randn(batch, steps, generator=gen)
    return policy, inputs, tokens, mask, advantages, old


def _logp(policy, inputs, tokens):
    return policy(inputs).log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _grads(policy, batches, **kwargs):
    policy.zero_grad()
    for inputs, tokens, mask, advantages, old, loss_name in batches:
        logp = _logp(policy, inputs, tokens)
        loss, _ = POLICY_LOSSES[loss_name](logp, old, advantages, mask, **kwargs)
        loss.backward()
    return policy.weight.grad.clone()


@pytest.mark.parametrize("loss_name", ["clipped", "is_no_clip", "sft"])
@pytest.mark.parametrize("agg", sorted(AGGREGATIONS))
def test_minibatch_accumulation_with_global_normaliser_equals_one_batch(loss_name, agg):
    policy, inputs, tokens, mask, advantages, old = _tiny_policy_batch()
    full = _grads(policy, [(inputs, tokens, mask, advantages, old, loss_name)], agg=agg, max_len=8)
    totals = {
        "num_tokens": mask.sum().item(),
        "num_seqs": (mask.sum(-1) > 0).sum().item(),
        "max_len": 8,
    }
    parts = [
        (inputs[rows], tokens[rows], mask[rows], advantages[rows], old[rows], loss_name)
        for rows in (slice(0, 2), slice(2, 5), slice(5, 6))
    ]
    accumulated = _grads(policy, parts, agg=agg, **totals)
    torch.testing.assert_close(accumulated, full)


def test_minibatch_mean_without_normaliser_differs():
    policy, inputs, tokens, mask, advantages, old = _tiny_policy_batch()
    full = _grads(policy, [(inputs, tokens, mask, advantages, old, "clipped")])
    halves = [
        (inputs[r], tokens[r], mask[r], advantages[r], old[r], "clipped")
        for r in (slice(0, 3), slice(3, 6))
    ]
    assert not torch.allclose(_grads(policy, halves) / 2, full)


# --- KL estimators and entropy --------------------------------------------------------------------


def test_kl_estimators_by_hand():
    logp, ref = torch.tensor([0.0]), torch.tensor([math.log(2.0)])  # q = log 2
    assert kl_penalty(logp, ref, "k1").item() == pytest.approx(-math.log(2))
    assert kl_penalty(logp, ref, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)
    assert kl_penalty(logp, ref, "k3").item() == pytest.approx(2 - math.log(2) - 1)
    assert kl_penalty(logp, ref).item() == pytest.approx(2 - math.log(2) - 1)  # k3 by default


def test_kl_estimators_zero_for_equal_policies_and_k3_nonnegative():
    gen = torch.Generator().manual_seed(0)
    logp = torch.randn(4, 9, generator=gen)
    for kind in ("k1", "k2", "k3"):
        assert (kl_penalty(logp, logp, kind) == 0).all()
    ref = torch.randn(4, 9, generator=gen) * 3
    assert (kl_penalty(logp, ref, "k3") >= 0).all()
    assert (kl_penalty(logp, ref, "k2") >= 0).all()
    with pytest.raises(ValueError, match="k3"):
        kl_penalty(logp, ref, "k4")


def test_k1_is_unbiased_for_the_true_kl():
    probs, ref_probs = torch.tensor([0.7, 0.2, 0.1]), torch.tensor([0.3, 0.3, 0.4])
    true_kl = (probs * (probs / ref_probs).log()).sum()
    for kind in ("k1", "k3"):  # exact expectation under π_θ
        expected = (probs * kl_penalty(probs.log(), ref_probs.log(), kind)).sum()
        torch.testing.assert_close(expected, true_kl)


def _entropy_reference(logits):
    logp = logits.float().log_softmax(-1)
    return -(logp.exp() * logp).sum(-1)


@pytest.mark.parametrize("chunk_rows", [None, 1, 3, 7, 1024])
def test_entropy_matches_definition(chunk_rows):
    logits = torch.randn(3, 5, 11, generator=torch.Generator().manual_seed(0)) * 4
    entropy = entropy_from_logits(logits, chunk_rows=chunk_rows)
    assert entropy.shape == (3, 5)
    torch.testing.assert_close(entropy, _entropy_reference(logits))


def test_entropy_uniform_noncontiguous_bf16_and_grad():
    assert entropy_from_logits(torch.zeros(2, 4, 50)).allclose(torch.full((2, 4), math.log(50)))
    logits = torch.randn(2, 6, 9, generator=torch.Generator().manual_seed(1))
    sliced = logits[:, :-1]  # a non-contiguous view
    torch.testing.assert_close(
        entropy_from_logits(sliced, chunk_rows=2), _entropy_reference(sliced)
    )
    half = entropy_from_logits(logits.bfloat16())
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, _entropy_reference(logits.bfloat16()))
    leaf = logits.clone().requires_grad_()
    entropy_from_logits(leaf, chunk_rows=3).sum().backward()
    reference_leaf = logits.clone().requires_grad_()
    _entropy_reference(reference_leaf).sum().backward()
    torch.testing.assert_close(leaf.grad, reference_leaf.grad)
    assert entropy_from_logits(torch.zeros(2, 0, 5)).shape == (2, 0)
