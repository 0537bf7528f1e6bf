"""The synthetic arithmetic task: determinism, disjoint splits, difficulty knobs, right answers."""

from __future__ import annotations

import re

import pytest

from minimalrl.data import DataError, load_problems, synthetic_arithmetic
from minimalrl.data.synthetic import evaluate, parse_arithmetic_spec, split_of


def expressions(problems) -> list[str]:
    return [p.meta["expression"] for p in problems]


def operands_and_operators(expr: str) -> tuple[list[int], list[str]]:
    tokens = expr.split(" ")
    return [int(t) for t in tokens[::2]], tokens[1::2]


def test_deterministic():
    a = synthetic_arithmetic(200, seed=3, digits=2, num_ops=2, ops="+-*")
    b = synthetic_arithmetic(200, seed=3, digits=2, num_ops=2, ops="+-*")
    assert a == b
    assert synthetic_arithmetic(200, seed=4, digits=2, num_ops=2, ops="+-*") != a


def test_prefix_property():
    """The first k of n problems are the k problems made with n=k (so a limit is a prefix)."""
    assert synthetic_arithmetic(300, seed=1)[:50] == synthetic_arithmetic(50, seed=1)
    assert load_problems("arithmetic", limit=20) == load_problems("arithmetic")[:20]


@pytest.mark.parametrize("answers_from", [1, 2])
def test_answers_are_right(answers_from):
    problems = synthetic_arithmetic(300, seed=answers_from, digits=2, num_ops=3, ops="+-*")
    for p in problems:
        expr = p.meta["expression"]
        assert expr in p.question
        assert p.answer == str(eval(expr))  # we made the expression, so eval is safe here


def test_evaluate_precedence():
    assert evaluate([2, 3, 4], ["+", "*"]) == 14
    assert evaluate([2, 3, 4], ["*", "-"]) == 2
    assert evaluate([10, 2, 3, 4], ["-", "*", "*"]) == -14
    assert evaluate([5], []) == 5


@pytest.mark.parametrize(
    ("digits", "num_ops", "ops"), [(1, 1, "+-"), (2, 1, "+"), (2, 2, "+-*"), (3, 1, "*")]
)
def test_train_and_test_are_disjoint(digits, num_ops, ops):
    kw = {"digits": digits, "num_ops": num_ops, "ops": ops}
    n = 30 if digits == 1 else 300
    test = set(expressions(synthetic_arithmetic(n, split="test", seed=0, **kw)))
    for seed in (0, 1, 2):  # for any seed of either split
        train = expressions(synthetic_arithmetic(n, split="train", seed=seed, **kw))
        assert test.isdisjoint(train)
    assert all(split_of(e) == "test" for e in test)


def test_questions_are_distinct_within_a_set():
    problems = synthetic_arithmetic(1000)
    assert len(set(expressions(problems))) == 1000
    assert len({p.id for p in problems}) == 1000


def test_space_too_small_is_an_error():
    # one-digit a + b: 100 expressions, about a fifth of them in test
    test = synthetic_arithmetic(10, digits=1, ops="+", split="test")
    assert len(test) == 10
    with pytest.raises(DataError, match=r"only \d+ distinct test problems exist with digits=1"):
        synthetic_arithmetic(100, digits=1, ops="+", split="test")


def test_difficulty_knobs():
    for digits in (1, 2, 3):
        problems = synthetic_arithmetic(100, seed=0, digits=digits)
        numbers = [x for p in problems for x in operands_and_operators(p.meta["expression"])[0]]
        assert max(numbers) < 10**digits
        assert max(numbers) >= 10 ** (digits - 1)  # the top digit count is used
        assert min(numbers) < 10  # and so are the smaller ones
    for num_ops in (1, 2, 4):
        for p in synthetic_arithmetic(50, num_ops=num_ops, ops="+-*"):
            assert len(operands_and_operators(p.meta["expression"])[1]) == num_ops
    used = {
        o for p in synthetic_arithmetic(200, ops="*") for o in p.meta["expression"].split()[1::2]
    }
    assert used == {"*"}
    used = {
        o for p in synthetic_arithmetic(200, ops="+-*") for o in p.meta["expression"].split()[1::2]
    }
    assert used == {"+", "-", "*"}
    assert synthetic_arithmetic(20, digits=1) != synthetic_arithmetic(20, digits=2)


def test_question_text_and_meta():
    p = synthetic_arithmetic(1, seed=0, digits=2, num_ops=1, ops="+-", split="test")[0]
    assert re.fullmatch(
        r"(What is|Compute|Calculate|What is the value of|Evaluate) .+[?.]", p.question
    )
    assert p.meta == {
        "source": "arithmetic",
        "expression": p.meta["expression"],
        "digits": 2,
        "num_ops": 1,
        "ops": "+-",
        "split": "test",
        "seed": 0,
    }
    assert p.id == "arithmetic/test/0"


