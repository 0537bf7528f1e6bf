"""The report of a compare: OUTPUT/report.md, OUTPUT/summary.json and OUTPUT/figures/.

Every number comes with a 95% interval: Student's t over seeds and held-out problems, their
variances added (`minimalrl.eval.findings`); the paper's findings get an effect, an interval and a
verdict.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from minimalrl.eval.compare import RERUN, RunSpec
from minimalrl.eval.evaluate import pass_ks
from minimalrl.eval.findings import (
    FINDINGS,
    Finding,
    FindingResult,
    effect_interval,
    group_regime,
    mean_interval,
    measure_finding,
)
from minimalrl.eval.heldout import pass_at_k_table
from minimalrl.eval.metrics import read_metrics
from minimalrl.eval.plots import plot_bands, plot_histogram
from minimalrl.output import write_text_atomic
from minimalrl.train.config import TrainConfig

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
    "drop_vs_zero": (
        "reinforce_rej",
        "reinforce_rej:filtered=drop",
        "reinforce_drop_all_wrong",
        "reinforce_drop_all_wrong:filtered=drop",
    ),
}


class Runs:
    """The finished runs of a compare, by run name and seed, with their per-problem scores."""

    def __init__(self, output: Path, results: list[dict], initial: dict):
        self.output = output
        self.initial = initial
        self.n = int(initial["n"])
        self.by_name: dict[str, dict[int, dict]] = {}
        self._metrics: dict[tuple[str, int], list[dict]] = {}
        for r in results:
            self.by_name.setdefault(r["run"], {})[int(r["seed"])] = r

    def seeds(self, *names: str) -> list[int]:
        """The seeds every one of `names` has finished (all seeds of "initial")."""
        sets = [set(self.by_name.get(n, {})) for n in names if n != "initial"]
        return sorted(set.intersection(*sets)) if sets else []

    def table(self, name: str, seeds: list[int], score: str = "avg") -> np.ndarray:
        """(seeds, problems) per-problem scores after training ("initial": before, repeated):
        score = avg (avg@n), pass@K, or greedy."""
        rows = [
            self.initial if name == "initial" else self.by_name[name][s]["after"] for s in seeds
        ]
        if score == "greedy":
            return np.array([r["greedy_correct"] for r in rows], dtype=np.float64)
        counts = np.array([r["correct_counts"] for r in rows], dtype=np.float64)
        if score == "avg":
            return counts / self.n
        return pass_at_k_table(counts, self.n, int(score.removeprefix("pass@")))

    def has_greedy(self, names: tuple[str, ...], seeds: list[int]) -> bool:
        """Whether every one of `names` ("initial" too) was scored greedily at every seed."""
        return all(
            "greedy_correct" in (self.initial if n == "initial" else self.by_name[n][s]["after"])
            for n in names
            for s in seeds
        )

    def metrics(self, name: str, seed: int) -> list[dict]:
        """A run's metrics.jsonl records, read once."""
        if (name, seed) not in self._metrics:
            path = self.output / "runs" / RunSpec.parse(name).dir_name(seed)
            self._metrics[name, seed] = read_metrics(path)
        return self._metrics[name, seed]

    def curve_value(self, name: str, seed: int, key: str, part: str) -> float:
        """Mean of a metric over the first ("early") or last ("late") quarter of iterations."""
        records = [r for r in self.metrics(name, seed) if r.get(key) is not None]
        q = max(1, len(records) // 4)
        chosen = records[:q] if part == "early" else records[-q:]
        return float(np.mean([r[key] for r in chosen]))

    def measure(self, finding: Finding) -> FindingResult | None:
        """A finding's effect on the seeds all its runs share; None when a run is missing."""
        names = [finding.a, finding.b] + ([finding.base] if finding.base else [])
        if any(n != "initial" and n not in self.by_name for n in names):
            return None
        seeds = self.seeds(*names)
        if not seeds:
            return None
        if finding.measure == "after":
            scores = {n: self.table(n, seeds) for n in names}
        else:
            key, part = {"early": ("accuracy", "early"), "entropy": ("entropy", "late")}[
                finding.measure
            ]
            scores = {
                n: np.array([[self.curve_value(n, s, key, part)] for s in seeds]) for n in names
            }
        return measure_finding(finding, scores)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _ci(mean: float, ci: tuple[float, float]) -> str:
    return f"{_pct(mean)} [{_pct(ci[0])}, {_pct(ci[1])}]"


def _results_table(runs: Runs, names: list[str]) -> list[str]:
    n, ks = runs.n, pass_ks(runs.n)
    head = (
        [
            "run",
            "seeds",
            "optimizer steps",
            f"avg@{n} (T={runs.initial['temperature']})",
            "change vs initial",
        ]
        + [f"pass@{k}" for k in ks]
        + ["greedy"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    cells = ["initial model", "-", "-", _ci(*mean_interval(runs.table("initial", [0]))), "-"]
    cells += [_ci(*mean_interval(runs.table("initial", [0], f"pass@{k}"))) for k in ks]
    greedy = runs.has_greedy(("initial",), [0])
    cells += [_ci(*mean_interval(runs.table("initial", [0], "greedy"))) if greedy else "-"]
    lines.append("| " + " | ".join(cells) + " |")
    for name in names:
        seeds = runs.seeds(name)
        if not seeds:
            continue
        steps = sorted({runs.by_name[name][s]["optimizer_steps"] for s in seeds})
        after = runs.table(name, seeds)
        change = effect_interval(after, runs.table("initial", seeds))
        cells = [
            name,
            str(len(seeds)),
            "/".join(map(str, steps)),
            _ci(*mean_interval(after)),
            f"{_points(change[0])} [{_points(change[1][0])}, {_points(change[1][1])}]",
        ]
        cells += [_ci(*mean_interval(runs.table(name, seeds, f"pass@{k}"))) for k in ks]
        greedy = runs.has_greedy((name,), seeds)
        cells += [_ci(*mean_interval(runs.table(name, seeds, "greedy"))) if greedy else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _ablations(runs: Runs, names: list[str]) -> list[str]:
    """Each run with settings of its own against the same run on the shared settings (its
    ablation), paired by seed and problem: the change in avg@n, pass@n and greedy."""
    n = runs.n
    head = ["run", "against", "seeds", "optimizer steps", f"Δ avg@{n}", f"Δ pass@{n}", "Δ greedy"]
    lines = []
    for name in names:
        spec = RunSpec.parse(name)
        base = RunSpec(spec.algo, spec.control).name
        seeds = runs.seeds(name, base) if spec.settings and base in runs.by_name else []
        if not seeds:
            continue
        steps = ["/".join(str(runs.by_name[r][s]["optimizer_steps"]) for s in seeds)
                 for r in (name, base)]  # fmt: skip
        cells = [name, base, str(len(seeds)), " vs ".join(steps)]
        for score in ("avg", f"pass@{n}", "greedy"):
            if score == "greedy" and not runs.has_greedy((name, base), seeds):
                cells.append("-")
                continue
            effect, (lo, hi) = effect_interval(
                runs.table(name, seeds, score), runs.table(base, seeds, score)
            )
            cells.append(f"{_points(effect)} [{_points(lo)}, {_points(hi)}]")
        lines.append("| " + " | ".join(cells) + " |")
    if not lines:
        return []
    return [
        "## Ablations: runs with settings of their own",
        "",
        "Each against the same run on the shared settings, on the seeds both have (differences in "
        "points, 95% intervals over seeds and problems, pairs kept).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + " --- |" * len(head),
        *lines,
        "",
    ]


def _findings(runs: Runs) -> tuple[list[str], list[dict]]:
    lines = [
        "| finding (the paper) | effect measured | effect | 95% interval | verdict | seeds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = []
    for f in FINDINGS:
        res = runs.measure(f)
        what = _effect_words(f)
        if res is None:
            lines.append(f"| {f.statement} | {what} | - | - | not run | 0 |")
            continue
        lo, hi = res.ci95
        fmt = _ratio if f.base else _nats if f.measure == "entropy" else _points
        interval = f"[{fmt(lo)}, {fmt(hi)}]" if math.isfinite(lo) else _no_interval(f, res)
        lines.append(
            f"| {f.statement} | {what} | {fmt(res.effect)} | {interval} | **{res.verdict}** | "
            f"{res.seeds} |"
        )
        rows.append(
            {
                "name": f.name,
                "statement": f.statement,
                "effect": _finite(res.effect),
                "ci95": [_finite(lo), _finite(hi)],
                "verdict": res.verdict,
                "seeds": res.seeds,
                "problems": res.problems,
                "measure": f.measure,
                "a": f.a,
                "b": f.b,
                "base": f.base,
                "claim": f.claim,
                "margin": f.margin,
            }
        )
    return lines, rows


def _no_interval(f: Finding, res: FindingResult) -> str:
    if f.measure != "after" and res.seeds < 2:
        return "none (one run each)"
    return "undefined (b's gain ~ 0)"


def _ratio(v: float) -> str:
    return f"{v:+.2f}"


def _nats(v: float) -> str:
    return f"{v:+.3f}"


def _points(v: float) -> str:
    return f"{100 * v:+.1f}"


def _effect_words(f: Finding) -> str:
    unit = {
        "after": "held-out avg@n (points)",
        "early": "early training accuracy (points)",
        "entropy": "late entropy (nats)",
    }[f.measure]
    if f.base:
        return (
            f"({f.a} − {f.base}) / ({f.b} − {f.base}) on {unit.split(' (')[0]}; claim ≥ {f.margin}"
        )
    claim = {
        "greater": "> 0",
        "less": "< 0",
        "equivalent": f"within ±{100 * f.margin:.0f}",
        "at_least": f"≥ {f.margin}",
    }[f.claim]
    return f"{f.a} − {f.b}, {unit}; claim {claim}"


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _figures(runs: Runs, names: list[str], fig_dir: Path) -> list[str]:
    lines = []
    sets = {"all": tuple(names), **FIGURES}
    for set_name, members in sets.items():
        groups = {
            n: [runs.metrics(n, s) for s in runs.seeds(n)]
            for n in names
            if n in members and runs.seeds(n)
        }
        if len(groups) < 2 and set_name != "all":
            continue
        lines.append(f"\n### Curves: {set_name} (mean over seeds; band: lowest to highest seed)\n")
        for key, label in CURVES:
            path = plot_bands(
                groups, key, label, fig_dir / f"{set_name}_{key}.png", title=f"{label} — {set_name}"
            )
            if path is not None:
                lines.append(f"![{set_name} {key}](figures/{path.name})")
    return lines


def _regime(runs: Runs, fig_dir: Path) -> list[str]:
    counts = runs.initial.get("train_temperature_counts")
    if counts is None:
        return []
    n, t = runs.n, runs.initial["train_temperature"]
    fr = group_regime(np.array(counts), n)
    title = f"initial model, {len(counts)} held-out problems, {n} samples at T={t}"
    plot_histogram(counts, n, fig_dir / "initial_regime.png", title)
    ok = all(v >= 0.15 for v in fr.values())
    return [
        f"The initial model at the training temperature {t}, {n} samples on each of the "
        f"{len(counts)} held-out problems: all correct {_pct(fr['all_correct'])}%, all wrong "
        f"{_pct(fr['all_wrong'])}%, mixed {_pct(fr['mixed'])}% "
        f"({'each ≥ 15%: the paper' if ok else 'not the paper'}'s regime). Mean accuracy "
        f"{_pct(runs.initial['train_temperature_avg'])}%: the random-reward control's coin.",
        "",
        "![regime](figures/initial_regime.png)",
    ]


def _budget(results: list[dict]) -> str:
    """Whether the runs took equal optimizer steps: those on the shared settings, then those
    with settings of their own (an ablation such as `filtered=drop` may take fewer)."""

    def steps(rs: list[dict]) -> str:
        counts = sorted({r["optimizer_steps"] for r in rs})
        equal = "all equal, " if len(counts) == 1 else "NOT equal: "
        return equal + "/".join(map(str, counts))

    shared = [r for r in results if not r.get("settings")]
    own = [r for r in results if r.get("settings")]
    line = f"Budget: optimizer steps per run {steps(shared) if shared else '-'}"
    if own:
        line += f"; runs with settings of their own {steps(own)}"
    return line + (
        " (filtered = zero: a filtered response stays in the batch with advantage 0, so every "
        "iteration takes its steps; drop: an iteration whose prompts are all filtered takes none)."
    )


def write_report(
    output: Path,
    base: TrainConfig,
    specs: list,
    seeds: list[int],
    initial: dict,
    results: list[dict],
    rerun: str = RERUN,
) -> Path:
    """OUTPUT/report.md, summary.json and figures/ from the finished runs; `rerun` is the command
    that reruns one of them (RUN, SEED, NEW_DIR to fill in)."""
    runs = Runs(output, results, initial)
    names = [s.name for s in specs]
    fig_dir = output / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    finding_lines, finding_rows = _findings(runs)
    settings = initial["settings"]
    lines = [
        "# minimalrl compare",
        "",
        f"Initial model `{initial['model']}` (weights sha256 {initial['model_sha256'][:12]}), "
        f"training data `{base.train_data}`, seeds {seeds}; every run: {base.iterations} "
        f"iterations × {base.prompts_per_iteration} prompts × {base.samples_per_prompt} samples "
        f"at T={base.temperature}, ≤ {base.max_new_tokens} new tokens, lr {base.lr}, minibatch "
        f"{base.minibatch_size}, filtered responses: {base.filtered}.",
        _budget(results),
        f"Held-out: {initial['problems']} problems of `{settings['data']}`, {runs.n} samples each "
        f"at T={settings['temperature']} (avg@{runs.n}, unbiased pass@k)"
        + (", and greedy" if settings["greedy"] else "")
        + ". Intervals: 95%, Student's t with the variances over seeds and over problems added "
        "(Welch-Satterthwaite degrees of freedom; pairs kept; Fieller's for a ratio); one number "
        "per run (early accuracy, entropy): t over seeds.",
        _costs(runs, results, rerun),
        "",
        "## Regime",
        "",
        *_regime(runs, fig_dir),
        "",
        "## Results",
        "",
        *_results_table(runs, names),
        "",
        *_ablations(runs, names),
        "## The paper's findings at this scale",
        "",
        "A verdict reads the interval only. With one seed an interval covers the held-out "
        "problems (evaluation noise), not the spread between training runs, and a finding "
        "measured by one number per run (early accuracy, entropy) has no interval at all: "
        "verdicts on one seed are provisional. With few seeds a per-run finding's t interval "
        "is wide (its 95% quantile is 12.7 standard errors at 2 seeds, 4.3 at 3).",
        "",
        *finding_lines,
        "",
        "## Curves",
        *_figures(runs, names, fig_dir),
        "",
    ]
    path = output / "report.md"
    write_text_atomic(path, "\n".join(lines))
    write_text_atomic(
        output / "summary.json", json.dumps(_summary(runs, results, finding_rows), indent=1) + "\n"
    )
    return path


def _costs(runs: Runs, results: list[dict], rerun: str) -> str:
    """What training and scoring cost per run (evaluation should not cost more than training)."""
    if not results:
        return "No run has finished yet."
    train_s = [
        sum(m.get("rollout_seconds", 0) + m.get("update_seconds", 0)
            for m in runs.metrics(r["run"], r["seed"]))
        for r in results
    ]  # fmt: skip
    eval_s = [r["after"]["seconds"] for r in results]
    return (
        f"Cost per run (mean of {len(results)}): training {np.mean(train_s) / 60:.1f} min, "
        f"held-out scoring {np.mean(eval_s) / 60:.1f} min; the initial model was scored once "
        f"({runs.initial['seconds'] / 60:.1f} min). Rerun one run from nothing: `{rerun}` (a "
        "copy of initial_eval.json in NEW_DIR saves scoring the initial model again; its weights' "
        "sha256 is still checked); the same seed gives the same numbers on the same machine "
        "(deterministic kernels)."
    )


def _summary(runs: Runs, results: list[dict], findings: list[dict]) -> dict:
    init = runs.initial
    return {
        "eval": {
            "problems": init["problems"],
            "k": runs.n,
            "temperature": init["temperature"],
            "data": init["settings"]["data"],
        },
        "initial": {
            "model": init["model"],
            "model_sha256": init["model_sha256"],
            "avg_at_k": init["avg_at_n"],
            "pass_at_k": init["pass_at_k"],
            "greedy": init.get("greedy"),
            "train_temperature_avg": init.get("train_temperature_avg"),
        },
        "runs": [
            {
                "run": r["run"],
                "algo": r["algo"],
                "seed": r["seed"],
                "iterations": r["iterations"],
                "optimizer_steps": r["optimizer_steps"],
                "control": r["control"],
                "settings": r.get("settings") or {},
                "avg_at_k": {"before": init["avg_at_n"], "after": r["after"]["avg_at_n"]},
                "pass_at_k": {"before": init["pass_at_k"], "after": r["after"]["pass_at_k"]},
                "greedy": {"before": init.get("greedy"), "after": r["after"].get("greedy")},
            }
            for r in results
        ],
        "findings": findings,
    }
