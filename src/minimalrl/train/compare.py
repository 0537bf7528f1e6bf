"""`minimalrl compare`: several algorithms on the same model, prompts, seeds and budget.

OUTPUT holds:
  initial_eval.json          the initial model's held-out scores, computed once and reused (with
                             its weights' fingerprint: a compare from another model is refused)
  runs/{run}_seed{s}/        one training run each: metrics.jsonl, tensorboard/, final_eval.json
                             (and curve_eval.json with --score-every: `minimalrl.eval.curve`)
  report.md, summary.json, figures/   (`minimalrl.eval.report`)

A run is an algorithm name, then optionally `:random_reward` (the control: the same algorithm
trained on a coin with the initial model's accuracy as its mean, `reward: random`) and `:KEY=VALUE`
settings of its own (an ablation inside the grid: `reinforce_rej:filtered=drop`). A finished run
(final_eval.json) is skipped; an unfinished one resumes from its checkpoint, so the command can be
killed and rerun. Runs go seed by seed (every run of seed 0 first), so a grid stopped midway has
every algorithm at the first seeds. `--report-only` rewrites the report from the finished runs.
A longer run is a setting too: `grpo:iterations=120 --score-every 30` trains 120 iterations whose
first 30 are the 30-iteration run's (nothing else depends on `iterations` under a constant lr
schedule) and scores the held-out set at iterations 30, 60, 90 and 120.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from minimalrl.config import ConfigError, TrainConfig
from minimalrl.config_file import build_config, parse_assignments
from minimalrl.eval.curve import check_score_every, score_curve
from minimalrl.eval.heldout import HeldOut, score_model
from minimalrl.eval.metrics import read_metrics
from minimalrl.eval.provenance import (
    machine_record,
    model_fingerprint,
    sketch_distance,
    weights_sketch,
)
from minimalrl.eval.runspec import RunSpec
from minimalrl.output import write_text_atomic

# What the report names as the rerun command when the compare was not started from the CLI.
RERUN = "minimalrl compare --config CONFIG --algos RUN --seeds SEED --eval-n N --output NEW_DIR"


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="run several algorithms side by side and write a report")
    p.add_argument(
        "--algos",
        required=True,
        help="comma-separated runs: ALGO, ALGO:random_reward (the control), ALGO:KEY=VALUE "
        "(a setting of that run's own)",
    )
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--config", help="YAML of TrainConfig fields shared by every run")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--eval-data", "--eval-benchmarks", default="",
                   help="held-out problems (default: eval_data)")  # fmt: skip
    p.add_argument("--eval-n", "--eval-k", type=int, default=4,
                   help="samples per problem (avg@n, pass@k)")  # fmt: skip
    p.add_argument("--eval-temperature", type=float, default=1.0)
    p.add_argument("--eval-limit", type=int, default=None, help="first N held-out problems")
    p.add_argument("--eval-max-new-tokens", type=int, default=0)
    p.add_argument("--no-greedy", action="store_true", help="skip the greedy score")
    p.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep a finished run's checkpoints (default: deleted once scored)",
    )
    p.add_argument(
        "--score-every",
        type=int,
        default=0,
        metavar="K",
        help="also score the held-out set at every K iterations, from checkpoints kept for it, "
        "into RUN/curve_eval.json (a multiple of save_every; 0: the final score only)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="write the report from the finished runs; train nothing",
    )
    p.add_argument("--output", required=True)
    p.add_argument("--no-progress", action="store_true")


def cmd_compare(args: argparse.Namespace) -> int:
    specs = [RunSpec.parse(a) for a in args.algos.split(",") if a.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    base = build_config(args.config, parse_assignments(args.set))
    if ";" in args.eval_data:
        raise ConfigError(f"--eval-data: one held-out set per compare, got {args.eval_data!r}")
    heldout = HeldOut(
        args.eval_data or base.eval_data,
        n=args.eval_n,
        temperature=args.eval_temperature,
        limit=args.eval_limit,
        max_new_tokens=args.eval_max_new_tokens,
        greedy=not args.no_greedy,
    )
    report = compare(
        base,
        specs,
        seeds,
        heldout,
        Path(args.output),
        progress=not args.no_progress,
        keep_checkpoints=args.keep_checkpoints,
        report_only=args.report_only,
        rerun=rerun_command(args),
        score_every=args.score_every,
    )
    print(f"report: {report}")
    return 0


def rerun_command(args: argparse.Namespace) -> str:
    """This compare's command for one (RUN, SEED) into a NEW_DIR: the same config, settings and
    held-out flags, so the run it makes is the one in the report."""
    parts = ["minimalrl compare"] + ([f"--config {args.config}"] if args.config else [])
    parts += [f"--set {item}" for item in args.set]
    flags = (
        ("--eval-data", args.eval_data, ""),
        ("--eval-n", args.eval_n, None),
        ("--eval-temperature", args.eval_temperature, 1.0),
        ("--eval-limit", args.eval_limit, None),
        ("--eval-max-new-tokens", args.eval_max_new_tokens, 0),
    )
    parts += [f"{flag} {value}" for flag, value, default in flags if value != default]
    parts += ["--no-greedy"] if args.no_greedy else []
    return " ".join([*parts, "--algos RUN --seeds SEED --output NEW_DIR"])


REMADE = (
    " (the same path holding other weights: a model trained again differs where the machine's"
    " kernels round differently, a flipped sampled token sending the run elsewhere, so runs"
    " from it would not pool with those there; bring the model that made them, or remake it by"
    " replaying the rollouts it was trained on: rollout_replay)"
)

REMADE_TOLERANCE = 1e-5
"""How far (`sketch_distance`) a model remade elsewhere may lie from the weights that made
OUTPUT/initial_eval.json and still count as them. Replayed on the same tokens, rounding alone
parts them (the default model's warm start under other kernels: 1.8e-8); sampled again, they
part by about as much as training moved the weights (the same warm start sampled under those
kernels: 1.9e-4; training moved them by 4.9e-4 of their norm): docs/concepts/rollouts.md,
"Recorded and replayed"."""


def initial_scores(base: TrainConfig, heldout: HeldOut, output: Path) -> dict:
    """The initial model's held-out scores (at the eval temperature, and at the training
    temperature: the latter's mean is the control's coin), from OUTPUT/initial_eval.json when it
    is there and was made from the same weights (bitwise, or remade to within REMADE_TOLERANCE)
    and settings. Its `model_sha256` stays the recorded model's; each run's result names the
    weights it started from (`initial_sha256`)."""
    path = output / "initial_eval.json"
    fingerprint = model_fingerprint(base.model)
    if path.is_file():
        saved = json.loads(path.read_text())
        same = saved["model_sha256"] == fingerprint
        distance = 0.0 if same else _remade_distance(saved, base.model)
        if saved["settings"] != asdict(heldout) or distance > REMADE_TOLERANCE:
            remade = saved["settings"] == asdict(heldout) and saved["model"] == base.model
            far = f", {distance:.2g} of their norm away" if distance < float("inf") else ""
            raise ConfigError(
                f"{path}: made from model {saved['model']} (sha256 {saved['model_sha256'][:12]}) "
                f"with {saved['settings']}; this compare has {base.model} (sha256 "
                f"{fingerprint[:12]}{far}) with {asdict(heldout)}: use another --output"
                + (REMADE if remade else "")
            )
        if not same:
            print(
                f"{base.model}: sha256 {fingerprint[:12]}, not {saved['model_sha256'][:12]}, but "
                f"within {distance:.2g} of its weights (remade: rounding): its runs pool",
                file=sys.stderr,
            )
        return {**saved, "initial_sha256": fingerprint}
    scores = score_model(base.model, base, heldout)
    at_train_t = score_model(base.model, base, heldout, temperature=base.temperature, greedy=False)
    scores.update(
        model=base.model,
        model_sha256=fingerprint,
        model_sketch=weights_sketch(base.model),
        machine=machine_record(),
        train_temperature=base.temperature,
        train_temperature_counts=at_train_t["correct_counts"],
        train_temperature_avg=at_train_t["avg_at_n"],
    )
    output.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(scores) + "\n")
    return {**scores, "initial_sha256": fingerprint}


def _remade_distance(saved: dict, model: str) -> float:
    """`sketch_distance` of `model` from the recorded weights (inf: no sketch to hold it to)."""
    sketch = weights_sketch(model) if saved.get("model_sketch") else None
    return float("inf") if sketch is None else sketch_distance(saved["model_sketch"], sketch)


def run_one(
    spec: RunSpec,
    seed: int,
    base: TrainConfig,
    heldout: HeldOut,
    initial: dict,
    output: Path,
    *,
    progress: bool = True,
    keep_checkpoints: bool = False,
    score_every: int = 0,
) -> dict:
    """Train one (run, seed) to the end (resuming what is there) and score it; its result.
    `score_every` K: also score the checkpoints at multiples of K into RUN/curve_eval.json."""
    from minimalrl.policy.checkpoint import latest_checkpoint
    from minimalrl.train.trainer import train

    run_dir = output / "runs" / spec.dir_name(seed)
    done = run_dir / "final_eval.json"
    cfg = spec.config(base, seed, initial["train_temperature_avg"])
    if done.is_file():
        return _finished(done, cfg)
    check_score_every(score_every, cfg)
    # Keeping checkpoints changes nothing the run computes: `cfg` (the one recorded) leaves it out;
    # nor do the trackers' names: the run's folder, grouped by run across seeds.
    tracked = {"run_name": run_dir.name, "run_group": cfg.run_group or spec.name}
    train(cfg.replace(keep_checkpoint_every=score_every, **tracked), run_dir, resume="auto",
          progress=progress)  # fmt: skip
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None or ckpt.name != f"iter_{cfg.iterations:06d}":
        # Stopped early (Ctrl-C saves and returns): leave the run unfinished, to resume later.
        raise KeyboardInterrupt(f"{run_dir} stopped before iteration {cfg.iterations}")
    curve = score_curve(run_dir, cfg, heldout, score_every) if score_every else []
    last = [p["scores"] for p in curve if p["iteration"] == cfg.iterations]
    records = [r for r in read_metrics(run_dir) if "reward_mean" in r]
    result = {
        "run": spec.name,
        "algo": spec.algo,
        "seed": seed,
        "control": spec.control,
        "settings": dict(spec.settings),
        "iterations": len(records),
        "optimizer_steps": int(sum(r.get("update/optimizer_steps", 0) for r in records)),
        "config": cfg.to_dict(),
        "initial_sha256": initial["initial_sha256"],
        "after": last[0] if last else score_model(str(ckpt / "policy"), cfg, heldout),
        **({"score_every": score_every} if score_every else {}),
    }
    write_text_atomic(done, json.dumps(result) + "\n")
    if not keep_checkpoints:  # 1-2 GB each; the scores and curves are what the report needs
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return result


def _finished(done: Path, cfg: TrainConfig) -> dict:
    """A finished run's result, refused when it was made with another config than `cfg`."""
    result = json.loads(done.read_text())
    now = json.loads(json.dumps(cfg.to_dict()))  # tuples as the saved JSON has them
    changed = sorted(k for k, v in now.items() if result["config"].get(k, v) != v)
    if changed:
        raise ConfigError(
            f"{done}: this run finished with another config ("
            + ", ".join(f"{k}: {result['config'][k]!r} there, {now[k]!r} here" for k in changed)
            + "): use another --output, or delete the run to redo it"
        )
    return result


