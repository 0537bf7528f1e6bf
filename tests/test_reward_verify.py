"""Equivalence, time limits, threads, the last-number fallback and the reward values."""

from __future__ import annotations

import threading
import time

import pytest

from minimalrl.reward import is_correct, reward_values, verify_batch, warmup
from minimalrl.reward._worker import WORKER
from minimalrl.reward.verify import MAX_NESTING, numbers_equal, too_hard

TIMEOUT = 1.0
# Passes every cheap check but makes sympy expand a 1001-term polynomial: only the worker's time
# limit stops it.
HANGS_SYMPY = r"\boxed{(x+1)^{1000}}"


@pytest.fixture(scope="module", autouse=True)
def warm_worker():
    """Start the worker up front: its one-off start-up is not part of any timed call."""
    warmup()
    assert is_correct(r"\boxed{\sqrt{8}}", r"2\sqrt{2}")


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        ("1,000", "1000", True),
        ("1000", "100", False),
        ("0.5", r"\frac12", True),
        ("1/2", r"\frac{1}{2}", True),
        (r"\dfrac{1}{2}", "0.5", True),
        (r"50\%", "50", True),
        (r"106^\circ", "106", True),
        (r"\$18.90", "18.9", True),
        (r"5.4 \text{ cents}", "5.4", True),
        (r"2\sqrt{2}", r"\sqrt{8}", True),
        (r"2\sqrt{3}", r"2\sqrt{2}", False),
        (r"\frac{1}{3}+1", r"\frac{1}{3}", False),
        ("(1,2)", "(2,1)", False),
        ("(3, \\pi/2)", r"\left( 3, \frac{\pi}{2} \right)", True),
        ("1, 2", "2, 1", True),
        ("x=3", "3", True),
        ("x=3", "x=-3", False),
        ("[3,4]", "(3,4]", False),
        (
            r"\begin{pmatrix} 0.2 \\ -3.6 \end{pmatrix}",
            r"\begin{pmatrix} 1/5 \\ -18/5 \end{pmatrix}",
            True,
        ),
        (r"\text{Eveyln}", r"\text{Evelyn}", False),
        ("4.5 \\times 10^{33}", "4.5e33", True),
    ],
)
def test_equivalence(answer, gold, expected):
    assert is_correct(rf"so the answer is $\boxed{{{answer}}}$.", gold) is expected


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        (r"50\%", "50", True),  # a gold without the sign (GSM8K "what percent")
        ("50", r"50\%", True),
        (r"50\%", "0.5", True),  # the value: 50% is one half
        ("0.5", r"50\%", True),
        (r"12.5\%", "12.5", True),
        (r"5\%", "50", False),
        (r"0.5\%", r"50\%", False),
    ],
)
def test_percent_convention(answer, gold, expected):
    """A percent equals its bare number and its value / 100, as in the paper's math-verify."""
    assert is_correct(rf"\boxed{{{answer}}}", gold) is expected


def test_factorial_is_not_punctuation():
    """A `!` in math is a factorial; only prose ends a sentence with it."""
    assert is_correct(r"\boxed{5!}", "120") is True
    assert is_correct(r"\boxed{5!}", "5") is False
    assert is_correct(r"the answer is $5!$", "120") is True
    assert is_correct("The answer is 42! Great.", "42") is True  # an exclamation in prose


def test_numbers_equal_fast_path():
    assert numbers_equal("0.3333333", r"\frac{1}{3}") is False  # a decimal is its written value
    assert numbers_equal("0.33", r"\frac{1}{3}") is False
    assert numbers_equal("1000001", "1000000") is False  # integers are exact
    assert numbers_equal(r"0.5\%", r"50\%") is False
    assert numbers_equal(r"2\sqrt{2}", "3") is None  # not a plain number: sympy decides


# --- untrusted input ------------------------------------------------------------------------

HOSTILE = [
    r"10^{10^{10^{10}}}",
    r"9^{9^{9^{9^{9}}}}",
    r"9^{9^{9}}",
    r"10^{10^{10}}",
    r"\frac{1}{0}",
    "(" * 5000 + "1" + ")" * 5000,
    "{" * 5000 + "1" + "}" * 5000,
    "1" * 100_000,
]


