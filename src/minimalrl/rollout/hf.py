"""Batched sampling with a KV cache on plain transformers models (the CPU default).

A hand loop rather than `model.generate`, for two savings `generate` does not make:
- each distinct prompt is prefilled once and its cache repeated n times (n samples per prompt);
- rows that reached EOS leave the batch and its KV cache: they stop costing compute.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache

from minimalrl.model.fast.matmul_attention import matmul_attention_for
from minimalrl.model.fast.prepacked_linear import prepacked_linears
from minimalrl.model.fast.support import (
    FastPaths,
    fast_paths,
    takes_argument,
    with_cache,
)
from minimalrl.model.logprobs import logprob_temperature, position_ids_from_mask
from minimalrl.rollout.base import Rollout, SamplingParams, derive_seed, keys_of, pad_left


def row_generators(
    seed: int, keys: list[int], n: int, device: torch.device
) -> list[torch.Generator]:
    """One generator per response row, seeded by (seed, prompt key, sample index).

    A row's tokens then depend only on its prompt and seed, never on what else is in the batch:
    sharding prompts across ranks or batching them differently samples the same responses.
    """
    gens = []
    for key in keys:
        for j in range(n):
            g = torch.Generator(device=device)
            g.manual_seed(derive_seed(seed, key, j))
            gens.append(g)
    return gens


def sample_next(
    logits_AV: torch.Tensor,
    temperature: float,
    top_p: float,
    generators: list[torch.Generator],
) -> torch.Tensor:
    """One token per row: greedy at temperature 0, else a draw from softmax(logits / T) in top-p.

    The draw inverts the row's CDF at one uniform number from the row's own generator
    (`row_generators`): one random number per row instead of one per vocabulary entry.
    """
    if temperature <= 0:
        return logits_AV.argmax(-1)
    logits_AV = logits_AV.float()
    if temperature != 1.0:  # (a full-width division per step otherwise)
        logits_AV = logits_AV / temperature
    probs_AV = torch.softmax(logits_AV, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs_AV.sort(dim=-1, descending=True)
        # Drop tokens once the mass before them reaches top_p (the first token always stays).
        drop = (sorted_p.cumsum(-1) - sorted_p) >= top_p
        probs_AV = torch.zeros_like(probs_AV).scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
    cdf_AV = probs_AV.cumsum(-1)
    u_A1 = torch.cat([torch.rand(1, generator=g, device=cdf_AV.device) for g in generators])
    target_A1 = (u_A1 * cdf_AV[:, -1]).unsqueeze(-1)
    token_A = torch.searchsorted(cdf_AV, target_A1, right=True).squeeze(-1)
    return token_A.clamp_(max=probs_AV.shape[-1] - 1)


def sampled_logprobs(
    logits_AV: torch.Tensor, token_A: torch.Tensor, temperature: float
) -> torch.Tensor:
    """log softmax(logits / T) of each row's token (A,), in float32: the sampler's own log-prob,
    at the temperature the trainer scores at (`logprob_temperature`: 1 for greedy), over the whole
    vocabulary as the trainer's is. From the logits already computed: no extra forward."""
    logits_AV = logits_AV.float()
    temperature = logprob_temperature(temperature)
    if temperature != 1.0:
        logits_AV = logits_AV / temperature
    picked_A = logits_AV.gather(-1, token_A[:, None]).squeeze(-1)
    return picked_A - torch.logsumexp(logits_AV, dim=-1)


