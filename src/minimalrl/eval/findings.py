"""The paper's findings as data, and the statistics that give each a 95% interval and a verdict.

A comparison has, per run (algorithm × seed), one score per held-out problem (avg@n, pass@k or
greedy correctness) or one number per run (a curve's value, such as the final entropy). An effect
is a contrast of two algorithms' scores, paired by seed and by problem (every run of a compare
sees the same seeds' data order and the same problems), or a ratio of two contrasts.

Interval: Student's t with variance components. The mean of a (seeds, problems) table varies with
the seeds (training noise, the same for every problem of a run) and with the problems (the finite
evaluation set, the same problems for every seed). Its variance is estimated as
var(seed means) / S + var(problem means) / N (each term present only where there are 2+ seeds or
2+ problems; both count the seed × problem noise, so the sum errs wide, never narrow), the
degrees of freedom by Welch-Satterthwaite (S − 1 when the seeds dominate, N − 1 when the problems
do), and the interval is mean ± t_0.975 · sqrt(variance). A contrast takes the paired
differences (pairs by seed and by problem); a ratio of two gains takes Fieller's interval, the
ratios r whose contrast gain_a − r · gain_b that t test does not reject (unbounded when gain_b's
own interval reaches 0). One number per run (one column) leaves the seeds alone: Student's t on
S − 1 degrees of freedom. A single number (one seed, one column) has no interval.

Why not a bootstrap, as the grid used first: with 2-3 seeds resampled, an interval never leaves
the seeds' range. In simulation (3 seeds × 500 problems, normal noise), a two-level bootstrap's
95% interval covered the true effect 78-82% of the time when the seed-to-seed spread dominated
(and 51% / 75% for one number per run at 2 / 3 seeds); these intervals covered 93-94% there
(Satterthwaite's degrees of freedom run a little high with 3 seeds), 95% for one number per run,
and 95-99% where the problems dominate (tests/test_findings.py re-runs two of these cases).

Verdicts read the interval only: a claim holds when the whole interval agrees with it, is
contradicted when the whole interval disagrees, and is inconclusive otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

CLAIMS = ("greater", "less", "equivalent", "at_least")


@dataclass(frozen=True)
class Finding:
    """One of the paper's findings (PAPER.md, "What the paper measures") as a measured effect.

    The effect is ``score(a) - score(b)``, or, when ``base`` is set, the ratio
    ``(score(a) - score(base)) / (score(b) - score(base))``: the share of b's gain over base that a
    gets."""

    name: str
    statement: str
    """The paper's words."""
    a: str
    b: str
    claim: str
    """greater (effect > 0), less (< 0), equivalent (|effect| < margin), at_least (>= margin)."""
    measure: str = "after"
    """Which score: "after" (final held-out avg@n per problem), "early" (mean training accuracy
    over the first quarter of the iterations, one number per run: the paper's Figure 1 reward
    curves), "entropy" (mean rollout entropy over the last quarter, one number per run)."""
    base: str | None = None
    margin: float = 0.0


# The paper's findings at our scale. Margins: 0.03 is the equivalence band for "matches" (the
# paper's Reinforce-Rej and GRPO differ by 0.1 points on both models); 0.5 for "most of the gain".
FINDINGS: tuple[Finding, ...] = (
    Finding("raft_strong_baseline", "RAFT is a strong baseline: it gets most of GRPO's gain",
            "raft", "grpo", "at_least", base="initial", margin=0.5),
    Finding("raft++_fastest_early", "RAFT++ learns fastest early",
            "raft++", "grpo", "greater", measure="early"),
    Finding("raft++_entropy_collapses", "RAFT++'s entropy collapses (below GRPO's)",
            "raft++", "grpo", "less", measure="entropy"),
    Finding("grpo_overtakes_raft++", "GRPO overtakes RAFT++ by the end",
            "grpo", "raft++", "greater"),
    # The paper's RAFT++ slowed after ~100 iterations (of 2 optimizer steps) and GRPO overtook it
    # later: the long arm runs 4× the grid's 30 iterations, 240 steps; its final held-out score.
    Finding("grpo_overtakes_raft++_240_steps", "GRPO overtakes RAFT++ within 240 optimizer steps",
            "grpo:iterations=120", "raft++:iterations=120", "greater"),
    Finding("is_without_clip_hurts", "Importance sampling without clipping hurts",
            "raft++_no_clip", "raft++", "less"),
    Finding("reinforce_rej_matches_grpo", "Reinforce-Rej matches GRPO",
            "reinforce_rej", "grpo", "equivalent", margin=0.03),
    Finding("drop_all_wrong_most_of_gain",
            "Dropping all-wrong prompts gives most of GRPO's gain over Reinforce",
            "reinforce_drop_all_wrong", "grpo", "at_least", base="reinforce", margin=0.5),
    Finding("std_adds_little", "Normalising by the group std adds little",
            "reinforce_rej_std", "reinforce_rej", "equivalent", margin=0.03),
    Finding("real_reward_beats_random", "The real reward adds over a random-reward control",
            "grpo", "grpo:random_reward", "greater"),
    # Not the paper's: its released code zeroes rejected prompts where the text drops them.
    Finding("zero_matches_drop", "Zeroing Reinforce-Rej's rejected prompts matches dropping them",
            "reinforce_rej", "reinforce_rej:filtered=drop", "equivalent", margin=0.03),
)  # fmt: skip


