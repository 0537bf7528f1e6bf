"""`minimalrl compare`: several algorithms on the same model, prompts, seeds and budget.

Each (algorithm, seed) trains in DIR/runs/{algo}_seed{seed}; a finished run leaves `final_eval.json`
and is skipped when the command is run again, an unfinished one resumes from its checkpoint. The
report (DIR/report.md) has the accuracy table and the paper's figures (1-4) as PNG files.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from minimalrl.eval.metrics import read_metrics
from minimalrl.eval.plots import plot_metric
from minimalrl.train.config import TrainConfig
from minimalrl.train.config_file import build_config, parse_assignments

# The paper's ablation sets: which runs go on which figure.
FIGURES = {
    "main": ("raft", "raft++", "reinforce", "reinforce_rej", "grpo", "ppo", "iterative_dpo"),
    "ablation_filter": (
        "reinforce",
        "reinforce_drop_all_wrong",
        "reinforce_drop_all_correct",
        "reinforce_rej",
        "reinforce_rej_std",
        "grpo",
    ),
    "ablation_clip": ("raft", "raft++", "raft++_no_clip"),
}
CURVES = (
    ("eval_accuracy", "held-out accuracy (greedy)"),
    ("reward_mean", "mean training reward"),
    ("entropy", "policy entropy (nats/token)"),
    ("kl_to_init", "KL to the initial model"),
    ("response_length", "response length (tokens)"),
    ("prompts_kept", "fraction of prompts kept"),
)


@dataclass(frozen=True)
class FinalEval:
    """How accuracy before/after is measured: avg@k at temperature 1.0, as in the paper."""

    benchmarks: tuple[str, ...]
    k: int = 4
    temperature: float = 1.0
    limit: int | None = None
    max_new_tokens: int = 0  # 0 = the training config's max_new_tokens


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="run several algorithms side by side and write a report")
    p.add_argument("--algos", required=True, help="comma-separated algorithm names")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--config", help="YAML of TrainConfig fields shared by every run")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--eval-benchmarks",
        default="",
        help="';'-separated held-out sets for before/after (default: the eval_data)",
    )
    p.add_argument("--eval-k", type=int, default=4, help="samples per problem for avg@k")
    p.add_argument("--eval-limit", type=int, default=None, help="first N problems of each set")
    p.add_argument("--eval-max-new-tokens", type=int, default=0)
    p.add_argument("--output", required=True)
    p.add_argument("--no-progress", action="store_true")


def cmd_compare(args: argparse.Namespace) -> int:
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    base = build_config(args.config, parse_assignments(args.set))
    benches = tuple(b for b in args.eval_benchmarks.split(";") if b) or (base.eval_data,)
    final = FinalEval(
        benches, k=args.eval_k, limit=args.eval_limit, max_new_tokens=args.eval_max_new_tokens
    )
    report = compare(base, algos, seeds, final, Path(args.output), progress=not args.no_progress)
    print(f"report: {report}")
    return 0


def _evaluate_model(model_path: str, cfg: TrainConfig, final: FinalEval) -> dict[str, float]:
    """avg@k of a saved model on each held-out benchmark."""
    from minimalrl.data import load_problems
    from minimalrl.eval.evaluate import EvalSettings, evaluate
    from minimalrl.policy.models import load_policy

    model, tokenizer = load_policy(model_path)
    model.eval()
    settings = EvalSettings.from_config(
        cfg,
        k=final.k,
        temperature=final.temperature,
        max_new_tokens=final.max_new_tokens or cfg.max_new_tokens,
    )
    out = {}
    for bench in final.benchmarks:
        problems = load_problems(bench, limit=final.limit)
        summary = evaluate(model, tokenizer, problems, settings, progress=False).summary
        out[bench] = summary["accuracy"]
    return out


def _run_one(cfg: TrainConfig, run_dir: Path, final: FinalEval, progress: bool) -> dict:
    from minimalrl.train.checkpoint import latest_checkpoint
    from minimalrl.train.trainer import train

    done = run_dir / "final_eval.json"
    if done.is_file():
        return json.loads(done.read_text())
    train(cfg, run_dir, resume="auto", progress=progress)
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None or ckpt.name != f"iter_{cfg.iterations:06d}":
        # Stopped early (Ctrl-C saves and returns): leave the run unfinished, to resume later.
        raise KeyboardInterrupt(f"{run_dir} stopped before iteration {cfg.iterations}")
    result = {
        "algo": cfg.algo,
        "seed": cfg.seed,
        "after": _evaluate_model(str(ckpt / "policy"), cfg, final),
    }
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


def compare(
    base: TrainConfig,
    algos: list[str],
    seeds: list[int],
    final: FinalEval,
    output: Path,
    *,
    progress: bool = True,
) -> Path:
    """Train every (algo, seed), evaluate before/after, and write output/report.md."""
    for algo in algos:  # fail fast on a bad name or group size, before hours of training
        base.replace(algo=algo)
    output.mkdir(parents=True, exist_ok=True)
    before = {}
    for seed in seeds:
        path = output / f"initial_eval_seed{seed}.json"
        if not path.is_file():
            path.write_text(json.dumps(_evaluate_model(base.model, base.replace(seed=seed), final)))
        before[seed] = json.loads(path.read_text())
    results = []
    for seed in seeds:
        for algo in algos:
            run_dir = output / "runs" / f"{algo}_seed{seed}"
            results.append(_run_one(base.replace(algo=algo, seed=seed), run_dir, final, progress))
    return write_report(output, base, algos, seeds, final, before, results)


def _mean_spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def _table(
    algos: list[str], seeds: list[int], final: FinalEval, before: dict, results: list[dict]
) -> list[str]:
    k = final.k
    head = "| algorithm | " + " | ".join(f"{b} avg@{k}" for b in final.benchmarks) + " |"
    lines = [head, "|" + " --- |" * (len(final.benchmarks) + 1)]
    cells = [_mean_spread([before[s][b] for s in seeds]) for b in final.benchmarks]
    lines.append("| initial model | " + " | ".join(cells) + " |")
    for algo in algos:
        rows = [r for r in results if r["algo"] == algo]
        cells = [_mean_spread([r["after"][b] for r in rows]) for b in final.benchmarks]
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    return lines


def _figures(output: Path, algos: list[str], seeds: list[int]) -> list[str]:
    """PNG files of each figure set present in `algos`; returns markdown lines embedding them."""
    fig_dir = output / "figures"
    fig_dir.mkdir(exist_ok=True)
    lines = []
    sets = {
        "all": tuple(algos),
        **{k: v for k, v in FIGURES.items() if len(set(v) & set(algos)) > 1},
    }
    for name, members in sets.items():
        runs = {
            f"{a} (seed {s})" if len(seeds) > 1 else a: read_metrics(
                output / "runs" / f"{a}_seed{s}"
            )
            for a in algos
            if a in members
            for s in seeds
        }
        lines.append(f"\n### Figures: {name}\n")
        for key, label in CURVES:
            path = plot_metric(
                runs, key, label, fig_dir / f"{name}_{key}.png", title=f"{label} — {name}"
            )
            if path is not None:
                lines.append(f"![{name} {key}](figures/{path.name})")
    return lines


def write_report(
    output: Path,
    base: TrainConfig,
    algos: list[str],
    seeds: list[int],
    final: FinalEval,
    before: dict,
    results: list[dict],
) -> Path:
    """output/report.md: settings, the accuracy table and the figures."""
    lines = [
        "# minimalrl compare",
        "",
        f"Model `{base.model}`, training data `{base.train_data}`, seeds {seeds}; every run: "
        f"{base.iterations} iterations × {base.prompts_per_iteration} prompts × "
        f"{base.samples_per_prompt} samples, ≤ {base.max_new_tokens} new tokens, lr {base.lr}, "
        f"rewards {base.correct_reward}/{base.wrong_reward}.",
        f"Accuracy before/after: avg@{final.k} at temperature {final.temperature}"
        + (f" on the first {final.limit} problems" if final.limit else "")
        + " (mean ± std over seeds where there are several).",
        "",
        *_table(algos, seeds, final, before, results),
        *_figures(output, algos, seeds),
        "",
    ]
    path = output / "report.md"
    path.write_text("\n".join(lines))
    (output / "results.json").write_text(
        json.dumps({"before": before, "after": results}, indent=2) + "\n"
    )
    return path
