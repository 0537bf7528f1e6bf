"""The finished runs of a compare, read for the report: per-problem score tables, metrics curves,
and each of the paper's findings measured on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minimalrl.eval.findings import FINDINGS, Finding, FindingResult, measure_finding
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
        """Mean of a metric over the first ("early") or last ("late") quarter of iterations."""
        records = [r for r in self.metrics(name, seed) if r.get(key) is not None]
        q = max(1, len(records) // 4)
        chosen = records[:q] if part == "early" else records[-q:]
        return float(np.mean([r[key] for r in chosen]))

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
