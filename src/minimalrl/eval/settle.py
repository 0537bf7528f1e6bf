"""How many seeds would settle a finding: the expected 95% interval at S seeds, before running them.

A finding's interval (`minimalrl.eval.findings`) has the variance var(seed means) / S +
var(problem means) / N. The first term's variance, that of one seed's mean over the N problems,
does not depend on S. The second's does: a problem's mean over S seeds holds the problem's own
effect (the same at every seed: variance var_problem) and the seed × problem noise (sampling: the
4 samples of a problem differ from seed to seed, variance var_cell), which averages down, so
var(problem means) = var_problem + var_cell / S. With 2+ seeds and 2+ problems the two are apart
by the two-way analysis of variance: var_cell is the mean square of the residuals
x[s, i] − x[s, ·] − x[·, i] + x[·, ·], and var_problem = var(problem means) − var_cell / S (at
least 0). On the grid's paired held-out contrasts var_cell / S is almost all of var(problem
means) (GRPO − RAFT++ at 3 seeds: 0.0188 of 0.0202), so holding var(problem means) fixed would
count sampling noise that more seeds average away, and call findings unsettleable that are not.

The expected interval at S seeds keeps the effect, var(seed means), var_problem, var_cell and N,
and takes Student's t at the Welch-Satterthwaite degrees of freedom of S seeds: at the seeds there
are now it is the interval itself. The seeds to settle are the fewest S (2 to `max_seeds`) whose
expected interval is decisive against the claim: clear of the claim's band on one side (holds or
contradicted), or, for an equivalence claim, inside the band or clear of it. As S grows the
interval shrinks to effect ± t_(N−1) · sqrt(var_problem / N); where that is not decisive either
(an effect on the band's edge, or the problems' own spread too wide), no number of seeds settles
the finding, and the report says so.

A ratio of gains (Fieller's interval) is done the same way, not by a delta-method approximation:
the three (co)variances of the two gains' means come apart as above, and they, with the t quantile
of the residual x − r̂·y at S seeds, go into Fieller's quadratic.

A finding on one seed has no seed-to-seed variance, and var_problem and var_cell cannot be told
apart: it needs 2+ seeds to estimate (nothing is lent from other runs, whose spread differs: the
random-reward control's seeds spread over 8 points, GRPO's over 1). Nor can a finding of one
number per run whose seeds all gave the same difference (it has no interval either).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minimalrl.eval.findings import (
    Finding,
    fieller_bounds,
    source_covariances,
    t_quantile,
    verdict,
)

MAX_SEEDS = 64

Cov = tuple[float, float, float]
"""(var x, cov x y, var y): the covariances of a contrast x, or of a ratio's x and y."""


@dataclass(frozen=True)
class Spread:
    """A finding's effect with its variance components: mean_x (a contrast), or mean_x / mean_y
    (a ratio of gains) with y's terms (see the module's text)."""

    mean_x: float
    seed: Cov | None
    """Of one seed's means over the problems; None with one seed."""
    problem: Cov
    """var_problem: of a problem's own effect, the same at every seed."""
    cell: Cov
    """var_cell: the seed × problem noise of one cell."""
    problems: int
    mean_y: float | None = None
    """None: a contrast."""

    @property
    def effect(self) -> float:
        if self.mean_y is None:
            return self.mean_x
        return self.mean_x / self.mean_y if self.mean_y != 0 else float("nan")


@dataclass(frozen=True)
class Settle:
    seeds: int | None
    """The fewest seeds whose expected interval is decisive; None where none up to the maximum."""
    verdict: str
    """What that interval would say (holds / contradicted); "" where there is none."""
    why: str
    """The table cell: the number, "> 64", or why no number of seeds settles it."""


def spread(x_SN: np.ndarray, y_SN: np.ndarray | None = None) -> Spread:
    """The variance components of mean(x), or of mean(x) / mean(y), from (seeds, problems)
    tables paired as `minimalrl.eval.findings.effect_interval` pairs them."""
    x_SN = np.asarray(x_SN, dtype=np.float64)
    y = None if y_SN is None else np.asarray(y_SN, dtype=np.float64)
    seeds, problems = x_SN.shape
    pairs = ((x_SN, x_SN), (x_SN, y), (y, y)) if y is not None else ((x_SN, x_SN),)

    def cov3(values: list[float]) -> Cov:
        return (values[0], values[1], values[2]) if y is not None else (values[0], 0.0, 0.0)

    def by_source(source: str) -> Cov | None:
        covs = [source_covariances(u, w).get(source) for u, w in pairs]
        return None if covs[0] is None else cov3([c[0] for c in covs])  # type: ignore[index]

    cell = (0.0, 0.0, 0.0)
    if seeds > 1 and problems > 1:
        dof = (seeds - 1) * (problems - 1)
        cell = cov3([float((_residual(u) * _residual(w)).sum()) / dof for u, w in pairs])
    means = by_source("problem") or (0.0, 0.0, 0.0)
    problem = cov3([m - c / seeds for m, c in zip(means, cell, strict=True)])
    return Spread(
        mean_x=float(x_SN.mean()),
        seed=by_source("seed"),
        problem=problem,
        cell=cell,
        problems=problems,
        mean_y=None if y is None else float(y.mean()),
    )


