"""The paper's findings as data, and the statistics that give each a 95% interval and a verdict.

A comparison has, per run (algorithm × seed), one score per held-out problem (avg@n, pass@k or
greedy correctness) or one number per run (a curve's value, such as the final entropy). An effect
is a contrast of two algorithms' scores, paired by seed and by problem (every run of a compare
sees the same seeds' data order and the same problems), or a ratio of two contrasts.

Interval, for a table of per-problem scores (seeds × problems): a two-level bootstrap, resampling
seeds and problems with replacement, the same draw for both arms of a contrast (so the pairing is
kept), and the 2.5 / 97.5 percentiles of the effect over the draws. Resampling seeds carries the
run-to-run spread (training noise) into the interval; resampling problems carries the finite
evaluation set. With one seed only the problems vary, and the interval is then about the
evaluation set alone (`FindingResult.seeds` says how many there were).

For one number per run (a table with one column) a bootstrap cannot work: resampling 2 or 3 seeds
never leaves their range, and a simulated 95% interval covered the true effect 51% (2 seeds) and
75% (3 seeds) of the time. Those intervals are Student's t over the seeds' paired differences
(S − 1 degrees of freedom, 95% coverage for normal seed-to-seed noise), and Fieller's interval
for a ratio of two gains (unbounded when the denominator's own interval reaches 0). In the same
simulation the per-problem bootstrap covered 93-100% at 3 seeds × 500 problems, because the
problems' resampling counts the seed × problem noise too (it fell to 82% at 2 seeds when the
seed-to-seed spread dominated).

Verdicts read the interval only: a claim holds when the whole interval agrees with it, is
contradicted when the whole interval disagrees, and is inconclusive otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
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


def _resampler(
    num_seeds: int, num_problems: int, *, draws: int, seed: int
) -> Callable[[np.ndarray], np.ndarray]:
    """x_SN -> (draws,) means of x over resampled seeds × resampled problems, the same draws for
    every table passed (so contrasts stay paired)."""
    rng = np.random.default_rng(seed)
    rows_DS = rng.integers(0, num_seeds, size=(draws, num_seeds))
    cols_DN = rng.integers(0, num_problems, size=(draws, num_problems))
    # mean over the resampled (seed, problem) grid = mean over rows of the resampled columns
    # (a product of two index draws), computed as one weighted sum per draw.
    seed_w_DS = np.stack([np.bincount(r, minlength=num_seeds) for r in rows_DS]) / num_seeds
    prob_w_DN = np.stack([np.bincount(c, minlength=num_problems) for c in cols_DN]) / num_problems
    return lambda x_SN: np.einsum("ds,sn,dn->d", seed_w_DS, x_SN, prob_w_DN)


def _t_quantile(seeds: int) -> float:
    """The two-sided 95% quantile of Student's t with seeds − 1 degrees of freedom."""
    return float(stats.t.ppf(0.975, seeds - 1))


def _t_interval(d_S: np.ndarray) -> tuple[float, float]:
    """95% interval of the mean of per-seed numbers (at least 2): Student's t."""
    half = _t_quantile(d_S.size) * d_S.std(ddof=1) / np.sqrt(d_S.size)
    return float(d_S.mean() - half), float(d_S.mean() + half)


def _fieller_interval(x_S: np.ndarray, y_S: np.ndarray) -> tuple[float, float]:
    """95% interval of mean(x) / mean(y) from paired per-seed numbers (at least 2): Fieller's, the
    ratios r whose contrast mean(x) − r·mean(y) a t test does not reject. It is unbounded, (-inf,
    inf), when mean(y)'s own interval reaches 0."""
    q = _t_quantile(x_S.size) ** 2 / x_S.size
    cov = np.cov(np.stack([x_S, y_S]), ddof=1)
    a = y_S.mean() ** 2 - q * cov[1, 1]
    b = x_S.mean() * y_S.mean() - q * cov[0, 1]
    c = x_S.mean() ** 2 - q * cov[0, 0]
    if a <= 0:
        return -np.inf, np.inf
    root = np.sqrt(max(b * b - a * c, 0.0))  # >= 0: r = mean(x) / mean(y) is in the set
    return float((b - root) / a), float((b + root) / a)


