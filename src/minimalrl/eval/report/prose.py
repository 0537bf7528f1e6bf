"""The report's prose: what was run and how it is measured, the regime, the budget, the costs,
and how far the long arm has got."""

from __future__ import annotations

import numpy as np

from minimalrl.config import TrainConfig
from minimalrl.eval.findings import Finding, group_regime
from minimalrl.eval.report.runs import Runs, same_start, shorter_run
from minimalrl.eval.report.tables import pct


def header(
    runs: Runs, base: TrainConfig, seeds: list[int], results: list[dict], rerun: str
) -> list[str]:
    """The report's title and the paragraph of what was run, scored and measured how."""
    initial, settings = runs.initial, runs.initial["settings"]
    return [
        "# minimalrl compare",
        "",
        f"Initial model `{initial['model']}` (weights sha256 {initial['model_sha256'][:12]}), "
        f"training data `{base.train_data}`, seeds {seeds}; every run: {base.iterations} "
        f"iterations × {base.prompts_per_iteration} prompts × {base.samples_per_prompt} samples "
        f"at T={base.temperature}, ≤ {base.max_new_tokens} new tokens, lr {base.lr}, minibatch "
        f"{base.minibatch_size}, filtered responses: {base.filtered}.",
        budget(results),
        f"Held-out: {initial['problems']} problems of `{settings['data']}`, {runs.n} samples each "
        f"at T={settings['temperature']} (avg@{runs.n}, unbiased pass@k)"
        + (", and greedy" if settings["greedy"] else "")
        + ". Intervals: 95%, Student's t with the variances over seeds and over problems added "
        "(Welch-Satterthwaite degrees of freedom; pairs kept; Fieller's for a ratio); one number "
        "per run (early accuracy, entropy): t over seeds.",
        costs(runs, results, rerun),
    ]


def regime(runs: Runs) -> list[str]:
    """The initial model's all-correct / all-wrong / mixed fractions at the training temperature."""
    counts = runs.initial.get("train_temperature_counts")
    if counts is None:
        return []
    n, t = runs.n, runs.initial["train_temperature"]
    fr = group_regime(np.array(counts), n)
    ok = all(v >= 0.15 for v in fr.values())
    return [
        f"The initial model at the training temperature {t}, {n} samples on each of the "
        f"{len(counts)} held-out problems: all correct {pct(fr['all_correct'])}%, all wrong "
        f"{pct(fr['all_wrong'])}%, mixed {pct(fr['mixed'])}% "
        f"({'each ≥ 15%: the paper' if ok else 'not the paper'}'s regime). Mean accuracy "
        f"{pct(runs.initial['train_temperature_avg'])}%: the random-reward control's coin.",
        "",
        "![regime](figures/initial_regime.png)",
    ]


PER_SEED = (
    "Each run at each seed, in seed order: held-out avg@n and greedy (%), and the training "
    "numbers the findings read, the mean over the first (early) or last (late) quarter of its "
    "iterations. Their spread over seeds is what enters every interval, through t."
)


FINDINGS_PREFACE = (
    "A verdict reads the interval only. With one seed an interval covers the held-out "
    "problems (evaluation noise), not the spread between training runs, and a finding "
    "measured by one number per run (early accuracy, entropy) has no interval at all: "
    "verdicts on one seed are provisional. With few seeds a per-run finding's t interval "
    "is wide (its 95% quantile is 12.7 standard errors at 2 seeds, 4.3 at 3)."
)


def budget(results: list[dict]) -> str:
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


