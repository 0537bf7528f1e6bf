"""The finished runs of a compare, read for the report: per-problem score tables, metrics curves,
and each of the paper's findings measured on them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minimalrl.eval.curve import read_curve
from minimalrl.eval.findings import (
    FINDINGS,
    Finding,
    FindingResult,
    effect_interval,
    mean_interval,
    measure_finding,
)
from minimalrl.eval.heldout import pass_at_k_table
from minimalrl.eval.metrics import read_metrics
from minimalrl.eval.runspec import RunSpec
from minimalrl.eval.settle import Settle, settle_finding


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
        """Mean of a metric over the first ("early") or last ("late") quarter of iterations
        (NaN where no record has it)."""
        records = [r for r in self.metrics(name, seed) if r.get(key) is not None]
        if not records:
            return float("nan")
        q = max(1, len(records) // 4)
        chosen = records[:q] if part == "early" else records[-q:]
        return float(np.mean([r[key] for r in chosen]))

    def curves(self, name: str, seeds: list[int]) -> dict[int, list[dict]]:
        """{seed: held-out points along the run (`minimalrl.eval.curve`)} of the seeds that have
        any, finished or not."""
        out = {}
        for seed in seeds:
            points = read_curve(self.output / "runs" / RunSpec.parse(name).dir_name(seed))
            if points:
                out[seed] = points
        return out

    def point_table(self, point: dict | None, score: str) -> np.ndarray:
        """(1, problems) scores of one curve point (None: the initial model), avg or greedy."""
        scores = self.initial if point is None else point["scores"]
        if score == "greedy":
            return np.array([scores["greedy_correct"]], dtype=np.float64)
        return np.array([scores["correct_counts"]], dtype=np.float64) / self.n

    def scores(self, finding: Finding, among: tuple[int, ...] | None = None) -> dict | None:
        """{run name: (seeds, problems) scores} of a finding's runs on the seeds they all share
        (only those in `among`, when given); per-run numbers as (seeds, 1). None when a run is
        missing or they share no seed."""
        names = [finding.a, finding.b] + ([finding.base] if finding.base else [])
        if any(n != "initial" and n not in self.by_name for n in names):
            return None
        seeds = [s for s in self.seeds(*names) if among is None or s in among]
        if not seeds:
            return None
        if finding.measure == "after":
            return {n: self.table(n, seeds) for n in names}
        key, part = {"early": ("accuracy", "early"), "entropy": ("entropy", "late")}[
            finding.measure
        ]
        return {n: np.array([[self.curve_value(n, s, key, part)] for s in seeds]) for n in names}

    def measure(
        self, finding: Finding, among: tuple[int, ...] | None = None
    ) -> FindingResult | None:
        """A finding's effect on the seeds all its runs share (those in `among`, when given);
        None when a run is missing."""
        scores = self.scores(finding, among)
        return None if scores is None else measure_finding(finding, scores)


# The seeds the grid first had: the findings table shows the verdict they gave beside today's.
FIRST_SEEDS = (0, 1, 2)
# The long arm: its two runs, scored along training (`--score-every`), and its finding.
LONG_ARM = next(f for f in FINDINGS if f.name == "grpo_overtakes_raft++_240_steps")


@dataclass(frozen=True)
class Measured:
    """One of the paper's findings on these runs: None where a run it needs has not finished."""

    finding: Finding
    now: FindingResult | None
    """On every seed its runs share."""
    first: FindingResult | None
    """On those of FIRST_SEEDS only."""
    settle: Settle | None
    """The seeds that would settle it, from the spread of `now`'s seeds."""


def measure_findings(runs: Runs) -> list[Measured]:
    """Every finding of FINDINGS, measured on all seeds, on the first seeds, and projected."""
    out = []
    for f in FINDINGS:
        scores = runs.scores(f)
        now = None if scores is None else measure_finding(f, scores)
        settle = None if scores is None else settle_finding(f, scores)
        out.append(Measured(f, now, runs.measure(f, FIRST_SEEDS), settle))
    return out


@dataclass(frozen=True)
class CurvePoint:
    """One run's held-out score at one point along training, pooled over the seeds scored there."""

    iteration: int
    optimizer_steps: int
    seeds: tuple[int, ...]
    per_seed: tuple[float, ...]
    mean: float
    ci95: tuple[float, float]


