"""The reward: a function (responses, problems) -> (rewards, correct), the math verifier by default.

`Reward.load(path, **settings)` loads one ("math", or a user's `package.module:function`) and
checks what it returns (`function.py`). The verifier: `is_correct` / `verify_batch` give verdicts,
`reward_values` turns them into rewards (+1 / -1 by default, as in the paper's analysis). Sympy
work runs in a time-limited worker process, so any model output, however hostile, costs at most
`timeout` seconds and never raises. The conventions (percent, decimals, units, factorials, the
last-number fallback) are listed in `verify.py`'s docstring.
"""

from minimalrl.reward.extract import extract_answer, last_number, normalize_answer
from minimalrl.reward.function import (
    DEFAULT_REWARD,
    REWARD_SETTINGS,
    Reward,
    RewardError,
    RewardFn,
    load_reward_fn,
    math_reward,
)
from minimalrl.reward.verify import (
    is_correct,
    reward_values,
    verify_batch,
    warmup,
)

__all__ = [
    "DEFAULT_REWARD",
    "REWARD_SETTINGS",
    "Reward",
    "RewardError",
    "RewardFn",
    "extract_answer",
    "is_correct",
    "last_number",
    "load_reward_fn",
    "math_reward",
    "normalize_answer",
    "reward_values",
    "verify_batch",
    "warmup",
]