def costs(runs: Runs, results: list[dict], rerun: str) -> str:
    """What training and scoring cost per run, for each run length apart (a run 4x as long costs
    about 4x: one mean over both would describe neither); a run scored along training pays for
    each point (evaluation should not cost more than training)."""
    if not results:
        return "No run has finished yet."
    parts = []
    for iterations in sorted({r["iterations"] for r in results}):
        group = [r for r in results if r["iterations"] == iterations]
        train_s = [
            sum(m.get("rollout_seconds", 0) + m.get("update_seconds", 0)
                for m in runs.metrics(r["run"], r["seed"]))
            for r in group
        ]  # fmt: skip
        points = [runs.curves(r["run"], [r["seed"]]).get(r["seed"], []) for r in group]
        eval_s = [  # a point at the run's end is its final score, not scored again
            sum(p["scores"]["seconds"] for p in ps)
            + (0 if any(p["iteration"] == iterations for p in ps) else r["after"]["seconds"])
            for r, ps in zip(group, points, strict=True)
        ]
        along = max(map(len, points))
        parts.append(
            f"{iterations} iterations (mean of {len(group)}): training "
            f"{np.mean(train_s) / 60:.1f} min, held-out scoring {np.mean(eval_s) / 60:.1f} min"
            + (f" (up to {along} points along training)" if along else "")
        )
    return (
        f"Cost per run at {'; at '.join(parts)}; the initial model was scored once "
        f"({runs.initial['seconds'] / 60:.1f} min). Rerun one run from nothing: `{rerun}` (a "
        "copy of initial_eval.json in NEW_DIR saves scoring the initial model again; its weights' "
        "sha256 is still checked); the same seed gives the same numbers on the same machine "
        "(deterministic kernels)."
    )


# What the paper shows where the long arm should show its crossover (PAPER.md's findings, and
# the paper's figures as the reading notes of the paper describe them).
PAPER_SHAPE = (
    "The paper's shape (its Figures 1-2, reward curves, as the reading notes describe them; 1024 "
    "prompts × 4 samples an iteration, 2 optimizer steps each): RAFT++ rises fastest at first, "
    "its growth slows after about 100 iterations (~200 optimizer steps), and GRPO overtakes it "
    "later; its Figure 3 ties the slowdown to RAFT++'s entropy falling fast. The long arm asks "
    "whether that crossover comes within 240 optimizer steps at this scale, on held-out "
    "accuracy."
)


def long_arm(runs: Runs, names: list[str], seeds: list[int], finding: Finding) -> list[str]:
    """What the long arm (the finding's two runs, scored along training) has run so far, and
    whether its first iterations repeat the shorter runs'."""
    lines = [
        f"Runs longer than the grid's, scored on the held-out set from their checkpoints along "
        f'training (`minimalrl compare --score-every K`); the finding "{finding.statement}" '
        "reads their final scores, paired by seed. Their entropy and response length along "
        "training: the long_arm curves below.",
        "",
    ]
    for name in (finding.a, finding.b):
        if name not in names:
            lines.append(f"- `{name}`: not in this compare's runs.")
            continue
        finished = runs.seeds(name)
        scored = {s: points[-1]["iteration"] for s, points in runs.curves(name, seeds).items()}
        if not finished and not scored:
            lines.append(f"- `{name}`: not run yet.")
            continue
        along = ", ".join(f"{s} (to iteration {it})" for s, it in scored.items()) or "none"
        lines.append(
            f"- `{name}`: "
            + (f"finished at seeds {finished}" if finished else "not finished at any seed yet")
            + f"; scored along training at seeds {along}."
            + _same_start_words(runs, name, seeds)
        )
    return lines


def _same_start_words(runs: Runs, name: str, seeds: list[int]) -> str:
    same = same_start(runs, name, seeds)
    if not same:
        return ""
    short = shorter_run(name)
    agree = [s for s, ok in same.items() if ok]
    differ = [s for s, ok in same.items() if not ok]
    return (
        f" Its first iterations against `{short}`'s (every logged number but the timings, and "
        f"the held-out scores at `{short}`'s end): identical at seeds {agree or 'none'}"
        + (f", DIFFERENT at seeds {differ} (the code changed between them?)" if differ else "")
        + "."
    )
