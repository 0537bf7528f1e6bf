"""The policy seam: every way the model is run goes through `Policy`.

- generation: through the configured rollout backend (`rollout_backend`), with sharded weights
  gathered, in the rollout precision; the backend is told of the new weights after every update
  (`RolloutBackend.sync_weights`);
- scoring: the initial model's log-probs, the critic's values, π_old's log-probs and entropies,
  each returned as a new record (`Scores`), never written into the rollout;
- training steps: micro-batch planning (packing), autocast, lock-step idle passes of sharded
  ranks, the clipped optimizer steps, and whether π_old needs a forward of its own;
- state: weights, optimizers, schedules and RNG, for checkpoints.

The trainer sees neither FSDP nor a CPU fast path: both are decided here and below.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from minimalrl.algorithms import Algorithm
from minimalrl.algorithms.rollout_correction import MASKS
from minimalrl.config import TrainConfig
from minimalrl.experience import Experience
from minimalrl.model.fast.allocator import keep_freed_memory
from minimalrl.model.loading import apply_lora, load_policy
from minimalrl.model.logprobs import (
    TokenBatch,
    backbone_and_head,
    batched_logprobs,
    logprob_temperature,
    over_micro_batches,
    response_logprobs,
)
from minimalrl.policy.checkpoint import (
    TrainerState,
    load_critic_weights,
    load_policy_weights,
    load_trainer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from minimalrl.policy.critic import ValueModel
from minimalrl.policy.optim import Optimizers
from minimalrl.policy.reference import Reference
from minimalrl.policy.steps import clip_and_step, idle_step, plan_micro_batches
from minimalrl.policy.update import UpdateSettings, optimizer_steps, update
from minimalrl.rollout import Rollout, SamplingParams, close_backend, make_backend
from minimalrl.rollout.replay import rank_file
from minimalrl.rollout.vllm_engine import EngineSettings
from minimalrl.scale import fsdp
from minimalrl.scale.distributed import DistContext, barrier, max_across


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def prepare_device(cfg: TrainConfig) -> str:
    """The device the config names; on CPU, malloc set to keep freed memory (before anything
    starts threads: mallopt is not thread-safe, and gloo starts some); deterministic kernels
    as `cfg.deterministic` says."""
    device = resolve_device(cfg.device)
    if cfg.keep_freed_memory and device == "cpu":
        keep_freed_memory()
    use_deterministic_kernels(cfg.deterministic)
    return device


def use_deterministic_kernels(on: bool) -> None:
    """`torch.use_deterministic_algorithms(on)`, warning (not failing) where an op has no
    deterministic kernel. Memory from `torch.empty` is not filled (PyTorch's default when on):
    nothing here reads it before writing, and filling would cost a pass over every buffer."""
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False


@dataclass(frozen=True)
class Scores:
    """What the models say about a rollout's B responses, (B, R) each; None: not measured."""

    old_logp_BR: torch.Tensor | None = None
    """π_old: log-probs of the sampled tokens under the policy before this iteration's update."""
    entropy_BR: torch.Tensor | None = None
    """π_old's token entropies (from the same forward)."""
    ref_logp_BR: torch.Tensor | None = None
    """Log-probs under the initial model (KL penalty, the kl_to_init curve, DPO's reference)."""
    values_BR: torch.Tensor | None = None
    """The critic's values of the states before each response token."""


@dataclass
class TrainResult:
    metrics: dict[str, float]
    """The update's metrics (empty: nothing was kept to train on)."""
    scores: Scores
    """π_old's log-probs and entropies of the whole rollout, measured before the update."""
    scoring_seconds: float
    """Of the time in `train`, what a separate π_old forward took (0 when there was none)."""


def _assemble(
    shape: tuple[int, int], parts: list[tuple[list[int], torch.Tensor, torch.Tensor | None]]
) -> Scores:
    """(B, R) log-probs and entropies from the (rows, values) of several forwards, each possibly
    trimmed to fewer columns; positions no forward covered are 0."""
    out: dict[str, torch.Tensor] = {}
    for rows, *values in parts:
        for name, v in zip(("old_logp_BR", "entropy_BR"), values):
            if v is None:
                continue
            if name not in out:
                out[name] = torch.zeros(shape, dtype=v.dtype, device=v.device)
            idx = torch.as_tensor(rows, dtype=torch.long, device=v.device)
            out[name][idx, : v.shape[1]] = v
    return Scores(**out)


class Policy:
    """The policy model, its reference and critic, their optimizers and the rollout backend."""

    def __init__(self, cfg: TrainConfig, alg: Algorithm, device: str, ctx: DistContext):
        self.cfg, self.alg, self.device, self.ctx = cfg, alg, device, ctx
        self.temperature = logprob_temperature(cfg.temperature)
        self.settings = UpdateSettings.from_config(cfg, self.temperature)
        self._build_models()
        self.optimizers = Optimizers.build(cfg, self.model, self.critic)
        dtype = {"fp32": None, "bf16": torch.bfloat16}[cfg.rollout_precision]
        engine = EngineSettings(
            cfg.vllm_kv_cache_gib, cfg.vllm_gpu_memory_fraction, cfg.vllm_max_model_len
        )
        with self.gathered():  # an engine of its own takes the whole weights
            self.backend = make_backend(
                cfg.rollout_backend, self.model, self.tokenizer, dtype, engine,
                record=rank_file(cfg.rollout_record, ctx.rank), replay=cfg.rollout_replay,
            )  # fmt: skip

    def _build_models(self) -> None:
        """Policy (optionally LoRA), reference, critic; sharded when `fsdp` is set."""
        cfg = self.cfg
        self.model, self.tokenizer = load_policy(cfg.model, device=self.device)
        if cfg.lora_rank:
            self.model = apply_lora(
                self.model, cfg.lora_rank, cfg.lora_alpha, cfg.lora_target_modules
            )
        if cfg.gradient_checkpointing:
            self.model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        self.model.eval()  # no dropout: old and new log-probs must agree before any update
        needs_ref = cfg.kl_coef > 0 or cfg.track_kl_to_init or self.alg.needs_reference
        self.reference = (
            Reference(self.model, shares_weights=bool(cfg.lora_rank)) if needs_ref else None
        )
        self.critic = ValueModel(self.model).to(self.device) if self.alg.needs_critic else None
        if cfg.fsdp:  # (before the optimizers: they hold the sharded parameters)
            fsdp.shard(self.model, backbone_and_head(self.model)[0].layers)
            if self.reference is not None and not self.reference.shares_weights:
                ref = self.reference.model
                fsdp.shard(ref, backbone_and_head(ref)[0].layers)
            if self.critic is not None:
                fsdp.shard(self.critic, self.critic.body.layers)

    # ----------------------------------------------------------------- precision, sharding
    def autocast(self) -> torch.autocast:
        """bfloat16 autocast when precision is bf16 (a no-op context otherwise)."""
        device_type = "cuda" if str(self.device).startswith("cuda") else "cpu"
        return torch.autocast(device_type, torch.bfloat16, enabled=self.cfg.precision == "bf16")

    @contextmanager
    def gathered(self) -> Iterator[None]:
        """The policy's whole weights on every rank for the duration (sharded: one all-gather);
        forward passes inside make no collective calls, so ranks may run different numbers."""
        with fsdp.gathered(self.model):
            yield

    # ----------------------------------------------------------------- generate
    def generate(
        self, prompt_token_ids: list[list[int]], params: SamplingParams, keys: list[int]
    ) -> Rollout:
        """`params.n` responses to each prompt from the configured backend; `keys` seed them."""
        with self.gathered():  # sampling steps differ across ranks: no collectives
            return self.backend.generate(prompt_token_ids, params, prompt_keys=keys)

    # ----------------------------------------------------------------- score
    def score(self, ro: Rollout) -> Scores:
        """The initial model's log-probs and the critic's values of the rollout (each when there
        is such a model), at the log-prob temperature; no gradients. π_old comes with `train`."""
        micro = self.cfg.micro_batch_size
        ref_BR = values_BR = None
        if self.reference is not None:
            ref_BR = self.reference.logprobs(ro, micro, self.temperature)
        if self.critic is not None:
            with torch.inference_mode():
                critic = self.critic
                (values_BR,) = over_micro_batches(lambda b: (critic(b),), ro, micro)
        return Scores(ref_logp_BR=ref_BR, values_BR=values_BR)

    def _policy_scores(self, batch: TokenBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The current policy's log-probs and entropies (B, R) of `batch`, without gradients."""
        return batched_logprobs(
            self.model,
            batch,
            self.cfg.micro_batch_size,
            temperature=self.temperature,
            with_entropy=True,
        )

    def _on_policy(self, exp: Experience) -> bool:
        """Whether the update's own forward can stand in for π_old's: with a single optimizer
        step the weights have not moved when it runs, one forward saved (TRL and verl do the
        same). Sharded, every rank must run the same forwards: partial scoring would not. A
        masking rollout correction needs π_old before the update (its counts depend on it)."""
        cfg = self.cfg
        return (
            not cfg.recompute_old_logprobs
            and not cfg.fsdp
            and cfg.rollout_correction not in MASKS
            and optimizer_steps(exp, self.alg, self.settings, self.ctx) == 1
        )

    # ----------------------------------------------------------------- train
    def train(self, exp: Experience, generator: torch.Generator) -> TrainResult:
        """The iteration's optimizer steps on `exp` (shuffled by `generator`), the lr schedules'
        step, and the backend told of the new weights. π_old is scored here, not in `score`,
        because whether it needs a forward of its own depends on the steps that follow."""
        ro = exp.rollout
        start = time.perf_counter()
        on_policy = self._on_policy(exp)
        parts, old = [], Scores()
        if on_policy:  # the update scores the rows it trains; the others only feed the metrics
            trained = set(exp.trained_rows)
            untrained = [b for b in range(ro.response_ids_BR.shape[0]) if b not in trained]
            if untrained:
                parts.append((untrained, *self._policy_scores(ro.select(untrained))))
        else:
            old = Scores(*self._policy_scores(ro))
        scoring_seconds = time.perf_counter() - start
        # transformers checkpoints activations only in training mode; RL policies run without
        # dropout, so train mode changes nothing else (and only while checkpointing is asked for).
        self.model.train(self.cfg.gradient_checkpointing)
        try:
            result = update(
                self, exp, self.alg, self.settings, generator,
                old_logp_BR=old.old_logp_BR, on_policy=on_policy,
            )  # fmt: skip
        finally:
            self.model.eval()
        self.optimizers.advance_schedules()
        if result.metrics:  # the weights moved
            self._sync_backend()
            result.metrics["weight_sync_seconds"] = self.weight_sync_seconds
        if on_policy:
            B, R = ro.response_ids_BR.shape
            old = _assemble((B, R), parts + result.scored)
        return TrainResult(result.metrics, old, scoring_seconds)

    def close(self) -> None:
        """Free what the rollout backend holds outside this process's tensors (an engine)."""
        close_backend(self.backend)

    def _sync_backend(self) -> None:
        """The backend samples from the current weights (whole: gathered when sharded)."""
        start = time.perf_counter()
        with self.gathered():
            self.backend.sync_weights(self.model)
        self.weight_sync_seconds = time.perf_counter() - start

    # The steps `update` asks for (`minimalrl.policy.update.TrainSteps`).
    def micro_batches(
        self, ro: Rollout, units: list[list[int]], units_per_micro: int
    ) -> list[list[int] | None]:
        planned: list[list[int] | None] = (
            list(plan_micro_batches(ro, units, units_per_micro)) if units else []
        )
        if fsdp.is_sharded(self.model):  # every forward/backward is a collective: all ranks
            most = int(max_across(float(len(planned)), self.ctx))  # run as many
            planned += [None] * (most - len(planned))
        return planned

    def logprobs(
        self, batch: TokenBatch, *, temperature: float, with_entropy: bool, entropy_grad: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return response_logprobs(
            self.model, batch, temperature=temperature, with_entropy=with_entropy,
            entropy_grad=entropy_grad,
        )  # fmt: skip

    def values(self, batch: TokenBatch) -> torch.Tensor | None:
        return None if self.critic is None else self.critic(batch)

    def idle_step(self, ro: Rollout) -> None:
        idle_step(self.model, self.critic, ro)

    def optimizer_step(self, grad_clip: float) -> float:
        sharded = fsdp.is_sharded(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        norm = clip_and_step(params, self.optimizers.policy, grad_clip, self.ctx, sharded)
        if self.critic is not None and self.optimizers.critic is not None:
            critic_params = list(self.critic.parameters())
            clip_and_step(critic_params, self.optimizers.critic, grad_clip, self.ctx, sharded)
        return norm

    # ----------------------------------------------------------------- state
    def learning_rates(self) -> dict[str, float]:
        return self.optimizers.learning_rates()

    def save(self, root: Path, iteration: int, config: dict, keep: int) -> Path | None:
        """Rank 0 writes checkpoint `iteration` under `root` (the ranks' weights and optimizers
        are identical, or, sharded, gathered to rank 0 first); None on the other ranks."""
        sharded = fsdp.is_sharded(self.model)
        model_state = fsdp.full_state_dict(self.model) if sharded else None
        critic_state = fsdp.full_state_dict(self.critic) if sharded and self.critic else None
        opt = self.optimizers
        optimizer = _optimizer_state(self.model, opt.policy)
        critic_optimizer = (
            _optimizer_state(self.critic, opt.critic)
            if self.critic is not None and opt.critic is not None
            else None
        )
        if not self.ctx.is_main:
            barrier(self.ctx)
            return None
        state = TrainerState(
            iteration=iteration,
            optimizer=optimizer,
            scheduler=opt.schedule.state_dict(),
            critic_optimizer=critic_optimizer,
            critic_scheduler=opt.critic_schedule.state_dict() if opt.critic_schedule else None,
            rng=rng_state(),
        )
        path = save_checkpoint(
            root, iteration=iteration, model=self.model, tokenizer=self.tokenizer, config=config,
            state=state, critic=self.critic, keep=keep, model_state=model_state,
            critic_state=critic_state,
        )  # fmt: skip
        barrier(self.ctx)
        return path

    def load(self, path: Path) -> int:
        """Weights, optimizers, schedules and RNG from checkpoint `path` (its config was checked
        already), then the config's optimizer settings; returns the iterations it holds."""
        opt = self.optimizers
        load_policy_weights(self.model, path / "policy")
        state = load_trainer_state(path)
        _load_optimizer_state(self.model, opt.policy, state.optimizer)
        opt.schedule.load_state_dict(state.scheduler)
        if self.critic is not None and opt.critic is not None:
            load_critic_weights(self.critic, path)
            _load_optimizer_state(self.critic, opt.critic, state.critic_optimizer)
            if opt.critic_schedule is not None:  # (checkpoints before it existed: constant)
                if state.critic_scheduler is not None:
                    opt.critic_schedule.load_state_dict(state.critic_scheduler)
                else:
                    opt.critic_schedule.last_epoch = state.iteration
        set_rng_state(state.rng)
        changes = opt.apply_config(self.cfg)
        if changes and self.ctx.is_main:
            tqdm.write(f"resuming with the config's optimizer settings: {', '.join(changes)}")
        self._sync_backend()
        return state.iteration


def _optimizer_state(module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    if fsdp.is_sharded(module):
        return fsdp.full_optimizer_state(module, optimizer)  # collective
    return optimizer.state_dict()


def _load_optimizer_state(
    module: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> None:
    if fsdp.is_sharded(module):
        fsdp.load_full_optimizer_state(module, optimizer, state)
    else:
        optimizer.load_state_dict(state)
