"""The one place that meets the model: token ids in, per-token log-probs (and entropies) out.

Rollouts (old log-probs), losses (new log-probs), the reference model and the metrics all call
`response_logprobs`, so the numbers they compare are computed the same way.

Layout (`TokenBatch`): U distinct left-padded prompts and B right-padded responses, each pointing to
its prompt; we return values for the response tokens only, shaped (B, R). The vocabulary projection
is applied only to the hidden states that predict response tokens, chunk by chunk, so no (B, T, V)
float tensor for the prompt is made.

That split of the model into body and head, and the fast paths below it, are taken only where
`model.fast.support.fast_paths` allows them; any other causal LM is scored by its own forward
over whole rows (`own_forward_logprobs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import DynamicCache

from minimalrl.model.fast.head_logprobs import head_logprobs
from minimalrl.model.fast.matmul_attention import matmul_attention_for
from minimalrl.model.fast.packing import pack, packed_rows
from minimalrl.model.fast.support import (
    FastPaths,
    LogitTransform,
    fast_paths,
    takes_argument,
    unwrap,
    with_cache,
)
from minimalrl.scale.fsdp import call_as_forward


def position_ids_from_mask(mask_BL: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as `generate` assigns them: cumsum(mask) - 1."""
    return (mask_BL.long().cumsum(-1) - 1).clamp(min=0)