class HFBackend:
    """Samples from the policy module itself, so there are no weights to sync.

    `dtype` (e.g. torch.bfloat16): sample with the weights cast to it, as a bf16 vLLM engine
    does. The cast copy is made at each `generate` from the current weights and freed after; the
    module itself (and its float32 buffers such as rotary frequencies) is unchanged.

    `prepack`: on CPU, the linear layers run on oneDNN with weights reordered once per `generate`
    (`minimalrl.model.fast.prepacked_linear`); False keeps PyTorch's default matmul. It and
    matmul attention are taken where `fast_paths` allows them; a family it does not know decodes
    through its own forward with the cache transformers builds for it.

    `eos_token_ids`: every id that ends a response (`model.loading.end_of_turn_ids`).
    """

    def __init__(
        self,
        model: nn.Module,
        pad_token_id: int,
        eos_token_ids: list[int],
        dtype: torch.dtype | None = None,
        prepack: bool = True,
    ):
        self.model = model
        self.pad_token_id = pad_token_id
        self.eos_token_ids = torch.tensor(sorted(set(eos_token_ids)), dtype=torch.long)
        self.dtype = dtype
        self.prepack = prepack

    def _forward(self) -> tuple[Callable[..., Any], list[nn.Module]]:
        """The model's forward, with its parameters cast to `dtype` when one is set, and the
        modules whose linear layers may be prepacked (`prepacked_linears` picks them; none with
        a cast: its weights are swapped in per call)."""
        if self.dtype is None:
            return self.model, list(self.model.modules())
        cast = {
            name: p.detach().to(self.dtype) if p.is_floating_point() else p
            for name, p in self.model.named_parameters()
        }  # tied weights appear once and stay tied (functional_call's tie_weights)

        def forward(**kwargs: Any) -> Any:
            return torch.func.functional_call(self.model, cast, (), kwargs)

        return forward, []

    def sync_weights(self, model: nn.Module) -> None:
        self.model = model

    @torch.inference_mode()
    def generate(
        self,
        prompt_token_ids: list[list[int]],
        params: SamplingParams,
        prompt_keys: list[int] | None = None,
    ) -> Rollout:
        device = next(self.model.parameters()).device
        prompt_ids, prompt_mask = pad_left(prompt_token_ids, self.pad_token_id)
        prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
        keys = keys_of(prompt_token_ids, prompt_keys)
        generators = row_generators(params.seed, keys, params.n, device)
        forward, modules = self._forward()
        rows = len(prompt_token_ids) * params.n
        paths = fast_paths(self.model)
        prepack = self.prepack and paths.prepacked_linears
        with (
            matmul_attention_for(self.model) if paths.matmul_attention else nullcontext(),
            prepacked_linears(modules if prepack else [], rows),
        ):
            tokens_BR, logp_BR, lengths_B = self._sample(
                forward, prompt_ids, prompt_mask, params, generators, paths
            )
        R = max(int(lengths_B.max()), 1)
        tokens_BR, logp_BR = tokens_BR[:, :R], logp_BR[:, :R]
        response_mask_BR = (torch.arange(R, device=device)[None] < lengths_B[:, None]).long()
        n = params.n
        return Rollout(
            prompt_ids_UP=prompt_ids,
            prompt_mask_UP=prompt_mask,
            prompt_index_B=torch.arange(len(prompt_token_ids), device=device).repeat_interleave(n),
            response_ids_BR=tokens_BR.masked_fill(response_mask_BR == 0, self.pad_token_id),
            response_mask_BR=response_mask_BR,
            stats={"generated_tokens": float(lengths_B.sum())},
            sampler_logp_BR=logp_BR.masked_fill(response_mask_BR == 0, 0.0),
        )

    def _sample(
        self,
        forward: Callable[..., Any],
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        params: SamplingParams,
        generators: list[torch.Generator],
        paths: FastPaths,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token matrix (B, max_new), the sampler's log-probs of those tokens (B, max_new) and
        the response lengths (EOS included)."""
        device = prompt_ids.device
        position = position_ids_from_mask(prompt_mask)
        # A checked family on a plain cache (the tests pin it, windows included); any other on
        # the one its own forward would build.
        cache = DynamicCache() if paths.split else DynamicCache(config=self.model.config)
        keep = {}
        if takes_argument(self.model, "logits_to_keep"):
            # An index tensor, not the int 1: a (U, 1, H) slice of the hidden states would reach
            # the head as a batched matmul that copies the (V, H) weight once per prompt.
            keep["logits_to_keep"] = torch.tensor([prompt_ids.shape[1] - 1], device=device)
        out = forward(
            input_ids=prompt_ids,
            attention_mask=prompt_mask,
            position_ids=position,
            **with_cache(self.model, cache),
            use_cache=True,
            **keep,
        )
        n = params.n
        if n > 1:  # one prefill per distinct prompt, then n copies of its cache
            cache.batch_repeat_interleave(n)
        logits = out.logits[:, -1].repeat_interleave(n, 0)
        mask = prompt_mask.repeat_interleave(n, 0)
        next_pos = position[:, -1].repeat_interleave(n, 0) + 1
        B = logits.shape[0]
        tokens = torch.full((B, params.max_new_tokens), self.pad_token_id, device=device)
        logps = torch.zeros((B, params.max_new_tokens), dtype=torch.float32, device=device)
        lengths = torch.full((B,), params.max_new_tokens, dtype=torch.long, device=device)
        active = torch.arange(B, device=device)
        eos = self.eos_token_ids.to(device)
        for t in range(params.max_new_tokens):
            row_gens = [generators[int(r)] for r in active] if params.temperature > 0 else []
            tok = sample_next(logits, params.temperature, params.top_p, row_gens)
            tokens[active, t] = tok
            logps[active, t] = sampled_logprobs(logits, tok, params.temperature)
            done = torch.isin(tok, eos)
            if done.any():
                lengths[active[done]] = t + 1
                keep = (~done).nonzero().squeeze(1)
                if keep.numel() == 0:
                    break
                cache.batch_select_indices(keep)
                active, tok, mask, next_pos = active[keep], tok[keep], mask[keep], next_pos[keep]
            if t == params.max_new_tokens - 1:
                break
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            logits = forward(
                input_ids=tok[:, None],
                attention_mask=mask,
                position_ids=next_pos[:, None],
                **with_cache(self.model, cache),
                use_cache=True,
            ).logits[:, -1]
            next_pos = next_pos + 1
        return tokens, logps, lengths
