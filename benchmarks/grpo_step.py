"""One GRPO iteration of minimalrl against one of TRL's `GRPOTrainer`, on the same work.

Same model (the embedded SmolLM2-135M-Instruct, float32 weights), same precision (`--precision`:
float32 throughout, or bf16 for both: TRL's `bf16=True` autocast, minimalrl's `precision=bf16`
autocast with bf16 sampling), same prompts (the first `--prompts`
problems of `--train-data`, synthetic arithmetic by default; `math500` for long responses: the
default model's answers to MATH problems run to hundreds of tokens, where arithmetic ones end
within ~100 whatever the limit; built with `minimalrl.data.build_prompts`), same samples per prompt,
same generation limit, one optimizer step over all `prompts × samples` completions in micro-batches
of the same size, same torch threads. Each (framework, repeat) runs in a fresh child process
(this script with `--worker`), so its peak RSS is its own; the repeats alternate the order
(A B, B A, ...) so a slow spell of the shared machine does not fall on one framework only.

Each worker loads the model (timed apart), runs `--warmup` untimed steps (first-step costs:
optimizer state, kernel selection, the heap growing to its working size) and then one timed
step, split into phases (and its page faults and system time recorded):

- minimalrl: generate, old log-probs (the policy's scoring forward; skipped when the update is a
  single optimizer step, whose own forward is π_old), reward, reference log-probs
  (computed every iteration for the kl_to_init metric, even with no KL penalty), update;
- TRL: generate, reward, update (the step minus `_generate_and_score_completions`). With
  num_iterations=1 and beta=0 TRL computes neither old nor reference log-probs.

The parent also measures the machine's float32 and bfloat16 matmul ceilings and reports each
framework's update FLOP/s (6 · params · trained prompt+response tokens / update s) and generation
FLOP/s (2 · params · generated tokens / generation s) as fractions of the ceiling of the precision
the run computes in (and of the float32 one). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

FRAMEWORKS = ("minimalrl", "minimalrl_vllm", "trl")  # minimalrl_vllm: rollout_backend vllm
TRL_VERSION = "1.16.0"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "grpo_step.json"
DTYPES = ("fp32", "bf16")
PHASES = ("generate", "old_logprobs", "ref_logprobs", "reward", "update", "other")


# ----------------------------------------------------------------------------- shared helpers
def peak_rss_mib() -> float:
    """This process's peak resident set size so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PhaseClock:
    """Wall time per named phase, accumulated by wrapping callables; plus token counts."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, float] = {}
        self.usage_at_reset = resource.getrusage(resource.RUSAGE_SELF)

    def reset(self) -> None:
        """Start of a step: clear the phases, note the process's page faults and system time."""
        self.seconds.clear()
        self.counts.clear()
        self.usage_at_reset = resource.getrusage(resource.RUSAGE_SELF)

    def require(self, *names: str) -> None:
        """Fail loudly when a wrapped function was not called (the framework changed)."""
        missing = [n for n in names if n not in self.seconds]
        if missing:
            raise RuntimeError(f"phases never timed: {missing}; the wrapped calls have moved")

    def wrap(self, name: str, fn: Callable, after: Callable | None = None) -> Callable:
        """`fn`, timed under `name`; `after(clock, args, result)` runs outside the timing."""

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.seconds[name] += time.perf_counter() - t0
            if after is not None:
                after(self, args, out)
            return out

        return timed


def step_record(clock: PhaseClock, seconds: float, phases: dict[str, float]) -> dict:
    """One timed step: total seconds, phases (with `other` = the rest), counts, threads."""
    import torch

    phases = {k: phases.get(k, 0.0) for k in PHASES if k != "other"}
    phases["other"] = seconds - sum(phases.values())
    now, then = resource.getrusage(resource.RUSAGE_SELF), clock.usage_at_reset
    return {
        "seconds": seconds,
        "phases": phases,
        **clock.counts,
        "threads": torch.get_num_threads(),
        # memory newly touched during the step (each fault a fresh page the kernel zeroes)
        "minor_page_faults": now.ru_minflt - then.ru_minflt,
        "system_seconds": now.ru_stime - then.ru_stime,
    }


