"""The paper's measurements: OUTPUT/metrics.jsonl (one object per iteration) and TensorBoard."""

from __future__ import annotations

import json
import math
from pathlib import Path

# Every iteration's record has these keys (a test pins the schema).
ITERATION_KEYS = (
    "iteration", "reward_mean", "accuracy", "entropy", "kl_to_init", "response_length",
    "prompts_all_correct", "prompts_all_wrong", "prompts_kept", "samples_kept", "clip_fraction",
    "grad_norm", "lr", "rollout_seconds", "update_seconds", "tokens_per_second",
)  # fmt: skip


def read_metrics(path: str | Path) -> list[dict]:
    """All records of a metrics.jsonl (a directory holding one, or the file)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class MetricsWriter:
    """Appends one JSON line per iteration (flushed at once) and mirrors scalars to TensorBoard."""

    def __init__(
        self, output: Path, *, truncate_after: int | None = None, tensorboard: bool = True
    ):
        self.path = output / "metrics.jsonl"
        if truncate_after is not None and self.path.exists():
            # On resume, drop records of iterations the checkpoint does not cover.
            kept = [r for r in read_metrics(self.path) if r.get("iteration", 0) < truncate_after]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(output / "tensorboard"))
            except ImportError:  # tensorboard is optional for logging
                self._tb = None

    def write(self, record: dict) -> None:
        clean = {k: _jsonable(v) for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")
        if self._tb is not None:
            step = int(clean.get("iteration", 0))
            for key, value in clean.items():
                if isinstance(value, int | float) and key != "iteration":
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _jsonable(value: object) -> object:
    if hasattr(value, "item"):
        value = value.item()  # type: ignore[union-attr]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