@dataclass(frozen=True)
class FindingResult:
    name: str
    effect: float
    ci95: tuple[float, float]
    verdict: str
    seeds: int
    problems: int


def verdict(lo: float, hi: float, claim: str, margin: float = 0.0) -> str:
    """holds / contradicted / inconclusive from a 95% interval [lo, hi] and the claim."""
    if claim == "greater":
        return "holds" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"
    if claim == "less":
        return "holds" if hi < 0 else "contradicted" if lo > 0 else "inconclusive"
    if claim == "equivalent":
        if -margin < lo and hi < margin:
            return "holds"
        return "contradicted" if lo >= margin or hi <= -margin else "inconclusive"
    if claim == "at_least":
        return "holds" if lo >= margin else "contradicted" if hi < margin else "inconclusive"
    raise ValueError(f"unknown claim {claim!r} (known: {', '.join(CLAIMS)})")


def _check_scores(name: str, scores_SN: np.ndarray, like: np.ndarray | None) -> np.ndarray:
    scores_SN = np.asarray(scores_SN, dtype=np.float64)
    if scores_SN.ndim != 2 or scores_SN.size == 0:
        raise ValueError(f"{name}: scores must be a non-empty (seeds, problems) table")
    if like is not None and scores_SN.shape != like.shape:
        raise ValueError(f"{name}: shape {scores_SN.shape} differs from {like.shape}")
    if not np.isfinite(scores_SN).all():
        raise ValueError(f"{name}: scores must be finite")
    return scores_SN


def source_covariances(x_SN: np.ndarray, y_SN: np.ndarray) -> dict[str, tuple[float, int]]:
    """{source: (covariance of x's and y's means over one unit, how many units)} per source of
    spread: "seed" (row means) where there are 2+ seeds, "problem" (column means) where there
    are 2+ problems. The covariance of the grand means is the sum of cov / units."""
    parts = {}
    for source, axis, count in (("seed", 1, x_SN.shape[0]), ("problem", 0, x_SN.shape[1])):
        if count > 1:
            cov = np.cov(x_SN.mean(axis=axis), y_SN.mean(axis=axis), ddof=1)[0, 1]
            parts[source] = (float(cov), count)
    return parts


def variance_parts(x_SN: np.ndarray, y_SN: np.ndarray) -> list[tuple[float, int]]:
    """(covariance of the means of x and y, its degrees of freedom) per source of spread (see
    `source_covariances`)."""
    return [(cov / count, count - 1) for cov, count in source_covariances(x_SN, y_SN).values()]


def t_quantile(parts: list[tuple[float, int]]) -> float:
    """Student's t 97.5% quantile for a mean whose variance is the sum of `parts` (from
    `variance_parts`), Welch-Satterthwaite degrees of freedom (the fewest of its sources' where
    the variance is 0)."""
    var = sum(v for v, _ in parts)
    df = var**2 / sum(v**2 / k for v, k in parts) if var > 0 else min(k for _, k in parts)
    return float(stats.t.ppf(0.975, df))


def _contrast_interval(d_SN: np.ndarray) -> tuple[float, float]:
    """95% interval of the mean of a table of (paired) scores; (-inf, inf) where there is no
    spread to estimate: one cell, or one number per run equal at every seed. Such numbers are few
    and discrete (early accuracy moves in steps of 1/224), so two seeds can agree exactly by chance
    (RAFT++ − GRPO was 4/224 at seeds 0 and 1 of the remade grid); a table of problems with no
    spread at all is a constant paired difference (the same run twice: exactly 0), a point."""
    if d_SN.size == 1:
        return -np.inf, np.inf
    parts = variance_parts(d_SN, d_SN)
    var = sum(v for v, _ in parts)
    if var == 0 and d_SN.shape[1] == 1:
        return -np.inf, np.inf
    if var == 0:  # no spread over seeds and problems: the mean is what it is
        return float(d_SN.mean()), float(d_SN.mean())
    half = t_quantile(parts) * np.sqrt(var)
    return float(d_SN.mean() - half), float(d_SN.mean() + half)


