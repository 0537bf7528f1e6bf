"""The end-of-run summary: intervals computed by hand, and the lines a newcomer reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from minimalrl.eval.run_summary import paired_change, summary_lines, wilson_interval


def test_wilson_interval_by_hand():
    # 10 of 40: p = 0.25, z = 1.96: centre (0.25 + 0.048)/1.096 = 0.2719,
    # half 1.96·sqrt(0.25·0.75/40 + 1.96²/6400)/1.096 = 0.1315
    lo, hi = wilson_interval(10, 40)
    assert lo == pytest.approx(0.1419, abs=2e-4) and hi == pytest.approx(0.4019, abs=2e-4)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_paired_change_by_hand():
    # d = (+1, +1, 0, 0, -1, 0, +1, 0): mean 0.25, unbiased var (3·0.5625 + 4·0.0625
    # + 1.5625)/7 = 0.5, half-width 1.96·sqrt(0.5/8) = 0.49
    before = [False, False, True, False, True, True, False, False]
    after = [True, True, True, False, False, True, True, False]
    mean, lo, hi = paired_change(before, after)
    assert mean == 0.25
    assert (lo, hi) == pytest.approx((0.25 - 0.49, 0.25 + 0.49), abs=1e-3)
    with pytest.raises(ValueError, match="one length"):
        paired_change([True], [True, False])


def test_summary_lines_say_where_everything_is():
    before = [False] * 150 + [True] * 50
    after = [True] * 120 + [False] * 80
    lines = summary_lines(
        output=Path("runs/x"), iterations=12, seconds=483.4,
        checkpoint=Path("runs/x/checkpoints/iter_000012"), eval_before=before, eval_after=after,
        continue_command="minimalrl train --output runs/x --resume --set iterations=24",
        plots=Path("runs/x/plots"), benchmark="math500",
    )  # fmt: skip
    text = "\n".join(lines)
    assert "held-out accuracy (greedy, 200 problems): 25.0% [" in text
    assert "-> 60.0% [" in text and "change: +35.0 points" in text and "(a rise)" in text
    assert "12 iterations in 8 min 03 s" in text
    assert "--model runs/x/checkpoints/iter_000012/policy --benchmark math500" in text
    assert "continue it: minimalrl train --output runs/x --resume --set iterations=24" in text


def test_a_resumed_run_says_which_iterations_and_reads_accuracy_from_the_records():
    records = [
        {"iteration": 0, "eval_accuracy": 0.105, "eval_problems": 200},
        {"iteration": 26, "eval_accuracy": 0.4, "eval_problems": 200},
    ]
    lines = summary_lines(
        output=Path("r"), iterations=26, seconds=222, first_iteration=18, checkpoint=None,
        eval_before=None, eval_after=None, eval_records=records, continue_command="c", plots=None,
    )  # fmt: skip
    text = "\n".join(lines)
    assert "10.5% [" in text and "at iteration 0 -> 40.0% [" in text and "at iteration 26" in text
    assert "iterations 19-26 (resumed after 18) in 3 min 42 s" in text
