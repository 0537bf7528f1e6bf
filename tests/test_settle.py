"""Seeds to settle a finding: the expected interval at S seeds, on hand-computed tables."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from minimalrl.eval.findings import effect_interval
from minimalrl.eval.settle import expected_interval, seeds_to_settle, spread


def t975(df: float) -> float:
    return float(stats.t.ppf(0.975, df))


def test_one_number_per_run_settles_where_t_over_root_s_fits_under_the_effect():
    # Per-seed differences 0.1, 0.2, 0.3: effect 0.2, seed variance 0.01. At S seeds the
    # interval is 0.2 ± t(S−1)·0.1/sqrt(S): t/sqrt(S) is 8.98 at 2 seeds, 2.48 at 3 and 1.59 at 4,
    # so 4 seeds clear 0 (lo > 0) and 3 do not.
    d = np.array([[0.1], [0.2], [0.3]])
    sp = spread(d)
    assert sp.seed == pytest.approx((0.01, 0.0, 0.0)) and sp.problems == 1
    for s in (2, 3, 4, 7):
        half = t975(s - 1) * 0.1 / np.sqrt(s)
        assert expected_interval(sp, s) == pytest.approx((0.2 - half, 0.2 + half))
    assert expected_interval(sp, 3) == pytest.approx(effect_interval(d, 0 * d)[1])
    assert 0.2 - t975(2) * 0.1 / np.sqrt(3) < 0 < 0.2 - t975(3) * 0.1 / np.sqrt(4)
    settle = seeds_to_settle(sp, "greater")
    assert (settle.seeds, settle.verdict, settle.why) == (4, "holds", "4")
    # The same spread against the opposite claim: contradicted at the same 4 seeds.
    assert seeds_to_settle(sp, "less").verdict == "contradicted"
    # 0, 0.01, 0.02 inside a ±3-point band: 0.01 + t·0.01/sqrt(S) < 0.03 needs t/sqrt(S) < 2.
    inside = seeds_to_settle(spread(d / 10 - 0.01), "equivalent", 0.03)
    assert (inside.seeds, inside.verdict) == (4, "holds")


def test_a_small_effect_with_a_wide_seed_spread_needs_more_than_the_maximum():
    # Effect 0.1, seed sd 1: t(S−1)/sqrt(S) < 0.1 needs ~390 seeds; with one number per run
    # the limit is a point, so more seeds would settle it, just not 64.
    sp = spread(np.array([[-0.9], [0.1], [1.1]]))
    assert seeds_to_settle(sp, "greater").why == "> 64"
    assert seeds_to_settle(sp, "greater", max_seeds=400).seeds == next(
        s for s in range(2, 401) if 0.1 - t975(s - 1) / np.sqrt(s) > 0
    )


def _table(effect: float) -> np.ndarray:
    """2 seeds × 4 problems: effect + seed part (±0.1) + problem part (0.2, 0, −0.2, 0) +
    seed × problem noise (±0.1, summing to 0 along every row and column)."""
    seed = np.array([[0.1], [-0.1]])
    problem = np.array([[0.2, 0.0, -0.2, 0.0]])
    cell = 0.1 * np.array([[1.0, -1.0, 1.0, -1.0], [-1.0, 1.0, -1.0, 1.0]])
    return effect + seed + problem + cell


def test_per_problem_components_by_hand_and_the_problems_share_averages_down():
    # Seed means effect ± 0.1: variance 0.02. Problem means effect + (0.2, 0, −0.2, 0): variance
    # 0.08/3. Residuals ±0.1 in 8 cells over (2−1)(4−1) = 3 degrees of freedom: var_cell 0.08/3,
    # so var_problem = 0.08/3 − (0.08/3)/2 = 0.04/3. At S seeds the variance of the mean is
    # 0.02/S + (0.04/3 + 0.08/(3S))/4, with Satterthwaite's degrees of freedom over (S−1, 3).
    sp = spread(_table(0.05))
    assert sp.seed == pytest.approx((0.02, 0.0, 0.0))
    assert sp.cell == pytest.approx((0.08 / 3, 0.0, 0.0))
    assert sp.problem == pytest.approx((0.04 / 3, 0.0, 0.0))
    for s in (2, 5, 9):
        v_seed, v_problem = 0.02 / s, (0.04 / 3 + 0.08 / (3 * s)) / 4
        var = v_seed + v_problem
        df = var**2 / (v_seed**2 / (s - 1) + v_problem**2 / 3)
        half = t975(df) * np.sqrt(var)
        assert expected_interval(sp, s) == pytest.approx((0.05 - half, 0.05 + half))
    # At the seeds there are, the expected interval is the interval.
    d = _table(0.05)
    assert expected_interval(sp, 2) == pytest.approx(effect_interval(d, 0 * d)[1])
    # The limit of many seeds: 0.05 ± t(3)·sqrt(0.04/3 / 4) = ± 0.18: the problems' own
    # spread alone keeps 0.05 from clearing 0, whatever the seeds.
    half = t975(3) * np.sqrt(0.01 / 3)
    assert half == pytest.approx(0.18, abs=0.005)
    assert expected_interval(sp, None) == pytest.approx((0.05 - half, 0.05 + half))
    assert seeds_to_settle(sp, "greater").why.startswith("none feasible")


def test_per_problem_seeds_to_settle_is_the_first_s_that_clears_the_claim():
    sp = spread(_table(0.3))
    lows = {s: expected_interval(sp, s)[0] for s in range(2, 65)}
    first = min(s for s, lo in lows.items() if lo > 0)
    settle = seeds_to_settle(sp, "greater")
    assert settle.seeds == first > 2 and settle.verdict == "holds"
    assert lows[first - 1] <= 0  # one seed fewer does not settle it
    # by hand at that S and S − 1
    for s, clears in ((first, True), (first - 1, False)):
        v_seed, v_problem = 0.02 / s, (0.04 / 3 + 0.08 / (3 * s)) / 4
        df = (v_seed + v_problem) ** 2 / (v_seed**2 / (s - 1) + v_problem**2 / 3)
        assert (0.3 - t975(df) * np.sqrt(v_seed + v_problem) > 0) == clears


def test_a_ratio_with_a_constant_denominator_is_the_numerators_interval_halved():
    # y = 2 everywhere: its variances are 0, and Fieller's interval of mean(x) / 2 is x's t
    # interval halved, at any number of seeds.
    x = _table(0.6)
    y = np.full_like(x, 2.0)
    ratio, contrast = spread(x, y), spread(x)
    assert ratio.effect == pytest.approx(0.3)
    for s in (2, 4, 10, None):
        lo, hi = expected_interval(contrast, s)
        assert expected_interval(ratio, s) == pytest.approx((lo / 2, hi / 2))
    assert seeds_to_settle(ratio, "at_least", 0.1) == seeds_to_settle(
        spread(x / 2 - 0.1), "greater"
    )


def test_a_ratio_at_the_seeds_there_are_is_fiellers_interval():
    rng = np.random.default_rng(3)
    base = rng.random((3, 40))
    a = base + 0.1 + 0.05 * rng.standard_normal((3, 40)) + 0.02 * rng.standard_normal((3, 1))
    b = base + 0.2 + 0.05 * rng.standard_normal((3, 40))
    effect, ci = effect_interval(a, b, base)
    sp = spread(a - base, b - base)
    assert sp.effect == pytest.approx(effect)
    assert expected_interval(sp, 3) == pytest.approx(ci)
    lo4, hi4 = expected_interval(sp, 4)
    assert ci[0] < lo4 < hi4 < ci[1]  # a seed more: narrower


def test_one_seed_or_an_undefined_ratio_cannot_be_settled_by_a_number():
    one = spread(np.array([[0.1, 0.3, 0.2]]))
    assert one.seed is None
    assert seeds_to_settle(one, "greater").why == "needs ≥ 2 seeds to estimate"
    with pytest.raises(ValueError, match="one seed"):
        expected_interval(one, 4)
    x = _table(0.3)
    zero = spread(x, np.zeros_like(x))
    assert seeds_to_settle(zero, "at_least", 0.5).why == "none feasible (the effect is undefined)"
    # An effect on the band's edge: no number of seeds puts the interval on one side.
    edge = spread(np.array([[-0.1], [0.0], [0.1]]))
    assert (
        seeds_to_settle(edge, "greater").why == "none feasible (the effect is on the claim's edge)"
    )


def test_settle_finding_pairs_the_runs_it_names():
    from minimalrl.eval.findings import Finding
    from minimalrl.eval.settle import settle_finding

    b = np.tile([0.0, 1.0, 0.5, 0.25], (2, 1))
    scores = {"a": b + _table(0.3), "b": b, "base": b - 0.5}
    contrast = Finding("x", "a beats b", "a", "b", "greater")
    assert settle_finding(contrast, scores) == seeds_to_settle(spread(_table(0.3)), "greater")
    ratio = Finding("r", "a gets most of b's gain", "a", "b", "at_least", base="base", margin=0.5)
    x, y = scores["a"] - scores["base"], scores["b"] - scores["base"]
    assert settle_finding(ratio, scores) == seeds_to_settle(spread(x, y), "at_least", 0.5)
    assert settle_finding(contrast, {"a": b}) is None