@pytest.mark.parametrize("answer", HOSTILE, ids=lambda s: s[:20])
def test_hostile_answers_are_refused_without_sympy(answer):
    start = time.perf_counter()
    assert is_correct(rf"\boxed{{{answer}}}", "5", timeout=TIMEOUT) is False
    assert time.perf_counter() - start < 0.1  # refused by the cheap checks
    assert too_hard(answer)


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        ("0.333333", r"\frac{1}{3}", False),  # six 3s are not a third
        ("3.000001", "3", False),
        ("0.5", r"\frac{1}{2}", True),  # a decimal equal to the fraction
        ("0.30000000000000004", "0.3", True),  # floating-point noise (within 1e-9 relative)
        ("1.414214", r"\sqrt{2}", False),  # the sympy tier: rounded to 9 places, not 6
        ("1.4142135624", r"\sqrt{2}", True),
    ],
)
def test_decimals_count_at_their_written_value(answer, gold, expected):
    assert is_correct(rf"\boxed{{{answer}}}", gold) is expected


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        (r"3 \text{ m}", r"3 \text{ cm}", False),  # different units
        (r"3 \text{ cm}", r"3\,\mathrm{cm}", True),  # the same unit, written differently
        (r"3 \text{ centimeters}", r"3 \text{ cm}", True),  # a full name and its symbol
        (r"3 \text{ cm}", "3", True),  # a unit on one side only
        (r"864 \text{ square inches}", r"864 \mbox{ inches}^2", True),
        (r"864 \text{ in}^3", r"864 \mbox{ inches}^2", False),
        (r"300 \mathrm{~km} / \mathrm{s}", r"300 \text{ km/s}", True),
        (r"300 \mathrm{~m} / \mathrm{s}", r"300 \text{ km/s}", False),
    ],
)
def test_units(answer, gold, expected):
    assert is_correct(rf"\boxed{{{answer}}}", gold) is expected


def test_identical_answers_are_equal_without_evaluation():
    """A power tower too big to evaluate still equals itself: the same string is not compared."""
    tower = r"9^{9^{9^{9}}}"
    assert too_hard(tower)
    assert is_correct(rf"\boxed{{{tower}}}", tower, timeout=TIMEOUT) is True
    assert is_correct(r"\boxed{9^{9^{9^{8}}}}", tower, timeout=TIMEOUT) is False


NESTED = {
    "parens": lambda d: "(" * d + "1" + ")" * d,
    "fracs": lambda d: r"\frac{" * d + "1" + "}{2}" * d,
    "continued fraction": lambda d: r"1+\frac{1}{" * d + "1" + "}" * d,
}


@pytest.mark.parametrize("family", NESTED)
def test_nesting_bound_is_structural(family):
    """Past MAX_NESTING an answer is refused at once; at the bound sympy is far below its limit.

    Depths 22-24 used to take 3.4-4.6 s, so their verdict flipped with machine load near 5 s.
    """
    deep = NESTED[family](MAX_NESTING + 1)
    assert too_hard(deep)
    start = time.perf_counter()
    assert is_correct(rf"\boxed{{{deep}}}", "7", timeout=5.0) is False
    assert time.perf_counter() - start < 0.1
    assert too_hard(NESTED[family](24))
    at_bound = NESTED[family](MAX_NESTING)
    assert not too_hard(at_bound)
    start = time.perf_counter()
    assert is_correct(rf"\boxed{{{at_bound}}}", "7", timeout=5.0) is False
    assert time.perf_counter() - start < 2.5  # measured <= 0.6 s on 2 loaded cores


def test_worker_time_limit_and_recovery():
    """An input only sympy chokes on returns False within the limit; the next call still works."""
    start = time.perf_counter()
    assert is_correct(HANGS_SYMPY, "1", timeout=TIMEOUT) is False
    assert time.perf_counter() - start < 2 * TIMEOUT
    start = time.perf_counter()
    assert is_correct(r"\boxed{\frac{\sqrt{3}}{3}}", r"\frac{1}{\sqrt{3}}", timeout=TIMEOUT)
    assert time.perf_counter() - start < 2 * TIMEOUT  # the warm spare took over at once


