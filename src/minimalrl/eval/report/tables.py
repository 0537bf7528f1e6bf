"""The report's tables: results per run and per seed, ablations, and the paper's findings with
their verdicts."""

from __future__ import annotations

import math

from minimalrl.eval.evaluate import pass_ks
from minimalrl.eval.findings import Finding, FindingResult, effect_interval, mean_interval
from minimalrl.eval.report.runs import (
    FIRST_SEEDS,
    LONG_ARM,
    Measured,
    Runs,
    paired_at,
    pooled_curve,
)
from minimalrl.eval.runspec import RunSpec
from minimalrl.eval.settle import Settle


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _ci(mean: float, ci: tuple[float, float]) -> str:
    return f"{pct(mean)} [{pct(ci[0])}, {pct(ci[1])}]"


def results_table(runs: Runs, names: list[str]) -> list[str]:
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


# The per-seed table's training numbers: (column, metric, quarter of the iterations, format).
PER_SEED_METRICS = (
    ("early training accuracy", "accuracy", "early", pct),
    ("late entropy", "entropy", "late", lambda v: f"{v:.3f}"),
    ("late response length", "response_length", "late", lambda v: f"{v:.1f}"),
)


def seeds_table(runs: Runs, names: list[str]) -> list[str]:
    """Each run's numbers at each of its seeds, in seed order: held-out avg@n and greedy, and the
    training numbers the findings read (the mean over the first or last quarter of iterations).
    The seeds' spread is what enters every interval through t."""
    head = ["run", "seeds (in order)", f"avg@{runs.n}", "greedy"]
    head += [column for column, *_ in PER_SEED_METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in names:
        seeds = runs.seeds(name)
        if not seeds:
            continue
        cells = [name, ", ".join(map(str, seeds))]
        cells.append(", ".join(pct(v) for v in runs.table(name, seeds).mean(axis=1)))
        greedy = runs.has_greedy((name,), seeds)
        cells.append(
            ", ".join(pct(v) for v in runs.table(name, seeds, "greedy").mean(axis=1))
            if greedy
            else "-"
        )
        for _, key, part, fmt in PER_SEED_METRICS:
            values = [runs.curve_value(name, s, key, part) for s in seeds]
            cells.append(", ".join(fmt(v) if math.isfinite(v) else "-" for v in values))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ablations_table(runs: Runs, names: list[str]) -> list[str]:
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


def findings_table(measured: list[Measured]) -> list[str]:
    """One row per finding: the effect and interval on all seeds, the verdict on the first
    seeds and on all, and the seeds that would settle it."""
    lines = [
        "| finding (the paper) | effect measured | effect | 95% interval | verdict, seeds "
        f"{_seed_range(FIRST_SEEDS)} | verdict, all seeds | seeds | seeds to settle |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in measured:
        f, res = m.finding, m.now
        what = _effect_words(f)
        if res is None:
            lines.append(f"| {f.statement} | {what} | - | - | not run | not run | 0 | - |")
            continue
        lo, hi = res.ci95
        fmt = _ratio if f.base else _nats if f.measure == "entropy" else _points
        interval = f"[{fmt(lo)}, {fmt(hi)}]" if math.isfinite(lo) else _no_interval(f, res)
        first = f"**{m.first.verdict}**" if m.first is not None else "not run"
        lines.append(
            f"| {f.statement} | {what} | {fmt(res.effect)} | {interval} | {first} | "
            f"**{res.verdict}** | {res.seeds} | {_settle_cell(m.settle)} |"
        )
    return lines


def _seed_range(seeds: tuple[int, ...]) -> str:
    return f"{seeds[0]}-{seeds[-1]}"


def _settle_cell(settle: Settle | None) -> str:
    if settle is None:
        return "-"
    return f"{settle.why} ({settle.verdict})" if settle.seeds is not None else settle.why


SETTLE_NOTE = (
    "Seeds to settle: the fewest seeds at which this interval, with the same effect and the "
    "variances the seeds now show (a seed's, a problem's, and the seed × problem noise that more "
    'seeds average down), would be decisive (clear of the claim\'s band, or for "within ±3" '
    'inside it), and the verdict it would give; "none feasible" where even many seeds would '
    "leave it open (`minimalrl.eval.settle`)."
)


def curve_table(runs: Runs, names: list[str], seeds: list[int]) -> list[str]:
    """Held-out avg@n along training for every run scored along it (pooled over the seeds scored
    at each point, their count in brackets), and the long arm's a − b there, paired."""
    curves = {n: {p.iteration: p for p in pooled_curve(runs, n, seeds)} for n in names}
    curves = {n: c for n, c in curves.items() if c}
    if not curves:
        return []
    a, b = LONG_ARM.a, LONG_ARM.b
    pair = a in curves and b in curves
    head = ["iteration", "optimizer steps", *(f"{n} avg@{runs.n}" for n in curves)]
    head += [f"{a} − {b}: Δ avg@{runs.n}", "Δ greedy"] if pair else []
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for it in sorted(set().union(*curves.values())):
        steps = next(c[it].optimizer_steps for c in curves.values() if it in c)
        cells = [str(it), str(steps)]
        cells += [
            f"{_ci(c[it].mean, c[it].ci95)} ({len(c[it].seeds)})" if it in c else "-"
            for c in curves.values()
        ]
        for score in ("avg", "greedy") if pair else ():
            diff = paired_at(runs, a, b, seeds, it, score) if it else None
            cells.append("-" if diff is None else f"{_points(diff[1])} [{_points(diff[2][0])}, "
                         f"{_points(diff[2][1])}] ({diff[0]})")  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _no_interval(f: Finding, res: FindingResult) -> str:
    """Why a finding's interval is unbounded (`minimalrl.eval.findings.effect_interval`)."""
    if f.measure != "after":
        return "none (one run each)" if res.seeds < 2 else "none (equal at every seed: no spread)"
    return "unbounded (b's gain not clear of 0 at Fieller's t)"


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


def finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
