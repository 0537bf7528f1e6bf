"""The report's figures: training curves per figure set, the initial model's regime, and held-out
scores along training (the long arm)."""

from __future__ import annotations

from pathlib import Path

from minimalrl.eval.plots import ScoreCurve, plot_bands, plot_histogram, plot_score_curves
from minimalrl.eval.report.runs import LONG_ARM, Runs, pooled_curve
from minimalrl.eval.runspec import RunSpec

CURVES = (
    ("accuracy", "training accuracy (rollouts)"),
    ("reward_mean", "mean training reward"),
    ("entropy", "policy entropy (nats/token)"),
    ("kl_to_init", "KL to the initial model"),
    ("response_length", "response length (tokens)"),
    ("prompts_kept", "fraction of prompts kept"),
)
# The paper's figure sets: which runs go on which figure.
FIGURES = {
    "main": (
        "raft",
        "raft++",
        "reinforce",
        "reinforce_rej",
        "grpo",
        "ppo",
        "iterative_dpo",
        "iterative_dpo:filtered=drop",  # DPO's pairs cannot be zeroed: in a zero grid, dropped
    ),
    "filters": (
        "reinforce",
        "reinforce_drop_all_wrong",
        "reinforce_rej",
        "reinforce_rej_std",
        "grpo",
    ),
    "clip": ("raft", "raft++", "raft++_no_clip"),
    "control": ("grpo", "grpo:random_reward"),
    "long_arm": (LONG_ARM.a, LONG_ARM.b),
    "drop_vs_zero": (
        "reinforce_rej",
        "reinforce_rej:filtered=drop",
        "reinforce_drop_all_wrong",
        "reinforce_drop_all_wrong:filtered=drop",
    ),
}


def curve_figures(runs: Runs, names: list[str], fig_dir: Path) -> list[str]:
    lines = []
    # "all": the runs of the shared length; a longer one (the long arm) would squeeze them into
    # the first part of the x axis, and has its own set
    shared = tuple(n for n in names if "iterations" not in dict(RunSpec.parse(n).settings))
    sets = {"all": shared, **FIGURES}
    for set_name, members in sets.items():
        groups = {
            n: [runs.metrics(n, s) for s in runs.seeds(n)]
            for n in names
            if n in members and runs.seeds(n)
        }
        if not groups or (len(groups) < 2 and set_name != "all"):
            continue
        lines.append(f"\n### Curves: {set_name} (mean over seeds; band: lowest to highest seed)\n")
        for key, label in CURVES:
            path = plot_bands(
                groups, key, label, fig_dir / f"{set_name}_{key}.png", title=f"{label} — {set_name}"
            )
            if path is not None:
                lines.append(f"![{set_name} {key}](figures/{path.name})")
    return lines


def regime_histogram(runs: Runs, fig_dir: Path) -> Path | None:
    """The initial model's correct counts at the training temperature, as a histogram."""
    counts = runs.initial.get("train_temperature_counts")
    if counts is None:
        return None
    n, t = runs.n, runs.initial["train_temperature"]
    title = f"initial model, {len(counts)} held-out problems, {n} samples at T={t}"
    return plot_histogram(counts, n, fig_dir / "initial_regime.png", title)


def heldout_curve_figure(
    runs: Runs, names: list[str], seeds: list[int], fig_dir: Path
) -> Path | None:
    """Held-out avg@n and greedy against optimizer steps for every run scored along training
    (`--score-every`): thin lines per seed, thick the pooled mean with its 95% interval; None
    when no run was."""
    panels = []
    for score, label in (("avg", f"held-out avg@{runs.n}"), ("greedy", "held-out greedy")):
        curves = []
        for name in names:
            points = pooled_curve(runs, name, seeds, score)
            if not points:
                continue
            per_seed = {  # points[0] (the initial model) lists every seed scored along
                s: ([p.optimizer_steps for p in points if s in p.seeds],
                    [p.per_seed[p.seeds.index(s)] for p in points if s in p.seeds])
                for s in points[0].seeds
            }  # fmt: skip
            curves.append(ScoreCurve(
                name, per_seed, [p.optimizer_steps for p in points], [p.mean for p in points],
                [p.ci95[0] for p in points], [p.ci95[1] for p in points],
            ))  # fmt: skip
        if curves:
            panels.append((label, curves))
    if not panels:
        return None
    title = "held-out score along training (thin: each seed; thick: pooled, band: 95% interval)"
    return plot_score_curves(panels, fig_dir / "heldout_along_training.png", title)
