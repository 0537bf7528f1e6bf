"""The statistics of a comparison's findings: effects, intervals (bootstrap, Student's t,
Fieller's), verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from minimalrl.eval.findings import (
    FINDINGS,
    Finding,
    effect_interval,
    group_regime,
    mean_interval,
    measure_finding,
    verdict,
)


@pytest.mark.parametrize(
    ("lo", "hi", "claim", "margin", "expected"),
    [
        (0.01, 0.2, "greater", 0.0, "holds"),
        (-0.01, 0.2, "greater", 0.0, "inconclusive"),
        (-0.3, -0.1, "greater", 0.0, "contradicted"),
        (-0.3, -0.1, "less", 0.0, "holds"),
        (0.1, 0.3, "less", 0.0, "contradicted"),
        (-0.02, 0.02, "equivalent", 0.03, "holds"),
        (-0.02, 0.05, "equivalent", 0.03, "inconclusive"),
        (0.04, 0.09, "equivalent", 0.03, "contradicted"),
        (0.6, 0.9, "at_least", 0.5, "holds"),
        (0.3, 0.9, "at_least", 0.5, "inconclusive"),
        (0.1, 0.4, "at_least", 0.5, "contradicted"),
        (-np.inf, np.inf, "at_least", 0.5, "inconclusive"),
    ],
)
def test_verdict_reads_the_interval(lo, hi, claim, margin, expected):
    assert verdict(lo, hi, claim, margin) == expected


def test_verdict_refuses_an_unknown_claim():
    with pytest.raises(ValueError, match="unknown claim 'bigger'"):
        verdict(0, 1, "bigger")


def test_paired_constant_difference_has_a_point_interval():
    # Problems differ a lot (0 or 1), but a is b + 0.05 on every problem of every seed: pairing by
    # problem and seed leaves no spread at all.
    b = np.tile([0.0, 1.0, 0.0, 1.0, 1.0], (3, 1))
    effect, (lo, hi) = effect_interval(b + 0.05, b)
    assert effect == pytest.approx(0.05)
    assert lo == pytest.approx(0.05) and hi == pytest.approx(0.05)


def test_one_seed_four_problems_interval_by_hand():
    # a − b is 1, 0, 1, 0: mean 0.5, variance of the problems 1/3, of their mean 1/12; only the
    # problems vary, so 3 degrees of freedom (t = 3.1824).
    effect, (lo, hi) = effect_interval(np.array([[1.0, 0.0, 1.0, 0.0]]), np.zeros((1, 4)))
    half = 3.1824 * np.sqrt(1 / 12)
    assert effect == 0.5
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half), abs=1e-4)


def test_seed_spread_enters_the_interval():
    # The difference is 0.1 on every problem for seed 0 and 0.3 for seed 1: the problems add no
    # spread, the seeds' means vary (variance 0.02, of their mean 0.01), and the degrees of
    # freedom are the seeds' one (t = 12.706): two seeds that disagree say little.
    b = np.zeros((2, 4))
    a = np.array([[0.1] * 4, [0.3] * 4])
    effect, (lo, hi) = effect_interval(a, b)
    assert effect == pytest.approx(0.2)
    assert (lo, hi) == pytest.approx((0.2 - 12.706 * 0.1, 0.2 + 12.706 * 0.1), abs=1e-3)


def test_seed_and_problem_spread_add_with_satterthwaite_degrees_of_freedom():
    # d = seed part (+0.1, -0.1) + problem part (0.2, 0, -0.2, 0): seed means ±0.1 (variance
    # 0.02, over 2 seeds 0.01, 1 df); problem means 0.2, 0, -0.2, 0 (variance 0.08/3, over 4
    # problems 1/150, 3 df). Variance 0.01 + 1/150; df = v² / (0.01²/1 + (1/150)²/3).
    d = np.array([[0.1], [-0.1]]) + np.array([[0.2, 0.0, -0.2, 0.0]])
    var = 0.01 + 1 / 150
    df = var**2 / (0.01**2 + (1 / 150) ** 2 / 3)
    assert 1 < df < 3
    half = stats.t.ppf(0.975, df) * np.sqrt(var)
    effect, (lo, hi) = effect_interval(d, np.zeros_like(d))
    assert effect == pytest.approx(0.0, abs=1e-15)
    assert (lo, hi) == pytest.approx((-half, half))


def test_ratio_of_gains_and_a_meaningless_denominator():
    base = np.zeros((2, 3))
    effect, ci = effect_interval(np.full((2, 3), 0.25), np.full((2, 3), 0.5), base)
    assert effect == pytest.approx(0.5) and ci == pytest.approx((0.5, 0.5))
    # b gained nothing over base: the share of its gain is undefined
    effect, ci = effect_interval(np.full((2, 3), 0.25), base.copy(), base)
    assert ci == (-np.inf, np.inf)


def test_intervals_check_their_tables():
    with pytest.raises(ValueError, match=r"b: shape \(1, 3\) differs from \(1, 2\)"):
        effect_interval(np.zeros((1, 2)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="a: scores must be finite"):
        effect_interval(np.array([[np.nan]]), np.zeros((1, 1)))


# Student's t 97.5% quantiles, from a printed table: 1 and 2 degrees of freedom.
T1, T2 = 12.7062, 4.3027


def test_one_number_per_run_gets_students_t_over_seeds_by_hand():
    # Per-seed differences 0.1 and 0.3: mean 0.2, sd 0.1414, standard error 0.1.
    effect, (lo, hi) = effect_interval(np.array([[0.1], [0.3]]), np.zeros((2, 1)))
    assert effect == pytest.approx(0.2)
    assert (lo, hi) == pytest.approx((0.2 - T1 * 0.1, 0.2 + T1 * 0.1), abs=1e-4)
    # Three seeds 0.1, 0.2, 0.3: sd 0.1, standard error 0.1 / sqrt(3); paired by seed, so a
    # shift shared by both arms of a seed changes nothing.
    shift = np.array([[5.0], [-2.0], [0.7]])
    effect, (lo, hi) = effect_interval(np.array([[0.1], [0.2], [0.3]]) + shift, shift)
    half = T2 * 0.1 / np.sqrt(3)
    assert (lo, hi) == pytest.approx((0.2 - half, 0.2 + half), abs=1e-4)
    mean, (lo, hi) = mean_interval(np.array([[0.1], [0.2], [0.3]]))
    assert mean == pytest.approx(0.2) and (lo, hi) == pytest.approx(
        (0.2 - half, 0.2 + half), abs=1e-4
    )
    # One seed: nothing to estimate the spread from.
    assert mean_interval(np.array([[0.4]]))[1] == (-np.inf, np.inf)


def test_a_ratio_of_per_run_gains_gets_fiellers_interval():
    # b's gain is 2 at every seed, a's is 1, 2, 3: the ratio is a's mean gain / 2, and with a
    # constant denominator Fieller's interval is the t interval of a's gain, halved.
    base = np.array([[0.5], [0.1], [0.2]])
    a = base + np.array([[1.0], [2.0], [3.0]])
    b = base + 2.0
    effect, (lo, hi) = effect_interval(a, b, base)
    half = T2 * 1.0 / np.sqrt(3) / 2
    assert effect == pytest.approx(1.0)
    assert (lo, hi) == pytest.approx((1 - half, 1 + half), abs=1e-4)
    # b's gains 1, -1, 0.5: their own interval reaches 0, so any ratio fits.
    b = base + np.array([[1.0], [-1.0], [0.5]])
    assert effect_interval(a, b, base)[1] == (-np.inf, np.inf)


def test_per_run_intervals_cover_95_percent_where_a_seed_bootstrap_does_not():
    # 2000 simulated contrasts of 3 seeds, true effect 0, normal seed-to-seed noise. The binomial
    # standard error of a coverage over 2000 is 0.5 points: [93%, 97%] is 4 of them either side.
    rng = np.random.default_rng(0)
    d = rng.standard_normal((2000, 3, 1))
    covered = [lo <= 0 <= hi for lo, hi in (effect_interval(x, 0 * x)[1] for x in d)]
    assert 0.93 <= np.mean(covered) <= 0.97
    # What the bootstrap gave before: the 2.5/97.5 percentiles of resampled means of 3 numbers
    # never leave their range, and cover far less.
    boot = [_seed_bootstrap(x[:, 0], np.random.default_rng(i)) for i, x in enumerate(d[:400])]
    assert np.mean([lo <= 0 <= hi for lo, hi in boot]) < 0.85


def test_per_problem_intervals_cover_95_percent_when_the_seeds_dominate():
    # 1000 simulated contrasts, 3 seeds × 500 problems: seed-to-seed sd 0.05 (as between two
    # random-reward runs of the grid), problem sd 0.02, seed × problem noise sd 0.3. A two-level
    # bootstrap covered ~80% here; these intervals 93.3% over 4000 simulations (Satterthwaite's
    # degrees of freedom run a little high with 3 seeds). Binomial standard error over 1000:
    # 0.8 points, so [90%, 97%] is 4 of them either side.
    rng = np.random.default_rng(1)
    covered = []
    for _ in range(1000):
        d = (0.05 * rng.standard_normal((3, 1)) + 0.02 * rng.standard_normal((1, 500))
             + 0.3 * rng.standard_normal((3, 500)))  # fmt: skip
        lo, hi = effect_interval(d, np.zeros_like(d))[1]
        covered.append(lo <= 0 <= hi)
    assert 0.90 <= np.mean(covered) <= 0.97


def _seed_bootstrap(x_S: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    means = x_S[rng.integers(0, x_S.size, size=(2000, x_S.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def test_measure_finding_uses_the_runs_it_names_and_skips_missing_ones():
    finding = Finding("x", "a beats b", "a", "b", "greater")
    # every problem's difference is positive, so every resampled mean is: the claim holds
    scores = {"a": np.array([[1.0, 1.0, 0.5]] * 3), "b": np.zeros((3, 3))}
    result = measure_finding(finding, scores)
    assert result.effect == pytest.approx(2.5 / 3)
    assert result.verdict == "holds" and result.seeds == 3 and result.problems == 3
    assert measure_finding(finding, {"a": scores["a"]}) is None


def test_every_paper_finding_is_well_formed():
    names = [f.name for f in FINDINGS]
    assert len(names) == len(set(names)) >= 5
    for f in FINDINGS:
        assert verdict(0.0, 0.0, f.claim, f.margin) in ("holds", "contradicted", "inconclusive")


def test_group_regime_fractions():
    assert group_regime(np.array([0, 4, 2, 1]), 4) == {
        "all_correct": 0.25,
        "all_wrong": 0.25,
        "mixed": 0.5,
    }
    with pytest.raises(ValueError, match=r"0\.\.n=4"):
        group_regime(np.array([5]), 4)
