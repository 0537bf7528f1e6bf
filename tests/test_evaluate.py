"""pass@k, maj@k and the harness's summaries against hand-computed values."""

from __future__ import annotations

import inspect
import math

import pytest

from minimalrl.cli import build_parser
from minimalrl.config import TrainConfig
from minimalrl.data import Problem
from minimalrl.eval.evaluate import EvalSettings, _summarise, majority_correct, pass_at_k
from minimalrl.reward import is_correct, verify_batch


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 0, 1, 0.0),
        (4, 4, 1, 1.0),
        (4, 1, 1, 0.25),  # pass@1 is the mean accuracy
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (8, 1, 4, 0.5),  # 1 - C(7,4)/C(8,4) = 1 - 35/70
        (16, 3, 8, 1 - math.comb(13, 8) / math.comb(16, 8)),
        (5, 3, 3, 1.0),  # fewer wrong than k: always a hit
    ],
)
def test_pass_at_k_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_rejects_nonsense():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 0)


def test_majority_vote():
    assert majority_correct(["3", "4", "3", None], [True, False, True, False])
    assert not majority_correct(["4", "4", "3"], [False, False, True])
    assert not majority_correct([None, None], [False, False])


def test_summary_groups_by_subject_and_level():
    probs = [
        Problem("q1", "1", {"subject": "Algebra", "level": 1}),
        Problem("q2", "2", {"subject": "Algebra", "level": 2}),
        Problem("q3", "3", {"subject": "Geometry", "level": 2}),
    ]
    rows = [{"accuracy": 1.0, "maj": 1.0}, {"accuracy": 0.5, "maj": 0.0},
            {"accuracy": 0.0, "maj": 0.0}]  # fmt: skip
    s = _summarise(rows, probs, k=2)
    assert s["accuracy"] == pytest.approx(0.5) and s["avg@2"] == pytest.approx(0.5)
    assert s["by_subject"] == {"Algebra": 0.75, "Geometry": 0.0}
    assert s["by_level"] == {"1": 1.0, "2": 0.25}


def test_settings_validation():
    with pytest.raises(ValueError, match="k must be >= 1"):
        EvalSettings(k=0)
    with pytest.raises(ValueError, match="temperature"):
        EvalSettings(k=4, temperature=0.0)


def test_train_and_eval_default_to_the_same_answer_rule():
    """A user compares training and eval accuracy: both must read answers the same way."""
    train = TrainConfig.__dataclass_fields__["fallback_last_number"].default
    cli = build_parser().parse_args(["eval", "--benchmark", "gsm8k"]).fallback_last_number
    reward = {
        inspect.signature(f).parameters["fallback_last_number"].default
        for f in (is_correct, verify_batch)
    }
    assert train is EvalSettings().fallback_last_number is cli is True
    assert reward == {train}
    off = build_parser().parse_args(["eval", "--benchmark", "gsm8k", "--no-fallback-last-number"])
    assert off.fallback_last_number is False