def backbone_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The transformer body (hidden states) and the vocabulary projection of a causal LM."""
    base = unwrap(model)  # peft
    return base.get_decoder(), base.get_output_embeddings()


@dataclass
class TokenBatch:
    """Token ids of B responses and the U distinct prompts they answer.

    A prompt is stored once however many responses it has: its forward pass is computed once and
    its key/value cache shared by its responses (n samples per prompt cost one prompt forward).
    """

    prompt_ids_UP: torch.Tensor
    """Distinct prompts, left-padded (U, P)."""
    prompt_mask_UP: torch.Tensor
    prompt_index_B: torch.Tensor
    """Which prompt (row of prompt_ids_UP) each response answers (B,)."""
    response_ids_BR: torch.Tensor
    """Responses, right-padded (B, R)."""
    response_mask_BR: torch.Tensor

    def select(self, rows: list[int] | torch.Tensor) -> TokenBatch:
        """The given responses and only their prompts, with all-padding columns cut off."""
        rows_b = torch.as_tensor(rows, dtype=torch.long, device=self.response_ids_BR.device)
        used, index_b = torch.unique(self.prompt_index_B[rows_b], return_inverse=True)
        pmask = self.prompt_mask_UP[used]
        rmask = self.response_mask_BR[rows_b]
        p0 = int(pmask.any(0).nonzero().min()) if pmask.any() else pmask.shape[1] - 1
        r1 = int(rmask.any(0).nonzero().max()) + 1 if rmask.any() else 1
        return TokenBatch(
            self.prompt_ids_UP[used, p0:], pmask[:, p0:], index_b,
            self.response_ids_BR[rows_b, :r1], rmask[:, :r1],
        )  # fmt: skip


@contextmanager
def sparse_tied_embedding_grad(body: nn.Module, allowed: bool) -> Iterator[None]:
    """Within: the input embedding's gradient is sparse (the rows of the tokens seen) when it is
    tied to the vocabulary projection, whose dense gradient it is then added into (`allowed`:
    `FastPaths.sparse_embedding_grad`, a plain embedding tied to a plain head).

    A dense embedding gradient is a zero-filled (V, H) tensor per lookup plus a (V, H) sum with the
    head's: several passes over 113 MB per micro-batch for the default model. An untied embedding
    keeps its dense gradient (optimizers such as Adam refuse sparse ones).
    """
    emb = body.get_input_embeddings()
    if not (allowed and emb.weight.requires_grad and torch.is_grad_enabled()):
        yield
        return
    emb.sparse = True
    try:
        yield
    finally:
        emb.sparse = False


def _prompt_forward(body: nn.Module, batch: TokenBatch, cache: DynamicCache) -> torch.Tensor:
    """Each distinct prompt once through the body into `cache`; its last hidden state (U, H)."""
    out = body(
        input_ids=batch.prompt_ids_UP,
        attention_mask=batch.prompt_mask_UP,
        position_ids=position_ids_from_mask(batch.prompt_mask_UP),
        **with_cache(body, cache),
        use_cache=True,
    )
    return out.last_hidden_state[:, -1]


def response_hidden_states(body: nn.Module, batch: TokenBatch) -> torch.Tensor:
    """Hidden states (B, R, H) that predict each response token, from the transformer body.

    The prompts run once (U rows) into a KV cache, which each response then reads (B rows):
    position P-1+t predicts response token t, so token 0 is predicted by the prompt's last state.
    Gradients flow through the shared cache into the prompt's forward.
    """
    b = batch
    cache = DynamicCache()
    prompt_last_UH = _prompt_forward(body, b, cache)
    cache.batch_select_indices(b.prompt_index_B)
    full_mask_BL = torch.cat([b.prompt_mask_UP[b.prompt_index_B], b.response_mask_BR], dim=1)
    P = b.prompt_ids_UP.shape[1]
    response_out = body(
        input_ids=b.response_ids_BR,
        attention_mask=full_mask_BL,
        position_ids=position_ids_from_mask(full_mask_BL)[:, P:],
        **with_cache(body, cache),
        use_cache=True,
    )
    last_prompt_B1H = prompt_last_UH[b.prompt_index_B, None]
    return torch.cat([last_prompt_B1H, response_out.last_hidden_state[:, :-1]], dim=1)


def packed_response_states(body: nn.Module, batch: TokenBatch) -> torch.Tensor:
    """Hidden states (N, H) predicting each response token, in (response, position) order, with
    the responses packed into as few rows as they fit (`model.fast.packing`): no padding computed.

    Numbers as `response_hidden_states` gives for the same tokens: same prompt cache, positions
    and visible keys; only the row a token sits in differs.
    """
    b = batch
    packed = pack(b.prompt_mask_UP, b.prompt_index_B, b.response_ids_BR, b.response_mask_BR)
    cache = DynamicCache()
    prompt_last_UH = _prompt_forward(body, b, cache)
    R, S = packed.prompt_slots_RS.shape
    flat_slots = packed.prompt_slots_RS.reshape(-1)
    for layer in cache.layers:  # a row's context: its S prompts' keys/values side by side
        for name in ("keys", "values"):
            kv_UHPD = getattr(layer, name)
            _, Hkv, P, D = kv_UHPD.shape
            rows_kv = kv_UHPD[flat_slots].view(R, S, Hkv, P, D).transpose(1, 2)
            setattr(layer, name, rows_kv.reshape(R, Hkv, S * P, D))
    # In bf16, matmul attention halves SDPA's forward + backward on these short rows
    # (docs/measurements.md, "Speed"); in float32 it gains nothing measurable and keeps more for
    # backward.
    low_precision = torch.is_autocast_enabled(prompt_last_UH.device.type)
    with matmul_attention_for(body) if low_precision else nullcontext():
        out = body(
            input_ids=packed.input_ids_RW,
            attention_mask=packed.mask_R1WK,
            position_ids=packed.position_ids_RW,
            **with_cache(body, cache),
            use_cache=True,
        )
    last_prompt_BH = prompt_last_UH[b.prompt_index_B]
    H = last_prompt_BH.shape[-1]
    states = torch.cat([last_prompt_BH, out.last_hidden_state.reshape(-1, H)])
    return states[packed.predictor_N]


def _packing_applies(packing: bool, batch: TokenBatch) -> bool:
    """Pack when the model allows it (`FastPaths.packing`) and it saves rows."""
    if not packing:
        return False
    lengths = batch.response_mask_BR.sum(-1).tolist()
    return 0 < packed_rows(lengths) < len(lengths)


def whole_rows(batch: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Each response after its own prompt: ids and mask (B, P + R), prompt left-padded and
    response right-padded, as one would feed the model one sequence per row."""
    b = batch
    ids_BL = torch.cat([b.prompt_ids_UP[b.prompt_index_B], b.response_ids_BR], dim=1)
    mask_BL = torch.cat([b.prompt_mask_UP[b.prompt_index_B], b.response_mask_BR], dim=1)
    return ids_BL, mask_BL


def whole_row_states(body: nn.Module, batch: TokenBatch) -> torch.Tensor:
    """Hidden states (N, H) predicting each response token, from the body's own forward over
    whole rows (no shared prompt cache): the general path's, for any decoder."""
    ids_BL, mask_BL = whole_rows(batch)
    P = batch.prompt_ids_UP.shape[1]
    out = body(input_ids=ids_BL, attention_mask=mask_BL,
               position_ids=position_ids_from_mask(mask_BL), use_cache=False)  # fmt: skip
    states_BRH = out.last_hidden_state[:, P - 1 : -1]
    return states_BRH[batch.response_mask_BR.bool()]