def pooled_curve(runs: Runs, name: str, seeds: list[int], score: str = "avg") -> list[CurvePoint]:
    """A run's held-out score (avg@n or greedy) along training, from the initial model (0 steps)
    to its last scored point; [] when no seed has a point or a score lacks greedy."""
    at = _by_iteration(runs.curves(name, seeds))
    if not at or not _have(score, [runs.initial], *(a.values() for a in at.values())):
        return []
    initial = runs.point_table(None, score)
    first = sorted({s for points in at.values() for s in points})
    out = [CurvePoint(0, 0, tuple(first), (float(initial.mean()),) * len(first),
                      *mean_interval(initial))]  # fmt: skip
    for it, points in sorted(at.items()):
        table = np.concatenate([runs.point_table(points[s], score) for s in sorted(points)])
        steps = [p["optimizer_steps"] for p in points.values() if p["optimizer_steps"] is not None]
        per_seed = tuple(table.mean(axis=1).tolist())
        out.append(CurvePoint(it, max(steps, default=0), tuple(sorted(points)), per_seed,
                              *mean_interval(table)))  # fmt: skip
    return out


def paired_at(
    runs: Runs, a: str, b: str, seeds: list[int], iteration: int, score: str = "avg"
) -> tuple[int, float, tuple[float, float]] | None:
    """(seeds, effect, 95% interval) of a − b at one scored iteration, paired by seed and problem
    over the seeds both were scored at; None when they share none (or a score lacks greedy)."""
    at_a, at_b = (_by_iteration(runs.curves(n, seeds)).get(iteration, {}) for n in (a, b))
    shared = sorted(set(at_a) & set(at_b))
    if not shared or not _have(score, at_a.values(), at_b.values()):
        return None
    a_SN, b_SN = (
        np.concatenate([runs.point_table(side[s], score) for s in shared]) for side in (at_a, at_b)
    )
    return len(shared), *effect_interval(a_SN, b_SN)


def _by_iteration(curves: dict[int, list[dict]]) -> dict[int, dict[int, dict]]:
    """{iteration: {seed: point}} from {seed: points}."""
    out: dict[int, dict[int, dict]] = {}
    for seed, points in curves.items():
        for point in points:
            out.setdefault(point["iteration"], {})[seed] = point
    return out


def _have(score: str, *groups: Iterable[dict]) -> bool:
    """Whether every record of `groups` (curve points, or the initial scores) has `score`: avg
    always, greedy where it was scored."""
    records = [r.get("scores", r) for group in groups for r in group]
    return score != "greedy" or all("greedy_correct" in r for r in records)


def shorter_run(name: str) -> str:
    """The run a longer one extends: its name without `iterations=` (grpo:iterations=120 ->
    grpo)."""
    spec = RunSpec.parse(name)
    return RunSpec(
        spec.algo, spec.control, tuple(kv for kv in spec.settings if kv[0] != "iterations")
    ).name


def same_start(runs: Runs, name: str, seeds: list[int]) -> dict[int, bool]:
    """Per seed where both have run that far: whether a longer run's first iterations computed
    what the shorter run it extends did (every metric but the timings, and the held-out scores at
    the shorter run's end from the longer one's checkpoint there)."""
    short = shorter_run(name)
    out = {}
    for seed in (s for s in runs.seeds(short) if s in seeds):
        done = runs.by_name[short][seed]
        n = done["iterations"]
        try:  # the longer run may not have started, or be writing its next record
            records = [r for r in runs.metrics(name, seed) if "reward_mean" in r][:n]
        except (FileNotFoundError, ValueError):
            continue
        if len(records) < n:
            continue
        short_records = [r for r in runs.metrics(short, seed) if "reward_mean" in r]
        same = [_untimed(r) for r in records] == [_untimed(r) for r in short_records]
        point = _by_iteration(runs.curves(name, [seed])).get(n, {}).get(seed)
        if point is not None:
            keys = ("correct_counts", "greedy_correct")
            same &= all(point["scores"].get(k) == done["after"].get(k) for k in keys)
        out[seed] = same
    return out


def _untimed(record: dict) -> dict:
    return {k: v for k, v in record.items() if "second" not in k}
