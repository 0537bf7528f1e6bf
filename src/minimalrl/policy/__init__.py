"""The policy seam: the one object that runs the model (generate, score, train steps, state).

`Policy` and its records load on first use: the rollout backends stand on this package's model
wing (`logprobs`, `models`, `fast/`), and `Policy` stands on the backends, so importing the wing
must not load the seam.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Policy", "Scores", "TrainResult", "prepare_device"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from minimalrl.policy import policy

        return getattr(policy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
