"""A synthetic arithmetic task with a known answer, for fast RL runs on CPU.

Difficulty has two knobs: ``digits`` (each operand has 1..digits digits, the count drawn
uniformly, so ``digits=2`` mixes one- and two-digit numbers; ``min_digits`` raises the lower end,
so ``digits=2,min_digits=2`` asks for two-digit numbers only) and ``num_ops`` (operations per
question). Precedence is the usual one: ``2 + 3 * 4`` is 14. The default (operands up to two
digits, one ``+`` or ``-``) is easy enough that a 135M instruct model is right on some samples and
wrong on others, which is what grouped RL needs to learn from.

Train and test are disjoint by construction, for every seed and size: a hash of the expression
puts each one in exactly one split (one in five goes to test), and each split keeps only its own.
Within a set the questions are distinct; asking for more than the space holds is a DataError.
"""

from __future__ import annotations

import hashlib
import random

from minimalrl.data.problems import DataError, Problem

OPERATORS = "+-*"
SPLITS = ("train", "test")
TEST_BUCKETS = 5
"""An expression is in the test split when its hash is 0 modulo this."""
MAX_MISSES = 20_000
"""Consecutive duplicate or other-split draws after which the space counts as used up."""
_TEMPLATES = (
    "What is {expr}?",
    "Compute {expr}.",
    "Calculate {expr}.",
    "What is the value of {expr}?",
    "Evaluate {expr}.",
)
_SPEC_INT_KEYS = ("n", "seed", "digits", "num_ops", "mul_digits", "min_digits")
_SPEC_STR_KEYS = ("ops", "split")


def synthetic_arithmetic(
    n: int,
    *,
    seed: int = 0,
    digits: int = 2,
    num_ops: int = 1,
    ops: str = "+-",
    split: str = "train",
    mul_digits: int | None = None,
    min_digits: int = 1,
) -> list[Problem]:
    """``n`` distinct seeded problems like "What is 23 - 8?"; the answer is the integer, as text.

    ``mul_digits``: the operand right of a ``*`` has 1..mul_digits digits (None: ``digits``), so
    ``digits=2,ops=+-*,mul_digits=1`` asks for sums and differences of two-digit numbers and
    products of a two-digit by a one-digit number. ``min_digits``: every operand left of a ``*``
    and every operand of ``+`` and ``-`` has min_digits..digits digits (the right operand of a
    ``*`` keeps 1..mul_digits when mul_digits is given)."""
    _check_args(n, seed, digits, num_ops, ops, split)
    _check_digit_bounds(digits, min_digits, mul_digits)
    rng = random.Random(f"arithmetic/{split}/{seed}")  # str seeds are hashed stably (sha512)
    seen: set[str] = set()
    problems: list[Problem] = []
    misses = 0
    while len(problems) < n:
        operands = [_operand(rng, digits, min_digits) for _ in range(num_ops + 1)]
        operators = [rng.choice(ops) for _ in range(num_ops)]
        if mul_digits is not None:  # (only then: other specs keep their problems)
            for i, op in enumerate(operators):
                if op == "*":
                    operands[i + 1] = _operand(rng, mul_digits)
        expr = " ".join(
            [str(operands[0])] + [f"{o} {x}" for o, x in zip(operators, operands[1:], strict=True)]
        )
        if expr in seen or split_of(expr) != split:
            misses += 1
            if misses > MAX_MISSES:
                raise DataError(
                    f"arithmetic: only {len(problems)} distinct {split} problems exist with "
                    f"digits={digits}, num_ops={num_ops}, ops={ops!r}; ask for fewer "
                    f"(n={n}) or raise digits or num_ops"
                )
            continue
        misses = 0
        seen.add(expr)
        question = rng.choice(_TEMPLATES).format(expr=expr)
        meta = {"source": "arithmetic", "expression": expr, "digits": digits, "num_ops": num_ops}
        meta.update(ops=ops, split=split, seed=seed)
        if mul_digits is not None:
            meta["mul_digits"] = mul_digits
        if min_digits != 1:
            meta["min_digits"] = min_digits
        answer = str(evaluate(operands, operators))
        problems.append(Problem(question, answer, meta, id=f"arithmetic/{split}/{len(problems)}"))
    return problems


def split_of(expr: str) -> str:
    """The split an expression belongs to, from a stable hash of its text."""
    h = int.from_bytes(hashlib.sha256(expr.encode()).digest()[:8], "big")
    return "test" if h % TEST_BUCKETS == 0 else "train"


def evaluate(operands: list[int], operators: list[str]) -> int:
    """Value of ``operands[0] operators[0] operands[1] ...`` with ``*`` before ``+`` and ``-``."""
    terms, signs = [operands[0]], [1]
    for op, x in zip(operators, operands[1:], strict=True):
        if op == "*":
            terms[-1] *= x
        else:
            terms.append(x)
            signs.append(1 if op == "+" else -1)
    return sum(s * t for s, t in zip(signs, terms, strict=True))


def parse_arithmetic_spec(spec: str) -> dict[str, int | str]:
    """``"digits=2,num_ops=1,n=500,seed=0,split=test"`` -> synthetic_arithmetic's keywords."""
    kwargs: dict[str, int | str] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, eq, value = (s.strip() for s in item.partition("="))
        known = _SPEC_INT_KEYS + _SPEC_STR_KEYS
        if key not in known:
            raise DataError(f"arithmetic spec: unknown key {key!r} (known: {', '.join(known)})")
        if not eq or not value:
            raise DataError(f"arithmetic spec: key {key!r} needs a value, as in {key}=...")
        if key in kwargs:
            raise DataError(f"arithmetic spec: key {key!r} given twice")
        if key in _SPEC_INT_KEYS:
            try:
                kwargs[key] = int(value)
            except ValueError:
                raise DataError(
                    f"arithmetic spec: key {key!r} needs an integer, got {value!r}"
                ) from None
        else:
            kwargs[key] = value
    return kwargs


def _operand(rng: random.Random, digits: int, min_digits: int = 1) -> int:
    """A number of min_digits..digits digits, the digit count drawn uniformly (0 counts as one
    digit)."""
    d = rng.randint(min_digits, digits)
    return rng.randint(0 if d == 1 else 10 ** (d - 1), 10**d - 1)


def _check_digit_bounds(digits: int, min_digits: int, mul_digits: int | None) -> None:
    if (
        isinstance(min_digits, bool)
        or not isinstance(min_digits, int)
        or not (1 <= min_digits <= digits)
    ):
        raise DataError(
            f"arithmetic: min_digits must be an integer in 1..digits={digits}, got {min_digits!r}"
        )
    if mul_digits is not None and not (isinstance(mul_digits, int) and mul_digits >= 1):
        raise DataError(f"arithmetic: mul_digits must be an integer >= 1, got {mul_digits!r}")


def _check_args(n: int, seed: int, digits: int, num_ops: int, ops: str, split: str) -> None:
    for name, value, low in (("n", n, 1), ("digits", digits, 1), ("num_ops", num_ops, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise DataError(f"arithmetic: {name} must be an integer >= {low}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"arithmetic: seed must be an integer, got {seed!r}")
    if not isinstance(ops, str) or not ops or set(ops) - set(OPERATORS):
        raise DataError(
            f"arithmetic: ops must be a non-empty string of operators from {OPERATORS!r}, "
            f"got {ops!r} (the number of operations is num_ops)"
        )
    if split not in SPLITS:
        raise DataError(f"arithmetic: split must be one of {', '.join(SPLITS)}, got {split!r}")