def response_token_states(body: nn.Module, batch: TokenBatch, paths: FastPaths) -> torch.Tensor:
    """Hidden states (N, H) predicting each response token, in (response, position) order:
    packed when allowed and that saves rows (`packed_response_states`), else from padded rows
    on the shared prompt cache, or from whole rows for a family not checked (`paths.split`)."""
    if not paths.split:
        return whole_row_states(body, batch)
    if _packing_applies(paths.packing, batch):
        return packed_response_states(body, batch)
    B, R = batch.response_ids_BR.shape
    valid_N = batch.response_mask_BR.reshape(-1).bool()
    return response_hidden_states(body, batch).reshape(B * R, -1)[valid_N]


def _chunk_logprobs(
    head: nn.Module,
    transform: LogitTransform | None,
    h_NH: torch.Tensor,
    targets_N: torch.Tensor,
    temperature: float,
    entropy: bool,
    entropy_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(target) and optionally the entropy for N positions from their hidden states, with
    the model's own transform of the head's logits (soft-capping, scaling) where it has one."""
    logits_NV = head(h_NH)
    if transform is not None:
        logits_NV = transform(logits_NV)
    return _logits_logprobs(logits_NV, targets_N, temperature, entropy, entropy_grad)


def _logits_logprobs(
    logits_NV: torch.Tensor,
    targets_N: torch.Tensor,
    temperature: float,
    entropy: bool,
    entropy_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log softmax(logits / T)[target] (N,) in float32, and optionally the entropy."""
    logits_NV = logits_NV.float()
    if temperature != 1.0:
        logits_NV = logits_NV / temperature
    lse_N = torch.logsumexp(logits_NV, dim=-1)
    logp_N = logits_NV.gather(-1, targets_N[:, None]).squeeze(-1) - lse_N
    if not entropy:
        return logp_N, None
    # H = lse - sum_v p_v * logit_v: one softmax, no second log-softmax copy of the logits.
    # As a measurement only (not in the loss), it records no graph: no (N, V) saved for backward.
    with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
        ent_N = lse_N - (torch.softmax(logits_NV, dim=-1) * logits_NV).sum(-1)
    return logp_N, ent_N


def _checkpointed_chunks(
    head: nn.Module,
    transform: LogitTransform | None,
    h_NH: torch.Tensor,
    targets_N: torch.Tensor,
    temperature: float,
    with_entropy: bool,
    entropy_grad: bool,
    chunk_tokens: int,
) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """`_chunk_logprobs` chunk by chunk through any head module, by autograd."""
    logps, ents = [], []
    for start in range(0, h_NH.shape[0], chunk_tokens):
        end = start + chunk_tokens
        args = (head, transform, h_NH[start:end], targets_N[start:end], temperature,
                with_entropy, entropy_grad)  # fmt: skip
        # Under autograd, keep only the chunk's hidden states and recompute its (chunk, V) logits
        # in the backward pass: only a (chunk, V) block of logits is in memory.
        if torch.is_grad_enabled():
            lp, en = checkpoint(_chunk_logprobs, *args, use_reentrant=False)
        else:
            lp, en = _chunk_logprobs(*args)
        logps.append(lp)
        ents.append(en)
    return logps, ents


def response_logprobs(
    model: nn.Module,
    batch: TokenBatch,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
    entropy_grad: bool = True,
    chunk_tokens: int = 256,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (B, R) of the response tokens, and their entropies if asked.

    Padding positions of the response get 0. `temperature` divides the logits, so old log-probs
    match the distribution that sampled them (verl does the same). `entropy_grad=False` returns
    the entropies as detached values (a metric, not a loss term).
    """
    return call_as_forward(
        model, _response_logprobs, model, batch, temperature, with_entropy, entropy_grad,
        chunk_tokens,
    )  # fmt: skip


def _response_logprobs(
    model: nn.Module,
    batch: TokenBatch,
    temperature: float,
    with_entropy: bool,
    entropy_grad: bool,
    chunk_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    paths = fast_paths(model)
    if not paths.split:
        return own_forward_logprobs(model, batch, temperature, with_entropy, entropy_grad)
    body, head = backbone_and_head(model)
    response_ids_BR, response_mask_BR = batch.response_ids_BR, batch.response_mask_BR
    valid_N = response_mask_BR.reshape(-1).bool()
    with sparse_tied_embedding_grad(body, paths.sparse_embedding_grad):
        h_NH = response_token_states(body, batch, paths)
    targets_N = response_ids_BR.reshape(-1)[valid_N]
    if paths.fused_head:
        weight_VH = head.weight
        device = h_NH.device.type
        if torch.is_autocast_enabled(device):  # the matmuls in autocast's dtype, as nn.Linear's
            dtype = torch.get_autocast_dtype(device)
            h_NH, weight_VH = h_NH.to(dtype), weight_VH.to(dtype)
        logp_N, ent_N = head_logprobs(
            h_NH, weight_VH, targets_N, temperature=temperature, with_entropy=with_entropy,
            entropy_grad=entropy_grad, chunk_tokens=chunk_tokens,
        )  # fmt: skip
        logps, ents = [logp_N], [ent_N]
    else:
        logps, ents = _checkpointed_chunks(
            head, paths.logit_transform, h_NH, targets_N, temperature, with_entropy,
            entropy_grad, chunk_tokens,
        )  # fmt: skip
    return _scatter_responses(response_mask_BR, logps, ents if with_entropy else None)


def _scatter_responses(
    mask_BR: torch.Tensor, logps: list[torch.Tensor], ents: list | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token values in (response, position) order, in chunks, back to (B, R) with 0 on
    padding; None entropies stay None."""
    B, R = mask_BR.shape
    valid_N = mask_BR.reshape(-1).bool()
    zeros = torch.zeros(B * R, dtype=torch.float32, device=mask_BR.device)
    logp_BR = zeros.masked_scatter(valid_N, torch.cat(logps)) if logps else zeros
    entropy_BR = None
    if ents is not None:
        entropy_BR = zeros
        if ents:
            entropy_BR = entropy_BR.masked_scatter(valid_N, torch.cat(ents))
        entropy_BR = entropy_BR.view(B, R)
    return logp_BR.view(B, R), entropy_BR


def own_forward_logprobs(
    model: nn.Module,
    batch: TokenBatch,
    temperature: float = 1.0,
    with_entropy: bool = False,
    entropy_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The general path: `log_softmax(model(row).logits / T)` of each whole prompt + response
    row, through the model's own forward (whatever it does after its head). No prompt cache is
    shared and the (B, R, V) logits of the micro-batch are made at once."""
    ids_BL, mask_BL = whole_rows(batch)
    R = batch.response_ids_BR.shape[1]
    kept = R + 1  # positions P - 1 .. P + R - 1; the last predicts nothing of the response
    keep = {"logits_to_keep": kept} if takes_argument(model, "logits_to_keep") else {}
    logits_BKV = model(
        input_ids=ids_BL, attention_mask=mask_BL, position_ids=position_ids_from_mask(mask_BL),
        use_cache=False, **keep,
    ).logits[:, -kept:]  # fmt: skip
    valid_BR = batch.response_mask_BR.bool()
    logits_NV = logits_BKV[:, :-1][valid_BR]
    targets_N = batch.response_ids_BR[valid_BR]
    logp_N, ent_N = _logits_logprobs(logits_NV, targets_N, temperature, with_entropy, entropy_grad)
    return _scatter_responses(batch.response_mask_BR, [logp_N], [ent_N] if with_entropy else None)


def logprob_temperature(sampling_temperature: float) -> float:
    """The temperature log-probs are taken at: the sampler's, except that greedy sampling
    (temperature 0) scores the untempered distribution."""
    return sampling_temperature if sampling_temperature > 0 else 1.0


def over_micro_batches(
    fn: Callable[[TokenBatch], tuple[torch.Tensor | None, ...]], batch: TokenBatch, micro_batch: int
) -> tuple[torch.Tensor | None, ...]:
    """`fn` on consecutive slices of `micro_batch` responses (trimmed of padding columns); each
    (B', R') output is zero-padded back to the batch width R and the slices concatenated (B, R).

    Responses are grouped by prompt order, so a slice holds few distinct prompts. None stays None.
    """
    B, width = batch.response_ids_BR.shape
    parts = [
        fn(batch.select(list(range(s, min(s + micro_batch, B))))) for s in range(0, B, micro_batch)
    ]
    return tuple(
        None
        if outs[0] is None
        else torch.cat([torch.nn.functional.pad(o, (0, width - o.shape[1])) for o in outs])
        for outs in zip(*parts)
    )


@torch.inference_mode()
def batched_logprobs(
    model: nn.Module,
    batch: TokenBatch,
    micro_batch: int,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`response_logprobs` of a whole batch without gradients, `micro_batch` responses at a time."""
    logp_BR, entropy_BR = over_micro_batches(
        lambda b: response_logprobs(model, b, temperature=temperature, with_entropy=with_entropy),
        batch,
        micro_batch,
    )
    assert logp_BR is not None
    return logp_BR, entropy_BR
