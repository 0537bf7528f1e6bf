"""Verifiable math reward: extract a response's final answer and check it against the gold one.

`is_correct` / `verify_batch` give verdicts, `reward_values` turns them into rewards (+1 / -1 by
default, as in the paper's analysis). Sympy work runs in a time-limited worker process, so any
model output, however hostile, costs at most `timeout` seconds and never raises. The
conventions (percent, decimals, units, factorials, the last-number fallback) are listed in
`verify.py`'s docstring.
"""

from minimalrl.reward.extract import extract_answer, last_number, normalize_answer
from minimalrl.reward.verify import (
    is_correct,
    reward_values,
    verify_batch,
    warmup,
)

__all__ = [
    "extract_answer",
    "is_correct",
    "last_number",
    "normalize_answer",
    "reward_values",
    "verify_batch",
    "warmup",
]
