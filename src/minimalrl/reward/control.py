"""The random-reward control: a reward that ignores correctness.

Spurious-reward results (Shao et al., arXiv 2506.10947) show RL gains on some models from rewards
with no real signal, so a comparison needs a run whose reward is a coin: what the real reward
adds is the difference to it. The coin is a function of (seed, problem, response text), not of a
random state: a resumed run, a rerun and a different batching give every response the same coin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from minimalrl.data.problems import Problem


def coin(seed: int, problem_id: str, response: str) -> float:
    """A uniform number in [0, 1) fixed by its arguments (sha256: stable across machines)."""
    digest = hashlib.sha256(f"{seed}\x00{problem_id}\x00{response}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def random_reward(
    responses: Sequence[str],
    problems: Sequence[Problem],
    *,
    correct_reward: float = 1.0,
    wrong_reward: float = -1.0,
    random_reward_p: float = 0.5,
    seed: int = 0,
) -> tuple[list[float], list[bool]]:
    """`correct_reward` with probability `random_reward_p`, else `wrong_reward`, whatever the
    response says. The verdicts are the same coin (keep filters read them), so no part of
    training sees correctness; held-out evaluation still uses the math verifier."""
    heads = [
        coin(seed, problem.id, response) < random_reward_p
        for response, problem in zip(responses, problems)
    ]
    return [correct_reward if h else wrong_reward for h in heads], heads