def test_default_difficulty_is_easy():
    problems = load_problems("arithmetic")
    assert len(problems) == 1000
    assert {p.meta["split"] for p in problems} == {"train"}
    assert {(p.meta["digits"], p.meta["num_ops"], p.meta["ops"]) for p in problems} == {
        (2, 1, "+-")
    }
    test = load_problems("arithmetic_test")
    assert len(test) == 500 and {p.meta["split"] for p in test} == {"test"}


def test_spec_string_sets_the_knobs():
    spec = "arithmetic:digits=3, num_ops=2,ops=+*,n=50,seed=7,split=test"
    assert load_problems(spec) == synthetic_arithmetic(
        50, digits=3, num_ops=2, ops="+*", seed=7, split="test"
    )
    assert load_problems("arithmetic:n=40", limit=10) == synthetic_arithmetic(10)
    assert load_problems("arithmetic:") == load_problems("arithmetic")
    assert load_problems("arithmetic_test:n=5,seed=2") == synthetic_arithmetic(
        5, seed=2, split="test"
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("arithmetic:digit=2", "unknown key 'digit' (known: n, seed, digits, num_ops, mul_"),
        ("arithmetic:n=x", "key 'n' needs an integer, got 'x'"),
        ("arithmetic:n", "key 'n' needs a value"),
        ("arithmetic:seed=", "key 'seed' needs a value"),
        ("arithmetic:n=3,n=4", "key 'n' given twice"),
        ("arithmetic:ops=1", "ops must be a non-empty string of operators from '+-*', got '1'"),
        ("arithmetic:ops=/", "ops must be"),
        ("arithmetic:digits=0", "digits must be an integer >= 1, got 0"),
        ("arithmetic:num_ops=0", "num_ops must be an integer >= 1, got 0"),
        ("arithmetic:n=0", "n must be an integer >= 1, got 0"),
        ("arithmetic:split=valid", "split must be one of train, test, got 'valid'"),
    ],
)
def test_bad_spec(spec, expected):
    with pytest.raises(DataError) as info:
        load_problems(spec)
    assert expected in str(info.value)


def test_field_names_do_not_apply_to_synthetic():
    with pytest.raises(DataError, match="apply to files only"):
        load_problems("arithmetic", question_field="q")


def test_parse_spec():
    assert parse_arithmetic_spec("") == {}
    assert parse_arithmetic_spec("n=5, ops=+-*,split=test") == {
        "n": 5,
        "ops": "+-*",
        "split": "test",
    }


def test_mul_digits_bounds_the_right_factor_and_keeps_other_specs():
    mixed = synthetic_arithmetic(300, digits=2, ops="+-*", mul_digits=1)
    products = [p.meta["expression"].split(" * ") for p in mixed if "*" in p.meta["expression"]]
    assert len(products) > 50
    assert all(0 <= int(b) <= 9 and 0 <= int(a) <= 99 for a, b in products)
    assert any(int(a) >= 10 for a, _ in products)  # two-digit by one-digit products occur
    # without mul_digits a spec gives the problems it gave before the key existed
    plain = [p.meta["expression"] for p in synthetic_arithmetic(6, ops="+-*")]
    assert plain == ["15 * 34", "52 - 10", "92 + 1", "4 * 2", "3 * 10", "44 + 3"]


def test_min_digits_gives_two_digit_operands_and_keeps_other_specs():
    strict = synthetic_arithmetic(300, digits=2, min_digits=2, ops="+-*", mul_digits=1)
    for p in strict:
        a, op, b = p.meta["expression"].split(" ")
        assert 10 <= int(a) <= 99
        assert (0 <= int(b) <= 9) if op == "*" else (10 <= int(b) <= 99)
        assert p.meta["min_digits"] == 2
    assert {p.meta["expression"].split(" ")[1] for p in strict} == {"+", "-", "*"}
    assert parse_arithmetic_spec("digits=2,min_digits=2") == {"digits": 2, "min_digits": 2}
    # min_digits=1 is the old behaviour, problem for problem
    plain = [p.meta["expression"] for p in synthetic_arithmetic(6, ops="+-*", min_digits=1)]
    assert plain == ["15 * 34", "52 - 10", "92 + 1", "4 * 2", "3 * 10", "44 + 3"]
    with pytest.raises(DataError, match=r"min_digits must be an integer in 1\.\.digits=2"):
        synthetic_arithmetic(5, digits=2, min_digits=3)
