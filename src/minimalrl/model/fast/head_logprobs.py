"""log p(token) and entropy straight from hidden states and the vocabulary projection.

`head_logprobs(h_NH, weight_VH, targets_N)` is what `log_softmax(h @ W.T / T)[target]` computes,
with the gradient written out by hand so that the (N, V) logits never outlive one chunk:

- forward: per chunk of tokens, logits -> logsumexp, the target's logit, the entropy; it keeps
  only h, W and the (N,) logsumexp and entropy;
- backward: per chunk, the logits once more, then in place
  dz = g_logp (onehot - p) - g_ent p (log p + H), and dh = dz W, dW += dz^T h into one buffer.

Against autograd through chunked checkpoints of `log_softmax` this runs the same four (chunk, V)
matmuls, but makes no scatter, softmax or gradient copies of the logits, and accumulates dW in
place instead of allocating a (V, H) gradient per chunk and adding it.

bfloat16 (or float16) h and W: the matmuls run in that dtype (dh, dW in it too, dW summed over
chunks in place as autograd under autocast sums them); logits and softmax in float32.
"""

from __future__ import annotations

import torch

# A micro-batch of ~1,000 response tokens over the default model's 49,152-token vocabulary
# keeps 190 MiB; a larger one recomputes.
KEEP_BYTES = 256 * 2**20


def _logits_into(
    out_nV: torch.Tensor, h_nH: torch.Tensor, weight_VH: torch.Tensor, temperature: float
) -> torch.Tensor:
    """h W^T / T written into `out` (a reused scratch block: no fresh (n, V) allocation)."""
    if h_nH.dtype == out_nV.dtype:
        torch.mm(h_nH, weight_VH.t(), out=out_nV)
    else:  # bf16/fp16 weights: logits in float32
        out_nV.copy_(torch.mm(h_nH, weight_VH.t()))
    return out_nV.div_(temperature) if temperature != 1.0 else out_nV


def _scratch(h_NH: torch.Tensor, weight_VH: torch.Tensor, chunk: int) -> torch.Tensor:
    rows = min(chunk, h_NH.shape[0])
    dtype = torch.promote_types(h_NH.dtype, torch.float32)
    return torch.empty(rows, weight_VH.shape[0], dtype=dtype, device=h_NH.device)


def _no_autocast(device: torch.device) -> torch.autocast:
    """Dtypes here are chosen by hand: an enclosing autocast must not recast them."""
    return torch.autocast(device.type, enabled=False)


