"""The RL loop of every algorithm (PAPER.md, "Setting"), in the paper's order:

    prompts -> rollouts -> rewards -> filter + advantages -> E epochs of minibatch updates
            -> metrics, checkpoints, eval

The trainer owns no math and names no algorithm: it reads the registry record's flags
(`needs_critic`, `needs_pairs`) and calls the pure functions of `minimalrl.algorithms`.
Randomness is derived from (seed, iteration), so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import random
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from minimalrl import fsdp
from minimalrl.allocator import keep_freed_memory
from minimalrl.checkpoint import (
    TrainerState,
    check_config,
    load_critic_weights,
    load_policy_weights,
    load_trainer_state,
    resume_point,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from minimalrl.config import ConfigError, TrainConfig
from minimalrl.critic import ValueModel
from minimalrl.data import build_prompts, load_problems
from minimalrl.distributed import any_across, barrier, init_distributed, shard, sum_across
from minimalrl.evaluate import EvalSettings, evaluate
from minimalrl.experience import (
    Sampled,
    build_experience,
    reduce_metrics,
    rollout_metrics,
    sample_until_full,
)
from minimalrl.logprobs import backbone_and_head, logprob_temperature
from minimalrl.metrics import MetricsWriter
from minimalrl.models import apply_lora, load_policy
from minimalrl.output import prepare_output
from minimalrl.reference import Reference
from minimalrl.reward import REWARD_SETTINGS, Reward
from minimalrl.rollout import HFBackend, SamplingParams, score_rollout
from minimalrl.update import UpdateSettings, optimizer_steps, update


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def lr_factor(iteration: int, cfg: TrainConfig, shape: str | None = None) -> float:
    """Multiplier of the base lr during `iteration` (0-based): warmup, then the decay `shape`
    (default `cfg.lr_schedule`)."""
    shape = shape or cfg.lr_schedule
    if iteration < cfg.warmup_iterations:
        return (iteration + 1) / cfg.warmup_iterations
    span = max(1, cfg.iterations - cfg.warmup_iterations)
    progress = (iteration - cfg.warmup_iterations) / span
    if shape == "linear":
        return 1.0 - progress
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def _seed(*parts: int) -> int:
    """A 63-bit seed from several integers (seed, iteration, purpose)."""
    return hash(tuple(parts)) & 0x7FFF_FFFF_FFFF_FFFF


def apply_optimizer_config(
    optimizer: torch.optim.Optimizer, *, lr: float, lr_now: float, **settings: object
) -> list[str]:
    """Set the config's base `lr` (scheduled to `lr_now`) and other `settings` (betas, weight
    decay...) on every param group of an optimizer whose saved state was just loaded, so what the
    config says is what runs. Returns "name old -> new" for each setting that changed."""
    changes = []
    for group in optimizer.param_groups:
        old = {"lr": group.get("initial_lr", group["lr"]), **{k: group[k] for k in settings}}
        new = {"lr": lr, **settings}
        changes += [f"{k} {old[k]} -> {v}" for k, v in new.items() if _norm(old[k]) != _norm(v)]
        group.update(settings, lr=lr_now)
        if "initial_lr" in group:  # the base a scheduler scales
            group["initial_lr"] = lr
    return list(dict.fromkeys(changes))


def _norm(value: object) -> object:
    return list(value) if isinstance(value, tuple | list) else value


def _rebase(scheduler: torch.optim.lr_scheduler.LRScheduler, lr: float) -> None:
    """A scheduler whose optimizer's lr was just set: `lr` as its base, the groups' lr as now."""
    scheduler.base_lrs = [lr for _ in scheduler.optimizer.param_groups]
    scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]  # get_last_lr()


class Trainer:
    """Holds the models, optimizers and data of one run; `run()` trains to the last iteration.

    `resume`: False starts a run (refused in a folder that holds one), True continues the latest
    checkpoint (refused where there is none), "auto" continues one if there is one, else starts."""

    def __init__(
        self,
        cfg: TrainConfig,
        output: str | Path,
        *,
        resume: bool | str = False,
        force: bool = False,
        progress: bool = True,
    ):
        cfg = cfg.effective()  # a named variant's settings (dapo's clip_high...) filled in
        self.cfg, self.output = cfg, Path(output)
        if resume not in (False, True, "auto"):
            raise ValueError(f"resume must be False, True or 'auto', got {resume!r}")
        # Bad data or a bad folder must show before the model loads, and leave no folder behind.
        self._load_problems()
        self._checkpoint = resume_point(self.output, resume)
        if self._checkpoint is not None:
            saved = json.loads((self._checkpoint / "config.json").read_text())
            check_config(
                saved, cfg.to_dict(), force=force, where=self._checkpoint,
                defaults=TrainConfig().to_dict(),
            )  # fmt: skip
        device = resolve_device(cfg.device)
        if cfg.keep_freed_memory and device == "cpu":
            keep_freed_memory()  # first: mallopt is not thread-safe, gloo starts threads
        self.ctx, self.device = init_distributed(device)
        if cfg.dynamic_sampling and self.ctx.active:  # each rank would sample its own rounds
            raise ConfigError("dynamic_sampling: one process only for now (not with torchrun)")
        if cfg.prompts_per_iteration % self.ctx.world_size:
            raise ConfigError(
                f"prompts_per_iteration = {cfg.prompts_per_iteration} must split evenly over "
                f"{self.ctx.world_size} ranks"
            )
        self.progress = progress and self.ctx.is_main
        if self.ctx.is_main:
            prepare_output(self.output)
        torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        self.alg = cfg.algorithm()
        self.reward = Reward.load(cfg.reward, **{k: getattr(cfg, k) for k in REWARD_SETTINGS})
        self._build_models()
        self._tokenize_prompts()
        eos = [self.tokenizer.eos_token_id]
        rollout_dtype = {"fp32": None, "bf16": torch.bfloat16}[cfg.rollout_precision]
        self.backend = HFBackend(self.model, self.tokenizer.pad_token_id, eos, rollout_dtype)
        self.start_iteration = 0
        if self._checkpoint is not None:
            self._resume(self._checkpoint)
        self.metrics = (
            # A resumed run keeps the records its checkpoint covers; a fresh one starts empty.
            MetricsWriter(
                self.output, truncate_after=self.start_iteration + 1 if self.start_iteration else 0
            )
            if self.ctx.is_main
            else None
        )
        self._stop_requested = False
        self.stopped_early = False
        """True when `run()` returned before the last iteration (Ctrl-C): the run is unfinished."""
        self.eval_verdicts: list[list[bool]] = []
        """Per-problem verdicts of each held-out evaluation of this process, in order."""

    def _build_models(self) -> None:
        """Policy (optionally LoRA), reference, critic, their optimizers and the lr schedule."""
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
        if cfg.fsdp:
            fsdp.shard(self.model, backbone_and_head(self.model)[0].layers)
            if self.reference is not None and not self.reference.shares_weights:
                ref = self.reference.model
                fsdp.shard(ref, backbone_and_head(ref)[0].layers)
            if self.critic is not None:
                fsdp.shard(self.critic, self.critic.body.layers)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        # fused: one kernel per step instead of a loop over parameters (9x faster on this CPU)
        adam = {"betas": cfg.adam_betas, "eps": cfg.adam_eps, "fused": True}
        self.optimizer = torch.optim.AdamW(
            trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, **adam
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda it: lr_factor(it, cfg)
        )
        self.critic_optimizer = self.critic_scheduler = None
        if self.critic is not None:
            self.critic_optimizer = torch.optim.AdamW(
                self.critic.parameters(),
                lr=cfg.critic_lr,
                weight_decay=cfg.critic_weight_decay,
                **adam,
            )
            self.critic_scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.critic_optimizer, lambda it: lr_factor(it, cfg, cfg.critic_lr_schedule)
            )

    def autocast(self) -> torch.autocast:
        """bfloat16 autocast when precision is bf16 (a no-op context otherwise)."""
        device_type = "cuda" if str(self.device).startswith("cuda") else "cpu"
        return torch.autocast(device_type, torch.bfloat16, enabled=self.cfg.precision == "bf16")

    # ----------------------------------------------------------------- data
    def _load_problems(self) -> None:
        cfg = self.cfg
        self.problems = load_problems(cfg.train_data)
        self.eval_problems = load_problems(cfg.eval_data) if cfg.eval_data else []

    def _tokenize_prompts(self) -> None:
        prompts = build_prompts(self.tokenizer, self.problems, system_prompt=self.cfg.system_prompt)
        self.prompt_ids = [self.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]

    def prompt_indices(self, iteration: int) -> list[int]:
        """The M prompts of an iteration: consecutive slices of per-epoch shuffles of the data."""
        n, m = len(self.problems), self.cfg.prompts_per_iteration
        out = []
        for pos in range(iteration * m, (iteration + 1) * m):
            epoch, i = divmod(pos, n)
            out.append(self._epoch_order(epoch)[i])
        return out

    @functools.lru_cache(maxsize=2)  # noqa: B019 (one trainer per run: the cache lives with it)
    def _epoch_order(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(_seed(self.cfg.seed, epoch, 1))
        return torch.randperm(len(self.problems), generator=g).tolist()

    # ----------------------------------------------------------------- one iteration
    def iteration(self, it: int) -> dict:
        """Roll out, score, build experience, update; returns the iteration's metrics.

        In the configured precision: under bf16 autocast when precision is bf16."""
        with self.autocast():
            return self._iteration(it)

    def _iteration(self, it: int) -> dict:
        cfg, alg = self.cfg, self.alg
        t0 = time.perf_counter()
        idx = shard(self.prompt_indices(it), self.ctx)  # this rank's prompts, whole groups
        params = SamplingParams(
            n=cfg.samples_per_prompt,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            seed=_seed(cfg.seed, it, 2),
        )
        micro = cfg.micro_batch_size
        sampling: dict[str, float] = {}
        if cfg.dynamic_sampling:  # DAPO: fresh prompts until the filter keeps enough of them
            (ro, rewards_B, correct_B), sampling = sample_until_full(
                lambda r: self._rollout(self._more_prompts(it, r) if r else idx, params, r),
                alg,
                group_size=cfg.samples_per_prompt,
                target=len(idx),
                rounds=cfg.dynamic_sampling_rounds,
                band=(cfg.band_lo, cfg.band_hi),
                pad_id=self.tokenizer.pad_token_id,
            )
        else:
            ro, rewards_B, correct_B = self._rollout(idx, params)
        exp = build_experience(
            alg,
            ro,
            rewards_B,
            correct_B,
            group_size=cfg.samples_per_prompt,
            band=(cfg.band_lo, cfg.band_hi),
            ref_logp_BR=(
                self.reference.logprobs(ro, micro, logprob_temperature(cfg.temperature))
                if self.reference
                else None
            ),
            critic=self.critic,
            gamma=cfg.gamma,
            lam=cfg.lam,
            pair_rng=torch.Generator().manual_seed(_seed(cfg.seed, it, 3)),
            pair_reference=cfg.dpo_reference,
            micro_batch=micro,
            ctx=self.ctx,
            filtered=cfg.filtered,
        )
        settings = self.update_settings()
        # π_old needs its own forward only when some optimizer step comes after another; with a
        # single step the update's forward is π_old (see `update`), one forward saved.
        # (Sharded, every rank must run the same forwards: the partial scoring below would not.)
        on_policy = (
            not cfg.recompute_old_logprobs
            and not cfg.fsdp
            and optimizer_steps(exp, alg, settings, self.ctx) == 1
        )
        if not on_policy:
            score_rollout(self.model, ro, micro, cfg.temperature)
        else:  # the update scores the rows it trains; the others only feed the metrics
            trained = set(exp.trained_rows)
            untrained = [b for b in range(ro.response_ids_BR.shape[0]) if b not in trained]
            if untrained:
                score_rollout(self.model, ro, micro, cfg.temperature, rows=untrained)
        rollout_seconds = time.perf_counter() - t0
        record = {"lr": self.scheduler.get_last_lr()[0]}
        if self.critic_scheduler is not None:
            record["critic_lr"] = self.critic_scheduler.get_last_lr()[0]
        t1 = time.perf_counter()
        # transformers checkpoints activations only in training mode; RL policies run without
        # dropout, so train mode changes nothing else (and only while checkpointing is asked for).
        self.model.train(cfg.gradient_checkpointing)
        try:
            upd = update(
                self.model,
                self.optimizer,
                exp,
                alg,
                settings,
                torch.Generator().manual_seed(_seed(cfg.seed, it, 4)),
                critic=self.critic,
                critic_optimizer=self.critic_optimizer,
                ctx=self.ctx,
                on_policy=on_policy,
            )
        finally:
            self.model.eval()
        if not upd and self.ctx.is_main:
            tqdm.write(f"iteration {it + 1}: every prompt was filtered out; no update")
        with warnings.catch_warnings():  # an iteration without kept samples has no optimizer step
            warnings.simplefilter("ignore", UserWarning)
            self.scheduler.step()
            if self.critic_scheduler is not None:
                self.critic_scheduler.step()
        update_seconds = time.perf_counter() - t1
        # Measured on the rollout batch under the sampling policy (scored before the step).
        record = {"iteration": it + 1, **reduce_metrics(rollout_metrics(exp), self.ctx), **record}
        generated = sum_across(float(ro.response_mask_BR.sum()), self.ctx)
        record.update(
            clip_fraction=upd.get("clip_fraction", 0.0),
            grad_norm=upd.get("grad_norm", 0.0),
            rollout_seconds=rollout_seconds,
            update_seconds=update_seconds,
            tokens_per_second=generated / (rollout_seconds + update_seconds),
            skipped_update=not upd,
            **sampling,
            **{f"update/{k}": v for k, v in upd.items()},
        )
        return record

    def _rollout(self, idx: list[int], params: SamplingParams, round_: int = 0) -> Sampled:
        """Responses to the prompts `idx` (round > 0 of dynamic sampling: fresh seeds), their
        rewards and verdicts."""
        if round_:
            params = dataclasses.replace(params, seed=_seed(self.cfg.seed, params.seed, round_))
        with fsdp.gathered(self.model):  # sampling steps differ across ranks: no collectives
            prompts = [self.prompt_ids[i] for i in idx]
            ro = self.backend.generate(prompts, params, prompt_keys=idx)
        texts = self.tokenizer.batch_decode(ro.response_ids_BR, skip_special_tokens=True)
        problems = [self.problems[i] for i in idx for _ in range(params.n)]
        return (ro, *self.reward(texts, problems))

    def _more_prompts(self, it: int, round_: int) -> list[int]:
        """Round `round_` of dynamic sampling: this rank's share of M prompts drawn afresh."""
        g = torch.Generator().manual_seed(_seed(self.cfg.seed, it, 5, round_))
        drawn = torch.randperm(len(self.problems), generator=g).tolist()
        m = self.cfg.prompts_per_iteration
        return shard([drawn[i % len(drawn)] for i in range(m)], self.ctx)

    def update_settings(self) -> UpdateSettings:
        """The config fields the update reads (same names), at the log-prob temperature."""
        c = self.cfg
        same = {f.name: getattr(c, f.name) for f in dataclasses.fields(UpdateSettings)}
        temperature = logprob_temperature(c.temperature)
        max_len = c.loss_agg_max_len or c.max_new_tokens  # Dr. GRPO's L
        return UpdateSettings(**{**same, "temperature": temperature, "loss_agg_max_len": max_len})

    # ----------------------------------------------------------------- eval
    def evaluate(self) -> float | None:
        """Greedy accuracy on the held-out set (None when there is none)."""
        if not self.eval_problems:
            return None
        with fsdp.gathered(self.model):  # every rank gathers; rank 0 evaluates alone
            return self._evaluate_gathered() if self.ctx.is_main else None

    def _evaluate_gathered(self) -> float | None:
        cfg = self.cfg
        settings = EvalSettings(
            k=1,
            temperature=0.0,
            max_new_tokens=cfg.eval_max_new_tokens or cfg.max_new_tokens,
            # Greedy decoding of 200 problems here: 50 s at 16 rows, 32 s at 64 (192 tok/s).
            batch_size=max(cfg.micro_batch_size, 64),
            seed=cfg.seed,
            fallback_last_number=cfg.fallback_last_number,
            system_prompt=cfg.system_prompt,
        )
        result = evaluate(
            self.model,
            self.tokenizer,
            self.eval_problems,
            settings,
            backend=self.backend,
            progress=False,
        )
        self.eval_verdicts.append([s["correct"] for s in result.samples])  # k = 1: per problem
        return result.summary["accuracy"]

    def _eval_record(self, done: int) -> dict:
        """`eval_accuracy` and `eval_problems` (how many problems it is over) for a record, told
        on the terminal as it comes (an evaluation takes a while: the run shows why)."""
        start = time.perf_counter()
        if self.progress and done == 0:
            n = len(self.eval_problems)
            tqdm.write(f"evaluating the initial model on {n} held-out problems")
        accuracy = self.evaluate()
        if self.progress and accuracy is not None:
            tqdm.write(
                f"held-out accuracy after {done} iterations: {accuracy:.1%} "
                f"({len(self.eval_problems)} problems, greedy, {time.perf_counter() - start:.0f} s)"
            )
        return {"eval_accuracy": accuracy, "eval_problems": len(self.eval_problems)}

    # ----------------------------------------------------------------- checkpoints
    def save(self, iterations_done: int) -> Path | None:
        """Rank 0 writes the checkpoint (the ranks' weights and optimizers are identical, or,
        sharded, gathered to rank 0 first)."""
        sharded = fsdp.is_sharded(self.model)
        model_state = fsdp.full_state_dict(self.model) if sharded else None
        critic_state = fsdp.full_state_dict(self.critic) if sharded and self.critic else None
        optimizer = self._optimizer_state(self.model, self.optimizer)
        critic_optimizer = (
            self._optimizer_state(self.critic, self.critic_optimizer)
            if self.critic is not None and self.critic_optimizer is not None
            else None
        )
        if not self.ctx.is_main:
            barrier(self.ctx)
            return None
        state = TrainerState(
            iteration=iterations_done,
            optimizer=optimizer,
            scheduler=self.scheduler.state_dict(),
            critic_optimizer=critic_optimizer,
            critic_scheduler=self.critic_scheduler.state_dict() if self.critic_scheduler else None,
            rng=rng_state(),
        )
        path = save_checkpoint(
            self.output / "checkpoints",
            iteration=iterations_done,
            model=self.model,
            tokenizer=self.tokenizer,
            config=self.cfg.to_dict(),
            state=state,
            critic=self.critic,
            keep=self.cfg.keep_checkpoints,
            model_state=model_state,
            critic_state=critic_state,
        )
        barrier(self.ctx)
        return path

    @staticmethod
    def _optimizer_state(module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
        if fsdp.is_sharded(module):
            return fsdp.full_optimizer_state(module, optimizer)  # collective
        return optimizer.state_dict()

    @staticmethod
    def _load_optimizer_state(
        module: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict
    ) -> None:
        if fsdp.is_sharded(module):
            fsdp.load_full_optimizer_state(module, optimizer, state)
        else:
            optimizer.load_state_dict(state)

    def _resume(self, path: Path) -> None:
        """Weights, optimizers, schedule and RNG from `path` (its config was checked already)."""
        load_policy_weights(self.model, path / "policy")
        state = load_trainer_state(path)
        self._load_optimizer_state(self.model, self.optimizer, state.optimizer)
        self.scheduler.load_state_dict(state.scheduler)
        if self.critic is not None and self.critic_optimizer is not None:
            load_critic_weights(self.critic, path)
            self._load_optimizer_state(self.critic, self.critic_optimizer, state.critic_optimizer)
            if self.critic_scheduler is not None:  # (checkpoints before it existed: constant)
                if state.critic_scheduler is not None:
                    self.critic_scheduler.load_state_dict(state.critic_scheduler)
                else:
                    self.critic_scheduler.last_epoch = state.iteration
        set_rng_state(state.rng)
        self.start_iteration = state.iteration
        self._apply_config_to_optimizers()

    def _apply_config_to_optimizers(self) -> None:
        """The saved optimizers carry the checkpoint's lr, betas, ε and weight decay; a forced
        resume may have changed them: run the config's, and say what changed."""
        cfg = self.cfg
        adam = {"betas": tuple(cfg.adam_betas), "eps": cfg.adam_eps}
        changes = apply_optimizer_config(
            self.optimizer,
            lr=cfg.lr,
            lr_now=cfg.lr * lr_factor(self.scheduler.last_epoch, cfg),
            weight_decay=cfg.weight_decay,
            **adam,
        )
        _rebase(self.scheduler, cfg.lr)
        if self.critic_optimizer is not None and self.critic_scheduler is not None:
            factor = lr_factor(self.critic_scheduler.last_epoch, cfg, cfg.critic_lr_schedule)
            changes += [
                f"critic {c}"
                for c in apply_optimizer_config(
                    self.critic_optimizer,
                    lr=cfg.critic_lr,
                    lr_now=cfg.critic_lr * factor,
                    weight_decay=cfg.critic_weight_decay,
                    **adam,
                )
            ]
            _rebase(self.critic_scheduler, cfg.critic_lr)
        if changes and self.ctx.is_main:
            tqdm.write(f"resuming with the config's optimizer settings: {', '.join(changes)}")

    # ----------------------------------------------------------------- the loop
    def _on_sigint(self, signum: int, frame: object) -> None:
        if self._stop_requested:
            raise KeyboardInterrupt
        self._stop_requested = True
        tqdm.write("stopping after this iteration and saving (Ctrl-C again to abort now)")

    def _write(self, record: dict) -> None:
        if self.metrics is not None:
            self.metrics.write(record)

    def run(self) -> list[dict]:
        """Train from the current iteration to cfg.iterations; returns the records written."""
        cfg = self.cfg
        records = []
        previous = signal.signal(signal.SIGINT, self._on_sigint) if _main_thread() else None
        try:
            if self.start_iteration == 0 and cfg.eval_every:
                records.append({"iteration": 0, **self._eval_record(0)})
                self._write(records[-1])
            bar = tqdm(
                range(self.start_iteration, cfg.iterations),
                disable=not self.progress,
                initial=self.start_iteration,
                total=cfg.iterations,
                desc=cfg.algo,
            )
            for it in bar:
                record = self.iteration(it)
                done = it + 1
                if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.iterations):
                    record.update(self._eval_record(done))
                self._write(record)
                records.append(record)
                bar.set_postfix(_progress_fields(record))
                stop = any_across(self._stop_requested, self.ctx)  # all ranks stop together
                last = done == cfg.iterations
                if last or stop or (cfg.save_every and done % cfg.save_every == 0):
                    self.save(done)
                if stop:
                    self.stopped_early = not last
                    break
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if self.metrics is not None:
                self.metrics.close()
        return records


def _progress_fields(record: dict) -> dict[str, str]:
    """What the progress bar shows of an iteration: reward, accuracy, its seconds, eval."""
    fields = {
        "reward": f"{record['reward_mean']:.2f}",
        "acc": f"{record['accuracy']:.2f}",
        "it": f"{record['rollout_seconds'] + record['update_seconds']:.0f}s",
    }
    if record.get("eval_accuracy") is not None:
        fields["eval"] = f"{record['eval_accuracy']:.3f}"
    return fields


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def train(cfg: TrainConfig, output: str | Path, **kwargs: object) -> list[dict]:
    """Build a Trainer and run it (see `Trainer` for the keyword arguments)."""
    return Trainer(cfg, output, **kwargs).run()  # type: ignore[arg-type]
