"""The statistics of a comparison's findings: effects, intervals (bootstrap, Student's t,
Fieller's), verdicts."""

from __future__ import annotations

import numpy as np
import pytest

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
    effect, (lo, hi) = effect_interval(b + 0.05, b, draws=500)
    assert effect == pytest.approx(0.05)
    assert lo == pytest.approx(0.05) and hi == pytest.approx(0.05)


def test_one_seed_two_problems_interval_by_hand():
    # a - b is 1 on one problem and 0 on the other: a resampled mean is 0, 0.5 or 1 with
    # probabilities 1/4, 1/2, 1/4, so the 2.5 / 97.5 percentiles are 0 and 1.
    effect, (lo, hi) = effect_interval(np.array([[1.0, 0.0]]), np.zeros((1, 2)), draws=4000)
    assert effect == 0.5
    assert (lo, hi) == (0.0, 1.0)


def test_seed_spread_enters_the_interval():
    # The difference is 0.1 on every problem for seed 0 and 0.3 for seed 1: a resampled pair of
    # seeds gives 0.1 (1/4), 0.2 (1/2) or 0.3 (1/4).
    b = np.zeros((2, 4))
    a = np.array([[0.1] * 4, [0.3] * 4])
    effect, (lo, hi) = effect_interval(a, b, draws=4000)
    assert effect == pytest.approx(0.2)
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.3)


def test_ratio_of_gains_and_a_meaningless_denominator():
    base = np.zeros((2, 3))
    effect, ci = effect_interval(np.full((2, 3), 0.25), np.full((2, 3), 0.5), base)
    assert effect == pytest.approx(0.5) and ci == pytest.approx((0.5, 0.5))
    # b gained nothing over base: the share of its gain is undefined
    effect, ci = effect_interval(np.full((2, 3), 0.25), base.copy(), base)
    assert ci == (-np.inf, np.inf)


def test_bootstrap_checks_its_tables():
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


def _seed_bootstrap(x_S: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    means = x_S[rng.integers(0, x_S.size, size=(2000, x_S.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def test_measure_finding_uses_the_runs_it_names_and_skips_missing_ones():
    finding = Finding("x", "a beats b", "a", "b", "greater")
    # every problem's difference is positive, so every resampled mean is: the claim holds
    scores = {"a": np.array([[1.0, 1.0, 0.5]] * 3), "b": np.zeros((3, 3))}
    result = measure_finding(finding, scores, draws=500)
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
