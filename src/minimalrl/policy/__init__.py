"""The policy seam: the one object that runs the model (generate, score, train steps, state).

`Policy` and its records load on first use, so that `minimalrl.policy.logprobs` (which the
rollout backends import) does not pull in the trainer's modules.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Policy", "Scores", "TrainResult", "prepare_device"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from minimalrl.policy import policy

        return getattr(policy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
