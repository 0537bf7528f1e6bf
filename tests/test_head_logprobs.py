"""The hand-written gradient of `head_logprobs` against autograd through log_softmax."""

from __future__ import annotations

import pytest
import torch

from minimalrl.model.fast.head_logprobs import head_logprobs


def _inputs(seed: int = 0, N: int = 7, V: int = 11, H: int = 5):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, H, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(V, H, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, V, (N,), generator=g)
    return h, w, y, g


def _plain(h, w, y, temperature):
    lsm = torch.log_softmax(h @ w.T / temperature, dim=-1)
    return lsm.gather(-1, y[:, None])[:, 0], -(lsm.exp() * lsm).sum(-1)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("entropy_in_loss", [False, True])
@pytest.mark.parametrize("keep_bytes", [0, 2**30])  # recomputed in backward / kept from forward
def test_values_and_gradients_match_autograd(temperature, entropy_in_loss, keep_bytes):
    h, w, y, g = _inputs()
    a, b = (
        torch.randn(7, generator=g, dtype=torch.float64),
        torch.randn(7, generator=g, dtype=torch.float64),
    )
    logp, ent = _plain(h, w, y, temperature)
    loss = (a * logp).sum() + ((b * ent).sum() if entropy_in_loss else 0.0)
    dh, dw = torch.autograd.grad(loss, (h, w))
    # chunk 3 of 7 tokens: the last chunk is short
    f_logp, f_ent = head_logprobs(h, w, y, temperature=temperature, with_entropy=True,
                                  entropy_grad=entropy_in_loss, chunk_tokens=3,
                                  keep_bytes=keep_bytes)  # fmt: skip
    torch.testing.assert_close(f_logp, logp)
    torch.testing.assert_close(f_ent, ent)
    f_loss = (a * f_logp).sum() + ((b * f_ent).sum() if entropy_in_loss else 0.0)
    for _ in range(2):  # a second backward through the same graph gives the same gradients
        f_dh, f_dw = torch.autograd.grad(f_loss, (h, w), retain_graph=True)
        torch.testing.assert_close(f_dh, dh, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(f_dw, dw, rtol=1e-10, atol=1e-12)


def test_log_probs_are_kept_for_backward_only_when_they_fit_and_are_needed():
    h, w, y, _ = _inputs()  # 7 x 11 float64: 616 bytes of log-probs

    def kept(**kwargs) -> bool:
        logp, _ = head_logprobs(h, w, y, chunk_tokens=3, **kwargs)
        return logp.grad_fn.kept_logp_NV is not None

    assert kept(keep_bytes=616) and not kept(keep_bytes=615)
    assert not kept(keep_bytes=2**30, with_entropy=True, entropy_grad=True)  # needs both p, log p
    assert kept(keep_bytes=2**30, with_entropy=True, entropy_grad=False)
    with torch.no_grad():
        logp, _ = head_logprobs(h, w, y, keep_bytes=2**30)
    assert logp.grad_fn is None


def test_entropy_as_a_metric_has_no_gradient():
    h, w, y, _ = _inputs()
    logp, ent = head_logprobs(h, w, y, with_entropy=True, entropy_grad=False)
    assert logp.requires_grad and not ent.requires_grad
    _, none = head_logprobs(h, w, y)
    assert none is None


def test_gradient_raises_the_target_and_lowers_the_rest():
    # One token, gradient ascent on log p(y): the target's weight row moves along h, others against.
    h = torch.tensor([[1.0, 2.0]])
    w = torch.zeros(3, 2, requires_grad=True)
    logp, _ = head_logprobs(h, w, torch.tensor([1]))
    (dw,) = torch.autograd.grad(logp.sum(), w)
    # d log p_1 / d w_v = (1[v=1] - 1/3) h at uniform p
    torch.testing.assert_close(
        dw, torch.tensor([[-1 / 3, -2 / 3], [2 / 3, 4 / 3], [-1 / 3, -2 / 3]])
    )


@pytest.mark.parametrize("keep_bytes", [0, 2**30])
def test_bf16_matmuls_under_autocast_sum_in_float32(keep_bytes):
    """bf16 h and W (as under autocast), 8 chunks: float32 log-probs and gradients within 1% (in
    norm) of the float64 values for the same bf16-rounded inputs."""
    g = torch.Generator().manual_seed(3)
    N, V, H = 64, 50, 16
    h = torch.randn(N, H, generator=g, requires_grad=True)
    w = torch.randn(V, H, generator=g, requires_grad=True)
    y = torch.randint(0, V, (N,), generator=g)
    a = torch.randn(N, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # must not recast inside
        logp, _ = head_logprobs(h.to(torch.bfloat16), w.to(torch.bfloat16), y, chunk_tokens=8,
                                keep_bytes=keep_bytes)  # fmt: skip
    assert logp.dtype == torch.float32
    dh, dw = torch.autograd.grad((a * logp).sum(), (h, w))
    assert dh.dtype == dw.dtype == torch.float32
    h64 = h.detach().to(torch.bfloat16).double().requires_grad_()
    w64 = w.detach().to(torch.bfloat16).double().requires_grad_()
    ref, _ = _plain(h64, w64, y, 1.0)
    rdh, rdw = torch.autograd.grad((a.double() * ref).sum(), (h64, w64))
    for mine, exact in ((logp, ref), (dh, rdh), (dw, rdw)):
        assert (mine.double() - exact).norm() < 0.01 * exact.norm()