def mean_interval(
    x_SN: np.ndarray, *, draws: int = 4000, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """Mean of a (seeds, problems) table of scores and its 95% interval, as `effect_interval`
    computes one: a bootstrap over seeds and problems, Student's t over seeds for one number per
    run, none for a single number."""
    x_SN = _check_scores("x", x_SN, None)
    if x_SN.shape[1] == 1:
        ci = _t_interval(x_SN[:, 0]) if x_SN.shape[0] > 1 else (-np.inf, np.inf)
        return float(x_SN.mean()), ci
    boot_D = _resampler(*x_SN.shape, draws=draws, seed=seed)(x_SN)
    lo, hi = np.percentile(boot_D, [2.5, 97.5])
    return float(x_SN.mean()), (float(lo), float(hi))


def effect_interval(
    a_SN: np.ndarray,
    b_SN: np.ndarray,
    base_SN: np.ndarray | None = None,
    *,
    draws: int = 4000,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """Effect and 95% interval of a contrast of two arms, paired by seed and problem.

    ``a_SN``, ``b_SN`` (and ``base_SN``) are (seeds, problems) tables of scores with row s of each
    from the same seed and column i the same problem. Without a base the effect is the mean of
    a − b; with one, (mean a − mean base) / (mean b − mean base). Per-problem tables: a bootstrap
    resampling seeds (rows) and problems (columns) jointly; a ratio whose denominator's interval
    includes 0 has no meaning: its interval is then (-inf, inf) (and the effect NaN when the
    denominator is exactly 0). One number per run (one column, 2+ seeds): Student's t over the
    seeds, Fieller's for a ratio. A single (seed, problem) cell has no interval: (-inf, inf)."""
    a_SN = _check_scores("a", a_SN, None)
    b_SN = _check_scores("b", b_SN, a_SN)
    base = None if base_SN is None else _check_scores("base", base_SN, a_SN)
    if base is None:
        effect = float((a_SN - b_SN).mean())
    else:
        gain_b = b_SN.mean() - base.mean()
        effect = float((a_SN.mean() - base.mean()) / gain_b) if gain_b != 0 else float("nan")
    if a_SN.shape == (1, 1):  # one number per arm (one run, one per-run value): no interval
        return effect, (-np.inf, np.inf)
    if a_SN.shape[1] == 1:  # one number per run: the seeds are the only sample
        if base is None:
            return effect, _t_interval(a_SN[:, 0] - b_SN[:, 0])
        return effect, _fieller_interval(a_SN[:, 0] - base[:, 0], b_SN[:, 0] - base[:, 0])
    resampled_mean = _resampler(*a_SN.shape, draws=draws, seed=seed)
    if base is None:
        boot_D = resampled_mean(a_SN - b_SN)
    else:
        denom_D = resampled_mean(b_SN - base)
        lo_d, hi_d = np.percentile(denom_D, [2.5, 97.5])
        if lo_d <= 0 <= hi_d:
            return effect, (-np.inf, np.inf)
        boot_D = resampled_mean(a_SN - base) / denom_D
    lo, hi = np.percentile(boot_D, [2.5, 97.5])
    return effect, (float(lo), float(hi))


def measure_finding(
    finding: Finding, scores: dict[str, np.ndarray], *, draws: int = 4000, seed: int = 0
) -> FindingResult | None:
    """The finding's effect, interval and verdict from ``scores[run name] -> (seeds, problems)``
    (per-run numbers as (seeds, 1)); None when a run it needs is missing."""
    names = [finding.a, finding.b] + ([finding.base] if finding.base else [])
    if any(name not in scores for name in names):
        return None
    seeds = min(np.asarray(scores[name]).shape[0] for name in names)
    tables = [np.asarray(scores[name], dtype=np.float64)[:seeds] for name in names]
    effect, (lo, hi) = effect_interval(*tables, draws=draws, seed=seed)
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
