"""The reward is a function: (responses, problems) -> (rewards, correct).

`rewards` are floats (what advantages are made of), `correct` are bools (what keep filters and
accuracy read); one of each per response, in order. The math verifier is the default
(`math_reward`); a user's own function plugs in by its import path, `reward: package.module:fn`
in the config. A function may also take, by keyword, any of `REWARD_SETTINGS` (the config's
values are passed to those it names):

    def length_penalised(responses, problems, *, correct_reward=1.0):
        rewards, correct = math_reward(responses, problems)
        return [r - 0.001 * len(t) for r, t in zip(rewards, responses)], correct

`Reward` calls it and checks what comes back: an exception, the wrong number of values, a value
that is not a number or a bool, or a NaN/inf reward is a one-line `RewardError` naming the
function and the offending response (the trainer stops before the update, so the last checkpoint
stays the latest).
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from minimalrl.data.problems import Problem
from minimalrl.reward.control import random_reward
from minimalrl.reward.verify import reward_values, verify_batch

RewardFn = Callable[..., tuple[Sequence[float], Sequence[bool]]]
REWARD_SETTINGS = (
    "correct_reward",
    "wrong_reward",
    "fallback_last_number",
    "random_reward_p",
    "seed",
)
DEFAULT_REWARD = "math"


class RewardError(RuntimeError):
    """The reward function cannot be loaded, failed, or returned something unusable."""


def math_reward(
    responses: Sequence[str],
    problems: Sequence[Problem],
    *,
    correct_reward: float = 1.0,
    wrong_reward: float = -1.0,
    fallback_last_number: bool = True,
) -> tuple[list[float], list[bool]]:
    """The default: each response's final answer against its problem's gold (`verify_batch`);
    `correct_reward` if equivalent, else `wrong_reward` (PAPER.md: +1 / −1, its code 1 / 0)."""
    golds = [problem.answer for problem in problems]
    correct = verify_batch(list(responses), golds, fallback_last_number=fallback_last_number)
    return reward_values(correct, correct_reward=correct_reward, wrong_reward=wrong_reward), correct


BUILT_IN: dict[str, RewardFn] = {DEFAULT_REWARD: math_reward, "random": random_reward}


def load_reward_fn(path: str) -> RewardFn:
    """The function at `path`: a built-in name ("math", "random") or `package.module:function`."""
    if path in BUILT_IN:
        return BUILT_IN[path]
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise RewardError(
            f"reward {path!r}: expected 'math', 'random' or 'package.module:function'"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # ImportError, or the module itself failing as it loads
        raise RewardError(f"reward {path}: cannot import {module_name}: {_said(err)}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise RewardError(f"reward {path}: {module_name} has no function {attr!r}")
    return fn


def _said(err: BaseException) -> str:
    """An exception in one line."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@dataclass(frozen=True)
class Reward:
    """A reward function with the settings it takes; call it on responses and their problems."""

    fn: RewardFn
    path: str = DEFAULT_REWARD
    """Where `fn` is: "math" or `package.module:function` (errors name it)."""
    settings: dict[str, object] = field(default_factory=dict)
    """Values for those of `REWARD_SETTINGS` that `fn` names as parameters."""

    @classmethod
    def load(cls, path: str = DEFAULT_REWARD, **settings: object) -> Reward:
        """The function at `path` (`load_reward_fn`), given the `settings` it names."""
        fn = load_reward_fn(path)
        names = inspect.signature(fn).parameters
        return cls(fn, path, {k: v for k, v in settings.items() if k in names})

    def _call(self, responses: Sequence[str], problems: Sequence[Problem]) -> object:
        return self.fn(responses, problems, **self.settings)

    def __call__(
        self, responses: Sequence[str], problems: Sequence[Problem]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(rewards_B float32, correct_B bool) of the responses, checked (`RewardError`)."""
        if len(responses) != len(problems):
            raise ValueError(f"{len(responses)} responses but {len(problems)} problems")
        try:
            out = self._call(responses, problems)
        except Exception as err:
            where = self._failing_response(responses, problems)
            raise RewardError(f"reward {self.path} raised {_said(err)} {where}") from err
        return self._checked(out, len(responses))

    def _failing_response(self, responses: Sequence[str], problems: Sequence[Problem]) -> str:
        """Which response makes the function raise, found by calling it on each alone."""
        for b, (response, problem) in enumerate(zip(responses, problems)):
            try:
                self._call([response], [problem])
            except Exception:
                return f"on response {b}: {response[:60]!r}"
        return f"on a batch of {len(responses)} responses (none raises alone)"

    def _checked(self, out: object, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        name = f"reward {self.path}"
        pair = isinstance(out, tuple | list) and len(out) == 2
        if not pair or not all(hasattr(v, "__len__") and not isinstance(v, str) for v in out):
            raise RewardError(f"{name} returned {type(out).__name__}, not (rewards, correct)")
        rewards, correct = (list(values) for values in out)
        for what, values in (("rewards", rewards), ("verdicts", correct)):
            if len(values) != n:
                first = f"none for response {len(values)}" if len(values) < n else "too many"
                raise RewardError(
                    f"{name} returned {len(values)} {what} for {n} responses: {first}"
                )
        for b, value in enumerate(rewards):
            try:
                if isinstance(value, str | bytes):
                    raise TypeError
                rewards[b] = float(value)  # also numpy and 0-d torch numbers
            except (TypeError, ValueError):
                msg = f"{name}: reward {value!r} of response {b} is not a number"
                raise RewardError(msg) from None
            if not math.isfinite(rewards[b]):
                raise RewardError(f"{name}: reward {value} of response {b} is not finite")
        for b, verdict in enumerate(correct):
            if verdict not in (True, False):
                raise RewardError(f"{name}: verdict {verdict!r} of response {b} is not a bool")
        return torch.tensor(rewards, dtype=torch.float32), torch.tensor(
            [bool(v) for v in correct], dtype=torch.bool
        )