class _HeadLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h_NH, weight_VH, targets_N, temperature, chunk, with_entropy, entropy_grad,
                keep_bytes):  # fmt: skip
        with _no_autocast(h_NH.device):
            return _HeadLogprobs._forward(
                ctx, h_NH, weight_VH, targets_N, temperature, chunk, with_entropy, entropy_grad,
                keep_bytes,
            )  # fmt: skip

    @staticmethod
    def _forward(ctx, h_NH, weight_VH, targets_N, temperature, chunk, with_entropy, entropy_grad,
                 keep_bytes):  # fmt: skip
        N = h_NH.shape[0]
        buf = _scratch(h_NH, weight_VH, chunk)
        lse_N = torch.empty(N, dtype=buf.dtype, device=h_NH.device)
        logp_N = torch.empty_like(lse_N)
        ent_N = torch.empty_like(lse_N) if with_entropy else None
        p_buf = torch.empty_like(buf) if with_entropy else None
        # Keep the (N, V) log-probs for the backward pass when they fit in `keep_bytes`: it then
        # skips recomputing the logits (a fourth (N, V, H) matmul) and their normalisation, and
        # both passes run their matmuls over all N rows at once. `needs_input_grad` follows the
        # inputs' requires_grad, not the grad mode: a scoring pass under no_grad/inference_mode
        # (the head weight requires grad) takes this path too, and its block is freed as soon as
        # the forward returns (no graph holds ctx); one matmul over all rows is the faster one.
        entropy_grad = with_entropy and entropy_grad
        keep = (
            (ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
            and not entropy_grad
            and N * weight_VH.shape[0] * buf.element_size() <= keep_bytes
        )
        logp_NV = None
        if keep:
            logp_NV = _logits_into(
                buf.new_empty(N, weight_VH.shape[0]), h_NH, weight_VH, temperature
            )
        for s in range(0, N, chunk):
            sl = slice(s, s + chunk)
            n = h_NH[sl].shape[0]
            if logp_NV is None:
                z_nV = _logits_into(buf[:n], h_NH[sl], weight_VH, temperature)
            else:
                z_nV = logp_NV[sl]
            lse_n = torch.logsumexp(z_nV, dim=-1)
            lse_N[sl] = lse_n
            logp_N[sl] = z_nV.gather(-1, targets_N[sl, None])[:, 0] - lse_n
            if ent_N is not None or logp_NV is not None:
                logp_nV = z_nV.sub_(lse_n[:, None])
            if ent_N is not None:  # H = -sum_v p_v log p_v, the dot product by bmm (no (n, V) temp)
                p_nV = torch.exp(logp_nV, out=p_buf[:n])
                ent_N[sl] = -torch.bmm(p_nV[:, None, :], logp_nV[:, :, None]).view(n)
        ctx.save_for_backward(h_NH, weight_VH, targets_N, lse_N, ent_N)
        # An intermediate, not an input or output: held on ctx, and dropped once used.
        ctx.kept_logp_NV = logp_NV
        ctx.temperature, ctx.chunk = temperature, chunk
        ctx.entropy_grad = entropy_grad
        if ent_N is not None and not ctx.entropy_grad:
            ctx.mark_non_differentiable(ent_N)
        return logp_N, ent_N

    @staticmethod
    def backward(ctx, g_logp_N, g_ent_N):
        with _no_autocast(g_logp_N.device):
            return _HeadLogprobs._backward(ctx, g_logp_N, g_ent_N)

    @staticmethod
    def _backward(ctx, g_logp_N, g_ent_N):
        h_NH, weight_VH, targets_N, lse_N, ent_N = ctx.saved_tensors
        T, chunk = ctx.temperature, ctx.chunk
        # The kept log-probs become the gradient in place: only the first backward pass through
        # this graph can use them; a later one (retain_graph) recomputes.
        logp_NV, ctx.kept_logp_NV = ctx.kept_logp_NV, None
        use_kept = logp_NV is not None
        N = h_NH.shape[0]
        step = max(N, 1) if use_kept else chunk
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        dh_NH = torch.empty_like(h_NH) if need_h else None
        buf = None if use_kept else _scratch(h_NH, weight_VH, chunk)
        dw_VH = None  # the first chunk's product, then summed into in place
        # d/dz of log p(y) is onehot(y) - p; of H it is -p (log p + H). Both go through z = hW^T/T.
        g_logp_N = g_logp_N / T
        g_ent_N = g_ent_N / T if ctx.entropy_grad and g_ent_N is not None else None
        p_buf = torch.empty_like(buf) if g_ent_N is not None else None
        for s in range(0, N, step):
            sl = slice(s, s + step)
            h_nH = h_NH[sl]
            n = h_nH.shape[0]
            if use_kept:
                dz_nV = logp_NV[sl].exp_().mul_(-g_logp_N[sl, None])
            elif g_ent_N is None:
                logp_nV = _logits_into(buf[:n], h_nH, weight_VH, T).sub_(lse_N[sl, None])
                dz_nV = logp_nV.exp_().mul_(-g_logp_N[sl, None])
            else:
                logp_nV = _logits_into(buf[:n], h_nH, weight_VH, T).sub_(lse_N[sl, None])
                p_nV = torch.exp(logp_nV, out=p_buf[:n])
                coef_nV = logp_nV.add_(ent_N[sl, None]).mul_(g_ent_N[sl, None])
                dz_nV = coef_nV.add_(g_logp_N[sl, None]).mul_(p_nV).neg_()
            dz_nV.scatter_add_(-1, targets_N[sl, None], g_logp_N[sl, None])
            dz_nV = dz_nV.to(h_nH.dtype)
            if dh_NH is not None:
                torch.mm(dz_nV, weight_VH, out=dh_NH[sl])
            if need_w and dw_VH is None:
                dw_VH = torch.mm(dz_nV.t(), h_nH)
            elif need_w:
                dw_VH.addmm_(dz_nV.t(), h_nH)
        if need_w and dw_VH is None:  # no tokens
            dw_VH = torch.zeros_like(weight_VH)
        return dh_NH, dw_VH, None, None, None, None, None, None


def head_logprobs(
    h_NH: torch.Tensor,
    weight_VH: torch.Tensor,
    targets_N: torch.Tensor,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
    entropy_grad: bool = True,
    chunk_tokens: int = 256,
    keep_bytes: int = KEEP_BYTES,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(target) (N,) under softmax(h W^T / temperature), and the entropies if asked.

    `entropy_grad=False` returns the entropies as values with no gradient (a metric).
    `keep_bytes`: the (N, V) float32 log-probs are kept for the backward pass when they fit in
    this many bytes (and the entropy is not in the loss); otherwise the backward pass recomputes
    them chunk by chunk. Either way the results are the same.
    """
    return _HeadLogprobs.apply(
        h_NH, weight_VH, targets_N, temperature, chunk_tokens, with_entropy, entropy_grad,
        keep_bytes,
    )  # fmt: skip