def compare(
    base: TrainConfig,
    specs: list[RunSpec],
    seeds: list[int],
    heldout: HeldOut,
    output: Path,
    *,
    progress: bool = True,
    keep_checkpoints: bool = False,
    report_only: bool = False,
    rerun: str = RERUN,
    score_every: int = 0,
) -> Path:
    """Train and score every (run, seed), seed by seed, and write OUTPUT/report.md (`rerun`: the
    command that reruns one of them, for the report; `score_every`: see `run_one`)."""
    from minimalrl.eval.report import write_report

    for spec in specs:  # fail fast on a bad name, group size or scoring interval
        check_score_every(score_every, spec.config(base, seeds[0] if seeds else 0, 0.5))
    if not seeds:
        raise ConfigError("--seeds: at least one seed")
    if report_only:
        initial = json.loads((output / "initial_eval.json").read_text())
    else:
        initial = initial_scores(base, heldout, output)
    results = []
    for seed in seeds:
        for spec in specs:
            done = output / "runs" / spec.dir_name(seed) / "final_eval.json"
            if report_only:
                if done.is_file():
                    results.append(json.loads(done.read_text()))
                continue
            results.append(
                run_one(
                    spec,
                    seed,
                    base,
                    heldout,
                    initial,
                    output,
                    progress=progress,
                    keep_checkpoints=keep_checkpoints,
                    score_every=score_every,
                )
            )
    return write_report(output, base, [s.name for s in specs], seeds, initial, results, rerun)
