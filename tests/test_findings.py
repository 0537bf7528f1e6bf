"""The statistics of a comparison's findings: effects, bootstrap intervals, verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from minimalrl.eval.findings import (
    FINDINGS,
    Finding,
    bootstrap_effect,
    group_regime,
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
    effect, (lo, hi) = bootstrap_effect(b + 0.05, b, draws=500)
    assert effect == pytest.approx(0.05)
    assert lo == pytest.approx(0.05) and hi == pytest.approx(0.05)


def test_one_seed_two_problems_interval_by_hand():
    # a - b is 1 on one problem and 0 on the other: a resampled mean is 0, 0.5 or 1 with
    # probabilities 1/4, 1/2, 1/4, so the 2.5 / 97.5 percentiles are 0 and 1.
    effect, (lo, hi) = bootstrap_effect(np.array([[1.0, 0.0]]), np.zeros((1, 2)), draws=4000)
    assert effect == 0.5
    assert (lo, hi) == (0.0, 1.0)


def test_seed_spread_enters_the_interval():
    # The difference is 0.1 on every problem for seed 0 and 0.3 for seed 1: a resampled pair of
    # seeds gives 0.1 (1/4), 0.2 (1/2) or 0.3 (1/4).
    b = np.zeros((2, 4))
    a = np.array([[0.1] * 4, [0.3] * 4])
    effect, (lo, hi) = bootstrap_effect(a, b, draws=4000)
    assert effect == pytest.approx(0.2)
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.3)


def test_ratio_of_gains_and_a_meaningless_denominator():
    base = np.zeros((2, 3))
    effect, ci = bootstrap_effect(np.full((2, 3), 0.25), np.full((2, 3), 0.5), base)
    assert effect == pytest.approx(0.5) and ci == pytest.approx((0.5, 0.5))
    # b gained nothing over base: the share of its gain is undefined
    effect, ci = bootstrap_effect(np.full((2, 3), 0.25), base.copy(), base)
    assert ci == (-np.inf, np.inf)


def test_bootstrap_checks_its_tables():
    with pytest.raises(ValueError, match=r"b: shape \(1, 3\) differs from \(1, 2\)"):
        bootstrap_effect(np.zeros((1, 2)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="a: scores must be finite"):
        bootstrap_effect(np.array([[np.nan]]), np.zeros((1, 1)))


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