# ----------------------------------------------------------------------------- minimalrl worker
def _count_generated(clock: PhaseClock, args: tuple, ro: Any) -> None:
    clock.counts["rows"] = int(ro.response_mask_BR.shape[0])
    clock.counts["generated_tokens"] = int(ro.response_mask_BR.sum())


def _count_trained(clock: PhaseClock, args: tuple, out: Any) -> None:
    exp = args[1]  # update(steps, exp, ...)
    rows = exp.trained_rows
    ro = exp.rollout
    response = int(ro.response_mask_BR[rows].sum())
    clock.counts["trained_rows"] = len(rows)
    clock.counts["trained_response_tokens"] = response
    # Prompt + response tokens of every trained row: the work TRL does. minimalrl runs each
    # distinct prompt once per micro-batch (shared KV cache), so it computes fewer.
    clock.counts["trained_tokens"] = int(ro.sequence_lengths_B[rows].sum())
    unique = ro.prompt_index_B[rows].unique()
    clock.counts["computed_tokens"] = int(ro.prompt_mask_UP[unique].sum()) + response


def _problems_spec(args: argparse.Namespace) -> str:
    """`--train-data` as a dataset spec (arithmetic: the first `prompts` of the synthetic task)."""
    return f"arithmetic:n={args.prompts}" if args.train_data == "arithmetic" else args.train_data


def train_problems(args: argparse.Namespace) -> list:
    """The first `--prompts` problems of `--train-data`, both frameworks' prompts."""
    from minimalrl.data import load_problems

    return load_problems(_problems_spec(args), limit=args.prompts)