def _residual(x_SN: np.ndarray) -> np.ndarray:
    """What is left of each cell after its seed's and its problem's means (two-way ANOVA)."""
    return x_SN - x_SN.mean(axis=1, keepdims=True) - x_SN.mean(axis=0, keepdims=True) + x_SN.mean()


def expected_interval(sp: Spread, seeds: int | None) -> tuple[float, float]:
    """The 95% interval expected at `seeds` seeds (None: the limit of many seeds)."""
    if sp.seed is None:
        raise ValueError("no seed-to-seed variance: a finding on one seed cannot be projected")

    def parts(w: Cov, variance: bool = True) -> list[tuple[float, int]]:
        """(variance of the mean, degrees of freedom) per source of the combination w·(x, y)
        (`variance`: of x, of y or of x − r·y, not their covariance)."""
        out = []
        if seeds is not None:
            out.append((float(np.dot(w, sp.seed)) / seeds, seeds - 1))
        if sp.problems > 1:
            cell = float(np.dot(w, sp.cell)) / seeds if seeds is not None else 0.0
            problem = float(np.dot(w, sp.problem)) + cell
            if variance:  # var_problem's estimate may be below 0; the sum is var(problem means)
                problem = max(problem, 0.0)
            out.append((problem / sp.problems, sp.problems - 1))
        return out

    def t(p: list[tuple[float, int]]) -> float:
        return t_quantile(p) if sum(v for v, _ in p) > 0 else 0.0

    def var(w: Cov, variance: bool = True) -> float:
        return sum(v for v, _ in parts(w, variance))

    if sp.mean_y is None:
        half = t(parts((1.0, 0.0, 0.0))) * math.sqrt(var((1.0, 0.0, 0.0)))
        return sp.mean_x - half, sp.mean_x + half
    if sp.mean_y == 0:
        return -np.inf, np.inf
    r = sp.mean_x / sp.mean_y
    t2 = t(parts((1.0, -2 * r, r * r))) ** 2  # the residual x − r̂·y, as Fieller's interval has
    var_x, cov_xy, var_y = var((1, 0, 0)), var((0, 1, 0), variance=False), var((0, 0, 1))
    return fieller_bounds(sp.mean_x, sp.mean_y, var_x, cov_xy, var_y, t2)


def seeds_to_settle(
    sp: Spread, claim: str, margin: float = 0.0, *, max_seeds: int = MAX_SEEDS
) -> Settle:
    """The fewest seeds (2 to `max_seeds`) whose expected interval decides the claim."""
    if sp.seed is None:
        return Settle(None, "", "needs ≥ 2 seeds to estimate")
    if sp.problems == 1 and sp.seed[0] == 0:  # no interval now either (findings._contrast_interval)
        return Settle(None, "", "needs seeds that differ to estimate")
    if not math.isfinite(sp.effect):
        return Settle(None, "", "none feasible (the effect is undefined)")
    for seeds in range(2, max_seeds + 1):
        said = verdict(*expected_interval(sp, seeds), claim, margin)
        if said != "inconclusive":
            return Settle(seeds, said, str(seeds))
    lo, hi = expected_interval(sp, None)
    if verdict(lo, hi, claim, margin) != "inconclusive":
        return Settle(None, "", f"> {max_seeds}")
    if lo == hi:
        return Settle(None, "", "none feasible (the effect is on the claim's edge)")
    return Settle(None, "", "none feasible (the problems' own spread leaves it open)")


def settle_finding(finding: Finding, scores: dict[str, np.ndarray]) -> Settle | None:
    """The seeds to settle `finding` from ``scores[run name] -> (seeds, problems)``, paired as
    `minimalrl.eval.findings.measure_finding` pairs them; None when a run it needs is missing."""
    names = [finding.a, finding.b] + ([finding.base] if finding.base else [])
    if any(name not in scores for name in names):
        return None
    seeds = min(np.asarray(scores[name]).shape[0] for name in names)
    a, b, *base = (np.asarray(scores[name], dtype=np.float64)[:seeds] for name in names)
    sp = spread(a - base[0], b - base[0]) if base else spread(a - b)
    return seeds_to_settle(sp, finding.claim, finding.margin)