def test_batch_scores_the_others_when_one_hangs():
    """Time limit + a warm spare: the batch costs the hanging pair's limit, not a restart. The
    spare is waited for first: the previous test's kill started a new one, whose import takes
    ~3 s with every extra installed, and that one-off start-up is not what is timed here."""
    WORKER.start()
    for child in (WORKER._active, WORKER._spare):
        assert child is not None and child.wait_ready()
    responses = [r"\boxed{2\sqrt{2}}", HANGS_SYMPY, r"\boxed{x^2+2x+1}", "#### 7"]
    golds = [r"\sqrt{8}", "1", "(x+1)^2", "8"]
    start = time.perf_counter()
    assert verify_batch(responses, golds, timeout=TIMEOUT) == [True, False, True, False]
    assert time.perf_counter() - start < 3 * TIMEOUT


def test_garbage_never_raises():
    junk = ["", "\\", "}{", "$$$", r"\boxed{\frac{", r"\boxed{^^^}", r"\boxed{\begin{pmatrix}}"]
    junk += [r"\boxed{" + s + "}" for s in (r"\left(", "1/0", "0^{-1}", r"\infty-\infty", "%%")]
    assert verify_batch(junk, ["1"] * len(junk), timeout=TIMEOUT) == [False] * len(junk)


def test_works_from_threads():
    """No signal.alarm: any thread may score, and concurrent callers share the worker safely."""
    cases = [(r"\boxed{\sqrt{8}}", r"2\sqrt{2}", True), (r"\boxed{\sqrt{12}}", r"2\sqrt{2}", False)]
    results: dict[int, list[bool]] = {}

    def score(k: int) -> None:
        results[k] = [is_correct(r, g, timeout=5.0) for r, g, _ in cases * 3]

    threads = [threading.Thread(target=score, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[k] == [e for *_, e in cases * 3] for k in range(4))


def test_worker_restarts_after_close():
    WORKER.close()
    assert is_correct(r"\boxed{x^2-1}", "(x-1)(x+1)")


# --- fallback and API -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "strict", "fallback"),
    [
        (r"so \boxed{10}.", True, True),  # a box
        ("work...\n#### 10", True, True),  # GSM8K's marker
        ("The answer is 10.", True, True),
        ("She earns 0.2 x 50 = 10 dollars.", False, True),  # no marker: only the fallback reads it
        ("0.2 x 50 = 10 dollars, or 11.", False, False),  # the last number is 11
        (r"\boxed{12} and later 10", False, False),  # a box wins over any later number
        (r"so $\frac{20}{2}$", False, False),  # digits only: the fallback reads the 2
        ("no numbers at all", False, False),
    ],
)
def test_what_each_fallback_setting_accepts(response, strict, fallback):
    assert is_correct(response, "10", fallback_last_number=False) is strict
    assert is_correct(response, "10", fallback_last_number=True) is fallback
    assert is_correct(response, "10") is fallback  # on by default, as in TrainConfig


def test_verify_batch_matches_is_correct():
    responses = ["#### 1,000", r"\boxed{\frac{1}{2}}", "the answer is 3", "7 apples"]
    golds = ["1000", "0.5", "4", "7"]
    expected = [is_correct(r, g, fallback_last_number=True) for r, g in zip(responses, golds)]
    assert verify_batch(responses, golds, fallback_last_number=True) == expected
    assert expected == [True, True, False, True]


def test_verify_batch_rejects_bad_arguments():
    with pytest.raises(ValueError, match="gold"):
        verify_batch(["a", "b"], ["1"])
    with pytest.raises(ValueError, match="timeout"):
        verify_batch(["a"], ["1"], timeout=0)


def test_reward_values():
    assert reward_values([True, False, True]) == [1.0, -1.0, 1.0]
    assert reward_values([True, False], correct_reward=1.0, wrong_reward=0.0) == [1.0, 0.0]
    assert reward_values([]) == []