def train_data_spec(args: argparse.Namespace, folder: str) -> str:
    """minimalrl's `train_data` for `train_problems`: the synthetic task's spec for arithmetic,
    else those problems written to a jsonl in `folder`."""
    if args.train_data == "arithmetic":
        return _problems_spec(args)
    path = Path(folder) / "train.jsonl"
    rows = [{"question": x.question, "answer": x.answer} for x in train_problems(args)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def _minimalrl_config(args: argparse.Namespace, train_data: str):
    from minimalrl.config import TrainConfig

    rows = args.prompts * args.samples
    return TrainConfig(
        algo="grpo",
        model="smollm2-135m-instruct",
        train_data=train_data,
        eval_data="",
        iterations=args.warmup + 1,
        prompts_per_iteration=args.prompts,  # every iteration: all of them, shuffled
        samples_per_prompt=args.samples,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        minibatch_size=rows,  # one optimizer step per iteration
        micro_batch_size=args.micro_batch,
        epochs=1,
        eval_every=0,
        save_every=0,
        lr=1e-6,
        correct_reward=1.0,
        wrong_reward=0.0,  # TRL's reward below is 1/0 too (GRPO normalises it either way)
        fallback_last_number=True,
        threads=args.threads,
        seed=args.seed,
        # TRL with beta=0 runs no reference model; minimalrl's reference forward only feeds the
        # kl_to_init curve, so it is off here unless --track-kl asks for it.
        track_kl_to_init=args.track_kl,
        precision=args.precision,
        rollout_precision=args.rollout_precision or args.precision,
        rollout_backend="vllm" if args.worker == "minimalrl_vllm" else "hf",
        vllm_max_model_len=1024 + args.max_new_tokens,
    )


def minimalrl_worker(args: argparse.Namespace) -> dict:
    """Build a Trainer, run warm-up iterations, then time one `Trainer.iteration` (with the
    `hf` rollout backend, or `vllm` for the minimalrl_vllm worker)."""
    import torch

    from minimalrl.policy import policy as policy_mod
    from minimalrl.train import trainer as trainer_mod

    with (
        tempfile.TemporaryDirectory(prefix="grpo-bench-data-") as data,
        tempfile.TemporaryDirectory(prefix="grpo-bench-minimalrl-") as out,
    ):
        cfg = _minimalrl_config(args, train_data_spec(args, data))
        t0 = time.perf_counter()
        trainer = trainer_mod.Trainer(cfg, out, progress=False)
        load_seconds = time.perf_counter() - t0
        rss_loaded = peak_rss_mib()
        clock = PhaseClock()
        # The trainer calls these by module-level name: wrap them there (this process is throwaway).
        policy = trainer.policy
        policy.backend.generate = clock.wrap("generate", policy.backend.generate, _count_generated)
        # Not called when the update is one optimizer step (its own forward is π_old).
        policy._policy_scores = clock.wrap("old_logprobs", policy._policy_scores)
        required = ["generate", "reward", "update"]
        if policy.reference is not None:  # only with --track-kl (kl_to_init curve)
            ref = policy.reference
            ref.logprobs = clock.wrap("ref_logprobs", ref.logprobs)
            required.append("ref_logprobs")
        trainer.reward = clock.wrap("reward", trainer.reward)
        policy_mod.update = clock.wrap("update", policy_mod.update, _count_trained)
        steps = []
        for it in range(args.warmup + 1):
            clock.reset()
            t0 = time.perf_counter()
            record = trainer.iteration(it)
            seconds = time.perf_counter() - t0
            clock.require(*required)
            phases = dict(clock.seconds)
            step = step_record(clock, seconds, phases)
            step.update(accuracy=record["accuracy"], response_length=record["response_length"])
            # the engine's weight sync after the update (vllm), in the step's "other" phase
            step["weight_sync_seconds"] = record.get("update/weight_sync_seconds", 0.0)
            steps.append(step)
        trainer.metrics.close()
        trainer.policy.close()
    n_params = sum(
        p.numel() for p in trainer.policy.model.parameters()
    )  # tied weights counted once
    return {
        "load_seconds": load_seconds,
        "load_note": "Trainer(): policy load, reference copy, optimizer, data, metrics writer",
        "params": n_params,
        "peak_rss_after_load_mib": rss_loaded,
        "warmup_steps": steps[:-1],
        "step": steps[-1],
        "config": {k: v for k, v in cfg.to_dict().items() if not isinstance(v, tuple)},
        "torch_threads": torch.get_num_threads(),
    }


# ----------------------------------------------------------------------------- TRL worker
def trl_config_kwargs(args: argparse.Namespace, output_dir: str) -> dict:
    """GRPOConfig settings that make TRL's step the same work; TRL's defaults otherwise."""
    rows = args.prompts * args.samples
    return {
        "output_dir": output_dir,
        # One optimizer step over all completions, in micro-batches of the same size.
        "per_device_train_batch_size": args.micro_batch,
        "gradient_accumulation_steps": rows // args.micro_batch,
        # steps_per_generation defaults to gradient_accumulation_steps: one generation per step
        "num_generations": args.samples,
        "max_completion_length": args.max_new_tokens,
        "num_iterations": 1,
        "beta": 0.0,  # no KL term, hence no reference model
        "temperature": args.temperature,
        "top_p": 1.0,
        "learning_rate": 1e-6,
        "use_vllm": False,
        "bf16": args.precision == "bf16",  # GRPOConfig's default is True: autocast on CPU
        "fp16": False,
        "use_cpu": True,
        "gradient_checkpointing": args.trl_gradient_checkpointing,  # TRL's default: True
        "max_steps": args.warmup + 1,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_pin_memory": False,
        "seed": args.seed,
    }


def _trl_step_timer(clock: PhaseClock, steps: list[dict], log_sink: list[dict]) -> Any:
    """A TrainerCallback timing each optimizer step (generation happens inside it)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.reset()
            self.t0 = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            seconds = time.perf_counter() - self.t0
            clock.require("generate", "reward", "generate_and_score")
            phases = dict(clock.seconds)
            # The micro-steps' forward/backward and the optimizer step: all but the scoring.
            phases["update"] = seconds - phases.pop("generate_and_score", 0.0)
            # Decode and advantages inside `_generate_and_score_completions` end up in "other".
            steps.append(step_record(clock, seconds, phases))

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "completions/mean_length" in logs:  # a training step's log
                log_sink.append({k: v for k, v in logs.items() if isinstance(v, int | float)})

    return StepTimer()


def _count_scored(clock: PhaseClock, args: tuple, out: dict) -> None:
    prompt_tokens = int(out["prompt_mask"].sum())
    response = int(out["completion_mask"].sum())
    clock.counts["rows"] = int(out["completion_mask"].shape[0])
    clock.counts["generated_tokens"] = response
    clock.counts["trained_rows"] = int(out["completion_mask"].shape[0])  # TRL trains every row
    clock.counts["trained_response_tokens"] = response
    clock.counts["trained_tokens"] = prompt_tokens + response
    clock.counts["computed_tokens"] = prompt_tokens + response  # every row runs its prompt
    clock.counts["response_length"] = response / max(1, clock.counts["rows"])


def trl_worker(args: argparse.Namespace) -> dict:
    """Build a GRPOTrainer on the same model, prompts and reward; time its optimizer steps."""
    import torch
    import trl
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from minimalrl.data import build_prompts
    from minimalrl.model.loading import load_policy
    from minimalrl.reward import verify_batch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    model, tokenizer = load_policy("smollm2-135m-instruct")
    load_seconds = time.perf_counter() - t0
    problems = train_problems(args)
    prompts = build_prompts(tokenizer, problems)
    # The prompt text already holds the chat template's special tokens; TRL tokenizes plain-text
    # prompts with add_special_tokens=True, which adds nothing for SmolLM2: check it stays so.
    ids_trl = tokenizer(prompts)["input_ids"]
    if ids_trl != tokenizer(prompts, add_special_tokens=False)["input_ids"]:
        raise RuntimeError("TRL would tokenize the prompts differently from minimalrl")
    dataset = Dataset.from_list(
        [{"prompt": p, "answer": pr.answer} for p, pr in zip(prompts, problems)]
    )

    def correct(completions: list[str], answer: list[str], **kwargs: Any) -> list[float]:
        ok = verify_batch(completions, answer, fallback_last_number=True)
        return [1.0 if v else 0.0 for v in ok]

    clock, steps, logs = PhaseClock(), [], []
    with tempfile.TemporaryDirectory(prefix="grpo-bench-trl-") as out:
        settings = trl_config_kwargs(args, out)
        t0 = time.perf_counter()
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=correct,
            args=GRPOConfig(**settings),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[_trl_step_timer(clock, steps, logs)],
        )
        setup_seconds = time.perf_counter() - t0
        rss_loaded = peak_rss_mib()
        # Instance attributes shadow the methods the trainer calls through `self`.
        trainer._generate_single_turn = clock.wrap("generate", trainer._generate_single_turn)
        trainer._calculate_rewards = clock.wrap("reward", trainer._calculate_rewards)
        trainer._generate_and_score_completions = clock.wrap(
            "generate_and_score", trainer._generate_and_score_completions, _count_scored
        )
        trainer.train()
    for step, log in zip(steps, logs):
        step["accuracy"] = log.get("reward")
        step["trl_logged"] = log
    args_used = trainer.args
    return {
        "load_seconds": load_seconds,
        "setup_seconds": setup_seconds,
        "load_note": "load_policy(); setup_seconds = GRPOTrainer() construction",
        "params": sum(p.numel() for p in model.parameters()),
        "peak_rss_after_load_mib": rss_loaded,
        "warmup_steps": steps[:-1],
        "step": steps[-1],
        "config": {
            **{k: v for k, v in settings.items() if k != "output_dir"},
            "steps_per_generation": args_used.steps_per_generation,
            "generation_batch_size": args_used.generation_batch_size,
            "loss_type": args_used.loss_type,
            "scale_rewards": args_used.scale_rewards,
            "epsilon": args_used.epsilon,
            "max_grad_norm": args_used.max_grad_norm,
            "optim": getattr(args_used.optim, "value", args_used.optim),
            "lr_scheduler_type": getattr(
                args_used.lr_scheduler_type, "value", args_used.lr_scheduler_type
            ),
            "gradient_checkpointing_kwargs": args_used.gradient_checkpointing_kwargs,
        },
        "trl_version": trl.__version__,
        "torch_threads": torch.get_num_threads(),
    }


# ----------------------------------------------------------------------------- parent
def matmul_gflops(threads: int, n: int = 2048, tries: int = 8, dtype: str = "fp32") -> float:
    """Best-of-`tries` GFLOP/s of an n×n `torch.matmul` (2n³ FLOPs) on `threads` threads."""
    import torch

    torch.set_num_threads(threads)
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
    c = torch.empty(n, n, dtype=dt)
    torch.matmul(a, b, out=c)  # warm up the kernel and the thread pool
    best = float("inf")
    for _ in range(tries):
        t0 = time.perf_counter()
        torch.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def run_worker_process(framework: str, args: argparse.Namespace, seed: int, log: Path) -> dict:
    """Run one (framework, repeat) in a fresh process; returns its JSON result."""
    result_path = log.with_suffix(".json")
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--worker", framework, "--worker-output", str(result_path)),
        *("--prompts", str(args.prompts), "--samples", str(args.samples)),
        *("--train-data", args.train_data, "--temperature", str(args.temperature)),
        *("--max-new-tokens", str(args.max_new_tokens), "--micro-batch", str(args.micro_batch)),
        *("--threads", str(args.threads), "--warmup", str(args.warmup), "--seed", str(seed)),
        "--trl-gradient-checkpointing"
        if args.trl_gradient_checkpointing
        else "--no-trl-gradient-checkpointing",
        *(["--track-kl"] if args.track_kl else []),
        *("--precision", args.precision),
        *(("--rollout-precision", args.rollout_precision) if args.rollout_precision else ()),
    ]
    threads = str(args.threads)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0 or not result_path.is_file():
        tail = "\n".join(log.read_text().splitlines()[-40:])
        raise SystemExit(f"{framework} worker failed (exit {proc.returncode}); log tail:\n{tail}")
    result = json.loads(result_path.read_text())
    result["wall_seconds"] = time.perf_counter() - t0
    return result


def summarize(runs: list[dict], ceiling_gflops: float, fp32_ceiling_gflops: float) -> dict:
    """Min/median step time, throughputs and FLOP/s fractions over the repeats (timed steps)."""
    med = statistics.median
    steps = [r["step"] for r in runs]
    params = runs[0]["params"]
    gen_tok_s = [s["generated_tokens"] / s["phases"]["generate"] for s in steps]
    train_tok_s = [s["trained_tokens"] / s["phases"]["update"] for s in steps]
    update_gflops = [6 * params * t / 1e9 for t in train_tok_s]
    # Only the tokens the model actually ran (minimalrl runs a prompt once for its group).
    computed_gflops = [
        6 * params * s.get("computed_tokens", s["trained_tokens"]) / s["phases"]["update"] / 1e9
        for s in steps
    ]
    gen_gflops = [2 * params * t / 1e9 for t in gen_tok_s]
    return {
        "step_seconds_min": min(s["seconds"] for s in steps),
        "step_seconds_median": med(s["seconds"] for s in steps),
        "phase_seconds_median": {k: med(s["phases"][k] for s in steps) for k in PHASES},
        "generated_tokens_per_second": med(gen_tok_s),
        "training_tokens_per_second": med(train_tok_s),
        "generated_tokens_median": med(s["generated_tokens"] for s in steps),
        "trained_tokens_median": med(s["trained_tokens"] for s in steps),
        "trained_rows_median": med(s["trained_rows"] for s in steps),
        "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs),
        "load_seconds_median": med(r["load_seconds"] + r.get("setup_seconds", 0.0) for r in runs),
        "warmup_step_seconds_median": (
            med(r["warmup_steps"][0]["seconds"] for r in runs) if runs[0]["warmup_steps"] else None
        ),
        "update_gflops": med(update_gflops),
        "update_fraction_of_ceiling": med(update_gflops) / ceiling_gflops,
        "computed_tokens_median": med(s.get("computed_tokens", s["trained_tokens"]) for s in steps),
        "update_computed_gflops": med(computed_gflops),
        "update_computed_fraction_of_ceiling": med(computed_gflops) / ceiling_gflops,
        "generation_gflops": med(gen_gflops),
        "generation_fraction_of_ceiling": med(gen_gflops) / ceiling_gflops,
        "update_computed_fraction_of_fp32_ceiling": med(computed_gflops) / fp32_ceiling_gflops,
        "generation_fraction_of_fp32_ceiling": med(gen_gflops) / fp32_ceiling_gflops,
        "params": params,
        # older results have no fault counts
        "minor_page_faults_median": med(s.get("minor_page_faults", -1) for s in steps),
        "system_seconds_median": med(s.get("system_seconds", -1.0) for s in steps),
    }


def ceilings_of(result: dict) -> dict[str, float]:
    """{dtype: GFLOP/s}; results written before bf16 was measured hold the fp32 one only."""
    return result.get("matmul_ceilings_gflops") or {"fp32": result["matmul_ceiling_gflops"]}


def format_report(result: dict) -> str:
    """The table printed at the end of a run."""
    s, summ = result["settings"], result["summary"]
    precision = s.get("precision", "fp32")
    ceilings = ceilings_of(result)
    lines = [
        f"GRPO step: {s['prompts']} prompts ({s.get('train_data', 'arithmetic')}) × "
        f"{s['samples']} samples, ≤ {s['max_new_tokens']} new "
        f"tokens, one optimizer step in micro-batches of {s['micro_batch']}, {s['threads']} "
        f"threads, {s['repeats']} repeats (+{s['warmup']} warm-up step per worker), "
        f"precision {precision}" + (f", T {s['temperature']}" if "temperature" in s else ""),
        f"matmul ceiling ({s['matmul_size']}²): fp32 {ceilings['fp32']:.1f} GFLOP/s, bf16 "
        f"{ceilings.get('bf16', float('nan')):.1f} GFLOP/s; fractions below are of the "
        f"{precision} one",
        "",
        f"{'':14} {'step s min':>10} {'step s med':>10} {'gen tok/s':>9} {'train tok/s':>11} "
        f"{'peak RSS MiB':>12} {'load s':>7}",
    ]
    for fw, x in summ.items():
        lines.append(
            f"{fw:14} {x['step_seconds_min']:10.2f} {x['step_seconds_median']:10.2f} "
            f"{x['generated_tokens_per_second']:9.1f} {x['training_tokens_per_second']:11.1f} "
            f"{x['peak_rss_mib_max']:12.0f} {x['load_seconds_median']:7.1f}"
        )
    if "ratio_vllm_over_hf" in result:
        r = result["ratio_vllm_over_hf"]
        lines.append(
            f"ratio rollout_backend vllm / hf (step time): median {r['step_seconds_median']:.2f},"
            f" min {r['step_seconds_min']:.2f}"
        )
    if "ratio_minimalrl_over_trl" in result:
        r = result["ratio_minimalrl_over_trl"]
        lines.append(
            f"ratio minimalrl / TRL (step time): median {r['step_seconds_median']:.2f}, "
            f"min {r['step_seconds_min']:.2f}"
        )
    lines += ["", "median phase seconds  " + " ".join(f"{p:>12}" for p in PHASES)]
    for fw, x in summ.items():
        ph = x["phase_seconds_median"]
        lines.append(f"{fw:21} " + " ".join(f"{ph[p]:12.2f}" for p in PHASES))
    faults = {fw: x for fw, x in summ.items() if x.get("minor_page_faults_median", -1) >= 0}
    lines += [""] if faults else []
    for fw, x in faults.items():
        lines.append(
            f"{fw}: timed step (median) {x['minor_page_faults_median']:.0f} minor page "
            f"faults, {x['system_seconds_median']:.2f} s system time"
        )
    lines.append("")
    for fw, x in summ.items():
        lines.append(
            f"{fw}: update {x['update_gflops']:.1f} GFLOP/s work-equivalent "
            f"({100 * x['update_fraction_of_ceiling']:.0f}% of ceiling, 6·N·"
            f"{x['trained_tokens_median']:.0f} prompt+response tokens), "
            f"{x['update_computed_gflops']:.1f} GFLOP/s on the tokens run "
            f"({100 * x['update_computed_fraction_of_ceiling']:.0f}%, 6·N·"
            f"{x['computed_tokens_median']:.0f}), generation "
            f"{x['generation_gflops']:.1f} GFLOP/s "
            f"({100 * x['generation_fraction_of_ceiling']:.0f}%, 2·N·"
            f"{x['generated_tokens_median']:.0f} tokens)"
        )
        if precision != "fp32":
            lines.append(
                f"{'':{len(fw)}}  of the fp32 ceiling: update on the tokens run "
                f"{100 * x['update_computed_fraction_of_fp32_ceiling']:.0f}%, generation "
                f"{100 * x['generation_fraction_of_fp32_ceiling']:.0f}%"
            )
    return "\n".join(lines)


def check_trl_installed() -> None:
    if importlib.util.find_spec("trl") is None or importlib.util.find_spec("datasets") is None:
        raise SystemExit(
            "TRL is not installed in this environment: run scripts/bench_setup.sh "
            "(or pass --skip-trl to benchmark minimalrl alone)"
        )
    from importlib.metadata import version

    if version("trl") != TRL_VERSION:
        print(f"warning: trl {version('trl')} installed; this benchmark targets {TRL_VERSION}")


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "machine": platform.machine()}
    for pkg in ("torch", "transformers", "trl", "accelerate", "minimalrl"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    out["cpu_count"] = os.cpu_count()
    repo = Path(__file__).resolve().parent.parent
    git = subprocess.run(
        ["git", "-C", str(repo), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    out["git"] = git.stdout.strip() or None
    return out


def run_benchmark(args: argparse.Namespace) -> dict:
    frameworks = [f for f in FRAMEWORKS if not getattr(args, f"skip_{f}", not args.vllm)]
    load = [os.getloadavg()[0]]
    if load[0] > 0.5:
        print(f"warning: the machine is busy (1-min load {load[0]:.1f}): timings will be noisy")
    ceiling = {d: [matmul_gflops(args.threads, args.matmul_size, dtype=d)] for d in DTYPES}
    runs: dict[str, list[dict]] = {f: [] for f in frameworks}
    with tempfile.TemporaryDirectory(prefix="grpo-bench-") as tmp:
        for r in range(args.repeats):
            order = frameworks if r % 2 == 0 else frameworks[::-1]  # A B, B A, ...
            for fw in order:
                log = Path(tmp) / f"{fw}-{r}.log"
                res = run_worker_process(fw, args, args.seed + r, log)
                runs[fw].append(res)
                print(
                    f"repeat {r + 1}/{args.repeats} {fw:14}: step {res['step']['seconds']:.2f} s, "
                    f"{res['step']['generated_tokens']} generated tokens, "
                    f"peak RSS {res['peak_rss_mib']:.0f} MiB, worker {res['wall_seconds']:.0f} s",
                    flush=True,
                )
    load.append(os.getloadavg()[0])
    for d in DTYPES:
        ceiling[d].append(matmul_gflops(args.threads, args.matmul_size, dtype=d))
    best = {d: max(v) for d, v in ceiling.items()}
    settings = {k: v for k, v in vars(args).items() if k not in ("worker", "worker_output")}
    result: dict[str, Any] = {
        "settings": {**settings, "output": str(args.output)},
        "versions": versions(),
        "matmul_ceiling_gflops": best[args.precision],
        "matmul_ceilings_gflops": best,
        "matmul_gflops_start_end": ceiling,
        "load_average_1min_start_end": load,
        "summary": {
            fw: summarize(runs[fw], best[args.precision], best["fp32"]) for fw in frameworks
        },
        "runs": runs,
    }
    if "trl" in frameworks and "minimalrl" in frameworks:
        m, t = result["summary"]["minimalrl"], result["summary"]["trl"]
        result["ratio_minimalrl_over_trl"] = {
            k: m[k] / t[k] for k in ("step_seconds_median", "step_seconds_min")
        }
    if "minimalrl_vllm" in frameworks and "minimalrl" in frameworks:
        v, h = result["summary"]["minimalrl_vllm"], result["summary"]["minimalrl"]
        result["ratio_vllm_over_hf"] = {
            k: v[k] / h[k] for k in ("step_seconds_median", "step_seconds_min")
        }
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=16, help="prompts per step")
    p.add_argument("--samples", type=int, default=4, help="samples per prompt (group size)")
    p.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="sampling temperature of both frameworks (TrainConfig's default is 0.7)",
    )
    p.add_argument(
        "--train-data",
        default="arithmetic",
        help="the prompts: the first --prompts problems of this dataset (math500: long answers)",
    )
    p.add_argument("--max-new-tokens", type=int, default=64, help="generation limit")
    p.add_argument("--micro-batch", type=int, default=16, help="completions per forward/backward")
    p.add_argument("--repeats", type=int, default=3, help="timed steps per framework")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per worker first")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every worker")
    p.add_argument("--seed", type=int, default=0, help="seed of repeat 1 (repeat r uses seed+r)")
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n×n matmul ceiling")
    p.add_argument(
        "--trl-gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="TRL's gradient checkpointing (on by default in GRPOConfig; minimalrl has none)",
    )
    p.add_argument(
        "--track-kl",
        action="store_true",
        help="also run minimalrl's reference forward for the kl_to_init curve (TRL, beta=0: none)",
    )
    p.add_argument(
        "--precision",
        choices=DTYPES,
        default="fp32",
        help="both frameworks: fp32, or bf16 (TRL bf16=True; minimalrl precision and "
        "rollout_precision bf16)",
    )
    p.add_argument(
        "--rollout-precision",
        choices=DTYPES,
        help="minimalrl's rollout_precision alone (default: --precision)",
    )
    p.add_argument("--skip-trl", action="store_true", help="benchmark minimalrl alone")
    p.add_argument(
        "--vllm",
        action="store_true",
        help="also minimalrl with rollout_backend vllm (minimalrl_vllm; the vllm extra)",
    )
    p.add_argument("--skip-minimalrl", action="store_true", help="benchmark TRL alone")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON result file")
    p.add_argument("--report", type=Path, help="print the table of an earlier JSON result (no run)")
    p.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    p.add_argument("--worker-output", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("prompts", "samples", "max_new_tokens", "micro_batch", "repeats", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.samples < 2:
        p.error("--samples must be >= 2: GRPO compares responses within a group")
    rows = args.prompts * args.samples
    args.micro_batch = min(args.micro_batch, rows)  # the micro-batch actually used
    if rows % args.micro_batch:
        p.error(f"--micro-batch must divide prompts × samples = {rows} (TRL accumulates evenly)")
    if args.skip_trl and args.skip_minimalrl:
        p.error("--skip-trl and --skip-minimalrl together leave nothing to run")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker = trl_worker if args.worker == "trl" else minimalrl_worker
        result = worker(args)
        result["peak_rss_mib"] = peak_rss_mib()
        args.worker_output.write_text(json.dumps(result, indent=1, default=str))
        return
    if args.report:  # re-summarise stored runs (e.g. after adding a column)
        result = json.loads(args.report.read_text())
        ceilings = ceilings_of(result)
        ceiling = ceilings[result["settings"].get("precision", "fp32")]
        result["summary"] = {
            fw: summarize(r, ceiling, ceilings["fp32"]) for fw, r in result["runs"].items()
        }
        result["report"] = format_report(result).splitlines()
        args.report.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print("\n".join(result["report"]))
        return
    if not args.skip_trl:
        check_trl_installed()
    result = run_benchmark(args)
    report = format_report(result)
    print("\n" + report)
    result["report"] = report.splitlines()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