def _fieller_interval(x_SN: np.ndarray, y_SN: np.ndarray) -> tuple[float, float]:
    """95% interval of mean(x) / mean(y): the ratios r whose contrast mean(x) − r·mean(y) the
    t test of `_contrast_interval` does not reject; unbounded when mean(y)'s own interval reaches 0
    (the degrees of freedom are those of x − r̂·y at the estimate r̂)."""
    x_mean, y_mean = x_SN.mean(), y_SN.mean()
    if x_SN.size == 1 or y_mean == 0:
        return -np.inf, np.inf
    residual = x_SN - (x_mean / y_mean) * y_SN
    t2 = t_quantile(variance_parts(residual, residual)) ** 2

    def cov(u: np.ndarray, w: np.ndarray) -> float:
        return sum(v for v, _ in variance_parts(u, w))

    return fieller_bounds(x_mean, y_mean, cov(x_SN, x_SN), cov(x_SN, y_SN), cov(y_SN, y_SN), t2)


def fieller_bounds(
    x_mean: float, y_mean: float, var_x: float, cov_xy: float, var_y: float, t2: float
) -> tuple[float, float]:
    """The ratios r with (x_mean − r·y_mean)² ≤ t2 · var(x − r·y), the variances those of the
    means: Fieller's interval, unbounded when y_mean's own interval reaches 0."""
    a = y_mean**2 - t2 * var_y
    b = x_mean * y_mean - t2 * cov_xy
    c = x_mean**2 - t2 * var_x
    if not a > 0:
        return -np.inf, np.inf
    root = np.sqrt(max(b * b - a * c, 0.0))  # >= 0: r̂ = mean(x) / mean(y) is in the set
    return float((b - root) / a), float((b + root) / a)


def mean_interval(x_SN: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Mean of a (seeds, problems) table of scores and its 95% interval (see the module's text)."""
    x_SN = _check_scores("x", x_SN, None)
    return float(x_SN.mean()), _contrast_interval(x_SN)


def effect_interval(
    a_SN: np.ndarray, b_SN: np.ndarray, base_SN: np.ndarray | None = None
) -> tuple[float, tuple[float, float]]:
    """Effect and 95% interval of a contrast of two arms, paired by seed and problem.

    ``a_SN``, ``b_SN`` (and ``base_SN``) are (seeds, problems) tables of scores with row s of each
    from the same seed and column i the same problem (one column: one number per run). Without a
    base the effect is the mean of a − b; with one, (mean a − mean base) / (mean b − mean base),
    with Fieller's interval, (-inf, inf) when b's gain is not clear of 0 (and the effect NaN when
    it is exactly 0). A single (seed, problem) cell has no interval: (-inf, inf)."""
    a_SN = _check_scores("a", a_SN, None)
    b_SN = _check_scores("b", b_SN, a_SN)
    if base_SN is None:
        return float((a_SN - b_SN).mean()), _contrast_interval(a_SN - b_SN)
    base = _check_scores("base", base_SN, a_SN)
    x_SN, y_SN = a_SN - base, b_SN - base
    effect = float(x_SN.mean() / y_SN.mean()) if y_SN.mean() != 0 else float("nan")
    return effect, _fieller_interval(x_SN, y_SN)


def measure_finding(finding: Finding, scores: dict[str, np.ndarray]) -> FindingResult | None:
    """The finding's effect, interval and verdict from ``scores[run name] -> (seeds, problems)``
    (per-run numbers as (seeds, 1)); None when a run it needs is missing."""
    names = [finding.a, finding.b] + ([finding.base] if finding.base else [])
    if any(name not in scores for name in names):
        return None
    seeds = min(np.asarray(scores[name]).shape[0] for name in names)
    tables = [np.asarray(scores[name], dtype=np.float64)[:seeds] for name in names]
    effect, (lo, hi) = effect_interval(*tables)
    return FindingResult(
        finding.name,
        effect,
        (lo, hi),
        verdict(lo, hi, finding.claim, finding.margin),
        seeds=seeds,
        problems=tables[0].shape[1],
    )


def group_regime(correct_counts_N: np.ndarray, n: int) -> dict[str, float]:
    """Fractions of prompts whose n samples are all correct, all wrong, or mixed (the paper's
    regime has all three), from per-prompt correct counts."""
    counts = np.asarray(correct_counts_N)
    if counts.size == 0 or n < 1 or (counts < 0).any() or (counts > n).any():
        raise ValueError(f"correct counts must lie in 0..n={n}, for at least one prompt")
    return {
        "all_correct": float((counts == n).mean()),
        "all_wrong": float((counts == 0).mean()),
        "mixed": float(((counts > 0) & (counts < n)).mean()),
    }
