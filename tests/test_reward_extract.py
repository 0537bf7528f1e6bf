"""Answer extraction and normalisation: boxed forms, GSM8K `####`, "the answer is", last number."""

from __future__ import annotations

from fractions import Fraction

import pytest

from minimalrl.reward import extract_answer, last_number, normalize_answer
from minimalrl.reward.extract import parse_number, split_percent, split_unit, text_answer_key

# --- extract_answer -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so $\boxed{42}$.", "42"),
        (r"\boxed{\frac{\sqrt{21}}{5}}", r"\frac{\sqrt{21}}{5}"),  # nested braces
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}.", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"first \boxed{1}, then \boxed{2}, finally \boxed{3}", "3"),  # last wins
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),  # escaped braces are not counted
        (r"\boxed{\boxed{7}}", "7"),  # a doubly boxed answer is unwrapped
        (r"Hence \boxed 5.", "5"),  # no braces
        (r"Hence $\boxed 12$", "12"),
        (r"N = \fbox{42}", "42"),
        (r"\boxed{8} and then \boxed{9", "8"),  # an unclosed (truncated) box is skipped
        ("#### 18", "18"),
        ("She makes $18.\n#### $1,080", "$1,080"),
        ("#### 5\nThe answer is 6.", "5"),  # #### beats "the answer is"
        ("The answer is 6.\n\\boxed{5}", "5"),  # a box beats both
        ("The answer is: 42.", "42"),
        ("So the final answer is 3.5.", "3.5"),  # a decimal point is not a full stop
        ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", r"\frac{3}{4}"),
        ("The answer is **7** apples.", "7 apples"),
        ("Answer: (B)", "(B)"),
        ("the answer is 24... no wait, the answer is 25", "25"),
        ("The answer is 42! I hope it is correct.", "42"),  # a sentence-ending `!`
        ("The answer is $5!$.", "5!"),  # in math, a factorial
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "no answer here", r"$\boxed{5", r"\boxed{}", r"\boxedfoo 5", "####", "The answer is"],
)
def test_extract_answer_none(text):
    assert extract_answer(text) is None


def test_extract_answer_is_fast_on_hostile_text():
    """Thousands of unclosed boxes or braces stay linear-time."""
    for text in (r"\boxed{" * 20000, "{" * 100_000, "1," * 50_000, "the answer is " * 5000):
        extract_answer(text)
        last_number(text)


# --- last_number ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I have 1,000 apples", "1,000"),
        ("-3.5 degrees", "-3.5"),
        ("3 - 5 = -2", "-2"),
        ("add 3/4 cup", "3/4"),
        ("it costs .5 dollars", ".5"),
        ("The total is 42.", "42"),
        ("In 2023, 5 people came", "5"),
        ("x2 and y3", None),  # digits glued to words are not numbers
        ("nothing", None),
    ],
)
def test_last_number(text, expected):
    assert last_number(text) == expected


# --- normalisation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (r"\$1,000", "1000"),
        (r"10,\!080", "10080"),
        (r"11,\! 111,\! 111,\! 100", "11111111100"),
        (r"15\mbox{ cm}^2", "15"),
        (r"300 \mathrm{~km} / \mathrm{s}", "300"),
        (r"106^\circ", "106"),
        (r"41.8^{\circ}", "41.8"),
        (r"\frac{270}7\text{ degrees}", r"\frac{270}7"),
        ("18 dollars", "18"),
        ("2 and 3", "2 and 3"),  # not a number with a unit
        (r"\dfrac{1}{2}", r"\frac{1}{2}"),
        (r"\left( 3, \frac{\pi}{2} \right)", r"( 3, \frac{\pi}{2} )"),
        ("x = 3", "3"),
        ("x_1 = 3", "3"),
        (r"\prod_{k=1}^{5} k", r"\prod_{k=1}^{5} k"),  # `_{k=1}` is not an equation
        ("204_5", "204"),
        ("4210_{5}", "4210"),
        (r"\text{(B)}", "(B)"),
        ("**42**", "42"),
        ("5!", "5!"),  # a factorial, not punctuation
        (r"\text{yes!}", "yes"),
        (r"50\%", r"50\%"),  # percent is kept for the number comparison
        ("(1,234)", "(1,234)"),  # only a whole-string number loses its commas
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42", Fraction(42)),
        ("-3.50", Fraction(-7, 2)),
        (".0000672", Fraction(672, 10**7)),
        ("1,000", Fraction(1000)),
        ("4.5e33", Fraction(45 * 10**32)),
        (r"6.72 \times 10^{-5}", Fraction(672, 10**7)),
        (r"10^{-5}", Fraction(1, 10**5)),
        ("3/4", Fraction(3, 4)),
        (r"\frac{3}{4}", Fraction(3, 4)),
        (r"\frac 34", Fraction(3, 4)),
        (r"\frac9{19}", Fraction(9, 19)),
        (r"-\frac{24}{25}", Fraction(-24, 25)),
        (r"137 \frac{1}{2}", Fraction(275, 2)),  # mixed number, the MATH convention
        (r"\frac{1}{0}", None),
        ("1e999", None),  # absurd exponents are not built
        (r"2\sqrt{2}", None),
        ("x", None),
    ],
)
def test_parse_number(raw, expected):
    assert parse_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (r"15\mbox{ cm}^2", ("15", "cm^2")),
        (r"864 \mbox{ square inches}", ("864", "in^2")),
        (r"300 \mathrm{~km} / \mathrm{s}", ("300", "km/s")),
        (r"4.5 \text{ Meters}", ("4.5", "m")),
        ("18 dollars", ("18", "dollar")),
        (r"106^\circ", ("106", None)),  # a degree sign carries no unit key
        ("42", ("42", None)),
    ],
)
def test_split_unit(raw, expected):
    assert split_unit(raw) == expected


def test_split_percent():
    assert split_percent(r"50\%") == ("50", True)
    assert split_percent("12.5 %") == ("12.5", True)
    assert split_percent("50") == ("50", False)


@pytest.mark.parametrize(
    ("gold", "key"),
    [
        (r"\text{Evelyn}", "evelyn"),
        (r"\text{(B)}", "b"),
        ("east", "east"),
        (r"\text{even}", "even"),
        ("x", None),  # a bare letter is a variable
        ("p - q", None),
        ("42", None),
    ],
)
def test_text_answer_key(gold, key):
    assert text_answer_key(gold) == key
