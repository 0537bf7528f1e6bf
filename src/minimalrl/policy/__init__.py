"""The policy seam: the one object that runs the model (generate, score, train steps, state)."""

from minimalrl.policy.policy import Policy, Scores, TrainResult, prepare_device

__all__ = ["Policy", "Scores", "TrainResult", "prepare_device"]
