"""The RL loop of every algorithm (PAPER.md, "Setting"), in the paper's order:

    prompts -> generate -> reward -> score -> experience (filter + advantages)
            -> train (E epochs of minibatch updates) -> metrics, checkpoints, eval

The trainer orchestrates: it owns no math and names no algorithm, and runs the model only through
the policy seam (`minimalrl.policy.Policy`: sampling, scoring, training steps, precision,
sharding, checkpoint state). Randomness is derived from (seed, iteration, purpose), so a resumed
run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from minimalrl.config import ConfigError, TrainConfig
from minimalrl.data import build_prompts, load_data
from minimalrl.eval.evaluate import EvalSettings, evaluate
from minimalrl.eval.metrics import MetricsWriter
from minimalrl.experience import (
    Sampled,
    build_experience,
    reduce_metrics,
    rollout_metrics,
    sample_until_full,
)
from minimalrl.output import prepare_output
from minimalrl.policy import Policy, prepare_device
from minimalrl.reward import REWARD_SETTINGS, Reward
from minimalrl.rollout import SamplingParams, derive_seed
from minimalrl.scale.distributed import any_across, init_distributed, shard, sum_across
from minimalrl.trackers import TrackedRun, Trackers
from minimalrl.train.resume import check_config, resume_point

# What each derived seed is for: derive_seed(cfg.seed, epoch or iteration, purpose).
DATA_ORDER, SAMPLING, PAIRS, MINIBATCHES, MORE_PROMPTS, EVALUATION = 1, 2, 3, 4, 5, 6
# Settings a resumed run may change: where its metrics are mirrored changes nothing it computes.
TRACKER_FIELDS = ("report_to", "run_name", "run_group", "tracker_project")


class Trainer:
    """Holds the policy and data of one run; `run()` trains to the last iteration.

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
        self._checkpoint = self._resume_point(resume, force)
        self.ctx, device = init_distributed(prepare_device(cfg))
        self.progress = progress and self.ctx.is_main
        self._start_process()
        self.reward = Reward.load(cfg.reward, **{k: getattr(cfg, k) for k in REWARD_SETTINGS})
        self.policy = Policy(cfg, cfg.algorithm(), device, self.ctx)
        self._tokenize_prompts()
        self.start_iteration = 0
        if self._checkpoint is not None:
            self.start_iteration = self.policy.load(self._checkpoint)
        self.metrics = (
            # A resumed run keeps the records its checkpoint covers; a fresh one starts empty.
            MetricsWriter(
                self.output,
                truncate_after=self.start_iteration + 1 if self.start_iteration else 0,
                trackers=self._trackers(),
            )
            if self.ctx.is_main
            else None
        )
        self._stop_requested = False
        self.stopped_early = False
        """True when `run()` returned before the last iteration (Ctrl-C): the run is unfinished."""
        self.eval_verdicts: list[list[bool]] = []
        """Per-problem verdicts of each held-out evaluation of this process, in order."""

    def _resume_point(self, resume: bool | str, force: bool) -> Path | None:
        """The checkpoint to continue (None: start), its config checked against this one."""
        checkpoint = resume_point(self.output, resume)
        if checkpoint is not None:
            saved = json.loads((checkpoint / "config.json").read_text())
            now, defaults = self.cfg.to_dict(), TrainConfig().to_dict()
            for key in TRACKER_FIELDS:
                for values in (saved, now, defaults):
                    values.pop(key, None)
            check_config(saved, now, force=force, where=checkpoint, defaults=defaults)
        return checkpoint

    def _trackers(self) -> Trackers:
        """The trackers of `report_to`, told the run's name, group and config; a resumed run
        continues the tracker runs it started."""
        cfg = self.cfg
        run = TrackedRun(
            output=self.output,
            name=cfg.run_name or self.output.resolve().name,
            group=cfg.run_group,
            project=cfg.tracker_project,
            config=json.loads(json.dumps(cfg.to_dict())),  # tuples as lists, as config.json
        )
        return Trackers(cfg.report_to, run, resume=self._checkpoint is not None)

    def _start_process(self) -> None:
        """The output folder, threads and global seeds of this process."""
        cfg = self.cfg
        if cfg.dynamic_sampling and self.ctx.active:  # each rank would sample its own rounds
            raise ConfigError("dynamic_sampling: one process only for now (not with torchrun)")
        if cfg.prompts_per_iteration % self.ctx.world_size:
            raise ConfigError(
                f"prompts_per_iteration = {cfg.prompts_per_iteration} must split evenly over "
                f"{self.ctx.world_size} ranks"
            )
        if self.ctx.is_main:
            prepare_output(self.output)
        torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)

    # ----------------------------------------------------------------- data
    def _load_problems(self) -> None:
        cfg = self.cfg
        fields = {"question_field": cfg.question_field, "answer_field": cfg.answer_field}
        self.problems = load_data(cfg.train_data, **fields, split=cfg.train_split)
        self.eval_problems = (
            load_data(cfg.eval_data, **fields, split=cfg.eval_split, prefer_split="test")
            if cfg.eval_data
            else []
        )

    def _tokenize_prompts(self) -> None:
        tokenizer = self.policy.tokenizer
        prompts = build_prompts(tokenizer, self.problems, system_prompt=self.cfg.system_prompt)
        self.prompt_ids = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]

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
        g = self._generator(epoch, DATA_ORDER)
        return torch.randperm(len(self.problems), generator=g).tolist()

    def _generator(self, step: int, purpose: int) -> torch.Generator:
        return torch.Generator().manual_seed(derive_seed(self.cfg.seed, step, purpose))

    # ----------------------------------------------------------------- one iteration
    def iteration(self, it: int) -> dict:
        """Roll out, score, build experience, update; returns the iteration's metrics.

        In the configured precision: under bf16 autocast when precision is bf16."""
        with self.policy.autocast():
            return self._iteration(it)

    def _iteration(self, it: int) -> dict:
        """The paper's loop: prompts -> generate -> reward -> score -> experience -> train."""
        start = time.perf_counter()
        idx = shard(self.prompt_indices(it), self.ctx)  # this rank's prompts, whole groups
        (ro, rewards_B, correct_B), sampling = self._generate_and_reward(it, idx)
        scores = self.policy.score(ro)  # the reference's log-probs, the critic's values
        exp = build_experience(
            self.policy.alg, ro, rewards_B, correct_B, **self._experience_settings(it),
            ref_logp_BR=scores.ref_logp_BR, values_BR=scores.values_BR, ctx=self.ctx,
        )  # fmt: skip
        lrs = self.policy.learning_rates()  # of this iteration's steps
        rollout_seconds = time.perf_counter() - start
        step = self.policy.train(exp, self._generator(it, MINIBATCHES))  # π_old scored there
        if not step.metrics and self.ctx.is_main:
            tqdm.write(f"iteration {it + 1}: every prompt was filtered out; no update")
        seconds = time.perf_counter() - start
        rollout_seconds += step.scoring_seconds
        # Measured on the rollout batch under the sampling policy (scored before the step).
        curves = rollout_metrics(exp, step.scores.old_logp_BR, step.scores.entropy_BR)
        upd = step.metrics
        generated = sum_across(float(ro.response_mask_BR.sum()), self.ctx)
        return {
            "iteration": it + 1,
            **reduce_metrics(curves, self.ctx),
            **lrs,
            "clip_fraction": upd.get("clip_fraction", 0.0),
            "grad_norm": upd.get("grad_norm", 0.0),
            "rollout_seconds": rollout_seconds,
            "update_seconds": seconds - rollout_seconds,
            "tokens_per_second": generated / seconds,
            "skipped_update": not upd,
            **sampling,
            **{f"update/{k}": v for k, v in upd.items()},
        }

    def _sampling(self, it: int) -> SamplingParams:
        cfg = self.cfg
        return SamplingParams(
            n=cfg.samples_per_prompt,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            seed=derive_seed(cfg.seed, it, SAMPLING),
        )

    def _generate_and_reward(self, it: int, idx: list[int]) -> tuple[Sampled, dict[str, float]]:
        """This rank's responses to its prompts `idx`, their rewards and verdicts; with DAPO's
        dynamic sampling, fresh prompts until the filter keeps enough (and how many it took)."""
        if not self.cfg.dynamic_sampling:
            return self._rollout(idx, self._sampling(it)), {}
        return sample_until_full(
            lambda r: self._rollout(self._more_prompts(it, r) if r else idx, self._sampling(it), r),
            self.policy.alg,
            group_size=self.cfg.samples_per_prompt,
            target=len(idx),
            rounds=self.cfg.dynamic_sampling_rounds,
            band=(self.cfg.band_lo, self.cfg.band_hi),
            pad_id=self.policy.tokenizer.pad_token_id,
        )

    def _rollout(self, idx: list[int], params: SamplingParams, round_: int = 0) -> Sampled:
        """Responses to the prompts `idx` (round > 0 of dynamic sampling: fresh seeds), their
        rewards and verdicts (the configured reward function)."""
        if round_:
            params = dataclasses.replace(
                params, seed=derive_seed(self.cfg.seed, params.seed, round_)
            )
        ro = self.policy.generate([self.prompt_ids[i] for i in idx], params, idx)
        texts = self.policy.tokenizer.batch_decode(ro.response_ids_BR, skip_special_tokens=True)
        problems = [self.problems[i] for i in idx for _ in range(params.n)]
        return (ro, *self.reward(texts, problems))

    def _more_prompts(self, it: int, round_: int) -> list[int]:
        """Round `round_` of dynamic sampling: this rank's share of M prompts drawn afresh."""
        g = torch.Generator().manual_seed(derive_seed(self.cfg.seed, it, MORE_PROMPTS, round_))
        drawn = torch.randperm(len(self.problems), generator=g).tolist()
        m = self.cfg.prompts_per_iteration
        return shard([drawn[i % len(drawn)] for i in range(m)], self.ctx)

    def _experience_settings(self, it: int) -> dict:
        """The config's settings of `build_experience`, and the iteration's pairing generator."""
        cfg = self.cfg
        return {
            "group_size": cfg.samples_per_prompt,
            "band": (cfg.band_lo, cfg.band_hi),
            "filtered": cfg.filtered,
            "advantage_eps": cfg.advantage_eps,
            "gamma": cfg.gamma,
            "lam": cfg.lam,
            "pair_rng": self._generator(it, PAIRS),
            "pair_reference": cfg.dpo_reference,
        }

    # ----------------------------------------------------------------- eval
    def evaluate(self, done: int = 0) -> float | None:
        """Greedy accuracy on the held-out set after `done` iterations (None when there is no
        held-out set)."""
        if not self.eval_problems:
            return None
        with self.policy.gathered():  # every rank gathers; rank 0 evaluates alone
            return self._evaluate_gathered(done) if self.ctx.is_main else None

    def _evaluate_gathered(self, done: int) -> float | None:
        cfg, policy = self.cfg, self.policy
        # The seed moves no greedy answer; one per iteration tells a rollout record's
        # evaluations of different weights apart (`minimalrl.rollout.replay`).
        seed = derive_seed(cfg.seed, done, EVALUATION)
        batch = max(cfg.micro_batch_size, 64)
        settings = EvalSettings.from_config(cfg, batch_size=batch, seed=seed)
        result = evaluate(
            policy.model, policy.tokenizer, self.eval_problems, settings,
            backend=policy.backend, progress=False,
        )  # fmt: skip
        self.eval_verdicts.append([s["correct"] for s in result.samples])  # k = 1: per problem
        return result.summary["accuracy"]

    def _eval_record(self, done: int) -> dict:
        """`eval_accuracy` and `eval_problems` (how many problems it is over) for a record, told
        on the terminal as it comes (an evaluation takes a while: the run shows why)."""
        start = time.perf_counter()
        if self.progress and done == 0:
            n = len(self.eval_problems)
            tqdm.write(f"evaluating the initial model on {n} held-out problems")
        accuracy = self.evaluate(done)
        if self.progress and accuracy is not None:
            tqdm.write(
                f"held-out accuracy after {done} iterations: {accuracy:.1%} "
                f"({len(self.eval_problems)} problems, greedy, {time.perf_counter() - start:.0f} s)"
            )
        return {"eval_accuracy": accuracy, "eval_problems": len(self.eval_problems)}

    # ----------------------------------------------------------------- checkpoints
    def save(self, iterations_done: int) -> Path | None:
        """Checkpoint `iterations_done` (rank 0 writes it; see `Policy.save`)."""
        cfg = self.cfg
        root = self.output / "checkpoints"
        return self.policy.save(root, iterations_done, cfg.to_dict(), cfg.keep_checkpoints)

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
    """Build a Trainer and run it (see `Trainer` for the keyword arguments); its rollout engine
    is shut down after (a compare trains many runs in one process)."""
    trainer = Trainer(cfg, output, **kwargs)  # type: ignore[arg-type]
    try:
        return trainer.run()
    finally:
        trainer.policy.close()
