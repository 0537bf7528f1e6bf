"""The reward as a function: the math verifier by default, a user's own from the config, and a
one-line error naming the function and the response for anything unusable."""

from __future__ import annotations

import textwrap

import pytest
import torch

from minimalrl.config import ConfigError, TrainConfig
from minimalrl.data.problems import Problem
from minimalrl.reward import Reward, RewardError, math_reward

PROBLEMS = [Problem("What is 3 + 4?", "7"), Problem("What is 2 + 2?", "4")]

USER_MODULE = '''
import math

calls = []

def partial_credit(responses, problems, *, correct_reward=1.0):
    """1 for the right answer, 0.5 for any number, 0 else; correct = the right answer."""
    calls.append(correct_reward)
    correct = [r.strip().endswith(p.answer) for r, p in zip(responses, problems)]
    rewards = [correct_reward if ok else 0.5 if r[-1:].isdigit() else 0.0
               for r, ok in zip(responses, correct)]
    return rewards, correct

def raises_on_three(responses, problems):
    if any("3" in r for r in responses):
        raise ValueError("cannot read 3")
    return [0.0] * len(responses), [False] * len(responses)

def too_few(responses, problems):
    return [1.0] * (len(responses) - 1), [True] * len(responses)

def nan_second(responses, problems):
    return [0.0, math.nan][: len(responses)], [False] * len(responses)

def not_a_bool(responses, problems):
    return [0.0] * len(responses), ["yes"] * len(responses)

def one_value(responses, problems):
    return [0.0] * len(responses)
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    import sys

    sys.modules.pop("my_rewards", None)
    yield importlib.import_module("my_rewards")
    sys.modules.pop("my_rewards", None)


def test_math_reward_is_the_default():
    assert TrainConfig().reward == "math"
    rewards, correct = math_reward(["so 7", "it is 5"], PROBLEMS)
    assert (rewards, correct) == ([1.0, -1.0], [True, False])
    reward = Reward.load("math", correct_reward=1.0, wrong_reward=0.0, fallback_last_number=False)
    rewards_B, correct_B = reward(["\\boxed{7}", "so 4"], PROBLEMS)
    assert rewards_B.dtype == torch.float32 and correct_B.dtype == torch.bool
    assert rewards_B.tolist() == [1.0, 0.0] and correct_B.tolist() == [True, False]


def test_a_user_reward_plugs_in_from_the_config(user_module):
    cfg = TrainConfig(reward="my_rewards:partial_credit", correct_reward=2.0)
    settings = {"correct_reward": 2.0, "wrong_reward": -1.0, "fallback_last_number": True}
    reward = Reward.load(cfg.reward, **settings)
    assert reward.settings == {"correct_reward": 2.0}  # only what the function names
    rewards_B, correct_B = reward(["it is 7", "maybe 5"], PROBLEMS)
    assert rewards_B.tolist() == [2.0, 0.5] and correct_B.tolist() == [True, False]
    assert user_module.calls == [2.0]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_package.rewards:fn", "cannot import no_such_package.rewards: ModuleNotFound"),
        ("my_rewards:missing", "my_rewards has no function 'missing'"),
        ("my_rewards", "expected 'math', 'random' or 'package.module:function'"),
    ],
)
def test_a_reward_that_does_not_load_is_refused_with_the_config(user_module, path, message):
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig(reward=path)
    assert "\n" not in str(info.value) and path.split(":")[0] in str(info.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("raises_on_three", r"raises_on_three raised ValueError: cannot read 3 on response 1"),
        ("too_few", r"too_few returned 1 rewards for 2 responses: none for response 1"),
        ("nan_second", r"nan_second: reward nan of response 1 is not finite"),
        ("not_a_bool", r"not_a_bool: verdict 'yes' of response 0 is not a bool"),
        ("one_value", r"one_value returned list, not \(rewards, correct\)"),
    ],
)
def test_an_unusable_reward_is_one_line_naming_function_and_response(user_module, name, message):
    reward = Reward.load(f"my_rewards:{name}")
    with pytest.raises(RewardError, match=message) as info:
        reward(["it is 7", "it is 3"], PROBLEMS)
    assert "\n" not in str(info.value)


def test_a_failing_reward_stops_the_run_and_keeps_the_last_checkpoint(
    user_module, tiny_model_dir, toy_task, tmp_path, monkeypatch
):
    from test_trainer import toy_config

    from minimalrl.policy.checkpoint import latest_checkpoint
    from minimalrl.train.trainer import train

    cfg = toy_config(tiny_model_dir, toy_task, iterations=2, save_every=1, prompts_per_iteration=2,
                     samples_per_prompt=2)  # fmt: skip
    train(cfg.replace(iterations=1), tmp_path, progress=False)
    with pytest.raises(RewardError, match="nan_second"):
        train(cfg.replace(reward="my_rewards:nan_second"), tmp_path, resume=True, force=True,
              progress=False)  # fmt: skip
    assert latest_checkpoint(tmp_path / "checkpoints").name == "iter_000001"
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
