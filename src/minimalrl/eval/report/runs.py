"""The finished runs of a compare, read for the report: per-problem score tables, metrics curves,
and each of the paper's findings measured on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minimalrl.eval.findings import Finding, FindingResult, measure_finding
from minimalrl.eval.heldout import pass_at_k_table
from minimalrl.eval.metrics import read_metrics
from minimalrl.eval.runspec import RunSpec


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
