"""The paper's curves from metrics.jsonl files: one PNG per measurement, one line per run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no screen needed
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minimalrl.eval.metrics import read_metrics

# (metric key, axis label, file stem): the curves PAPER.md lists under "What the paper measures".
CURVES = (
    ("eval_accuracy", "held-out accuracy (greedy)", "eval_accuracy"),
    ("accuracy", "training accuracy (rollouts)", "accuracy"),
    ("reward_mean", "mean training reward", "reward"),
    ("entropy", "policy entropy (nats/token)", "entropy"),
    ("kl_to_init", "KL to the initial model (k3, per token)", "kl_to_init"),
    ("response_length", "response length (tokens)", "response_length"),
    ("prompts_kept", "fraction of prompts kept", "prompts_kept"),
)


def series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(iterations, values) of one metric, skipping records where it is absent or null."""
    pts = [(r["iteration"], r[key]) for r in records if r.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def label_of(run: Path) -> str:
    return run.name


def plot_metric(
    runs: dict[str, list[dict]], key: str, ylabel: str, path: Path, title: str | None = None
) -> Path | None:
    """One PNG of `key` against iteration for every run that has it; None if none has."""
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for label, records in runs.items():
        xs, ys = series(records, key)
        if xs:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=label)
            drawn = True
    return _finish(fig, ax, drawn, ylabel, path, title or ylabel, legend_size=8)


def _finish(
    fig: Figure, ax: Axes, drawn: bool, ylabel: str, path: Path, title: str, legend_size: int
) -> Path | None:
    """Label, save and close an iteration plot; None (nothing saved) when nothing was drawn."""
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_runs(run_dirs: list[Path], output: Path, *, prefix: str = "") -> list[Path]:
    """Every curve of CURVES for the given runs, as OUTPUT/{prefix}{stem}.png."""
    output.mkdir(parents=True, exist_ok=True)
    runs = {label_of(d): read_metrics(d) for d in run_dirs}
    written = []
    for key, ylabel, stem in CURVES:
        path = plot_metric(runs, key, ylabel, output / f"{prefix}{stem}.png")
        if path is not None:
            written.append(path)
    return written


def plot_bands(
    groups: dict[str, list[list[dict]]], key: str, ylabel: str, path: Path, title: str | None = None
) -> Path | None:
    """One PNG of `key` against iteration: per group (a run's seeds) the mean over its seeds as a
    line and the lowest to highest seed as a band; None if no run has the metric."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    drawn = False
    for label, seeds in groups.items():
        by_iter: dict[int, list[float]] = {}
        for records in seeds:
            for x, y in zip(*series(records, key)):
                by_iter.setdefault(x, []).append(y)
        if not by_iter:
            continue
        xs = sorted(by_iter)
        mean = [sum(by_iter[x]) / len(by_iter[x]) for x in xs]
        (line,) = ax.plot(xs, mean, label=f"{label} ({len(seeds)} seed{'s' * (len(seeds) > 1)})")
        if len(seeds) > 1:
            lo = [min(by_iter[x]) for x in xs]
            hi = [max(by_iter[x]) for x in xs]
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        drawn = True
    return _finish(fig, ax, drawn, ylabel, path, title or ylabel, legend_size=7)


def plot_histogram(counts: list[int], n: int, path: Path, title: str) -> Path:
    """Bar chart of how many problems have 0..n correct samples out of n."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = [sum(1 for c in counts if c == j) / max(1, len(counts)) for j in range(n + 1)]
    ax.bar([f"{j}/{n}" for j in range(n + 1)], bins, color="tab:blue")
    ax.set_xlabel("correct samples of a problem")
    ax.set_ylabel("fraction of problems")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class ScoreCurve:
    """One run's held-out score against optimizer steps: each seed's, and pooled with its 95%
    interval."""

    label: str
    seeds: dict[int, tuple[list[float], list[float]]]
    """seed -> (optimizer steps, scores)."""
    steps: list[float]
    mean: list[float]
    lo: list[float]
    hi: list[float]


def plot_score_curves(panels: list[tuple[str, list[ScoreCurve]]], path: Path, title: str) -> Path:
    """Side-by-side panels (one per score: ylabel, curves) of held-out scores against optimizer
    steps: a thin line per seed, a thick line for the pooled mean with its interval as a band."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (ylabel, curves) in zip(axes[0], panels, strict=True):
        for i, curve in enumerate(curves):
            color = f"C{i}"
            for xs, ys in curve.seeds.values():
                ax.plot(xs, ys, color=color, linewidth=0.8, alpha=0.45)
            seeds = len(curve.seeds)
            ax.plot(curve.steps, curve.mean, color=color, linewidth=2.4, marker="o", ms=4,
                    label=f"{curve.label} ({seeds} seed{'s' * (seeds != 1)})")  # fmt: skip
            ax.fill_between(curve.steps, curve.lo, curve.hi, color=color, alpha=0.15, linewidth=0)
        ax.set_xlabel("optimizer steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
