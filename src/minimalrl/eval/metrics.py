"""The paper's measurements: OUTPUT/metrics.jsonl (one object per iteration), mirrored to the
run's trackers (TensorBoard by default: `minimalrl.trackers`)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from minimalrl.output import OutputError, describe_write_error, write_text_atomic
from minimalrl.trackers import TrackedRun, Trackers

# Every iteration's record has these keys (a test pins the schema).
ITERATION_KEYS = (
    "iteration", "reward_mean", "accuracy", "entropy", "kl_to_init", "response_length",
    "prompts_all_correct", "prompts_all_wrong", "prompts_kept", "samples_kept", "clip_fraction",
    "grad_norm", "lr", "rollout_seconds", "update_seconds", "tokens_per_second",
)  # fmt: skip


def read_metrics(path: str | Path) -> list[dict]:
    """All records of a metrics.jsonl (a directory holding one, or the file).

    Raises ValueError naming the file and line of a record that is not JSON."""
    records, torn = _read_records(path)
    if torn is not None:
        raise ValueError(torn)
    return records


def _read_records(path: str | Path) -> tuple[list[dict], str | None]:
    """The records, and a message when the last line is torn (cut off mid-write: a crash or a full
    disk during an append); that line is left out. A bad line before the last raises ValueError."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    records, torn = [], None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            message = f"{path}:{lineno}: not a JSON record ({err.msg} at column {err.colno})"
            if lineno < len(lines):
                raise ValueError(message) from None
            torn = message
    return records, torn


class MetricsWriter:
    """Appends one JSON line per iteration (flushed at once) and mirrors its numbers to the
    trackers (default: TensorBoard alone; `tensorboard=False` and no trackers: none)."""

    def __init__(
        self,
        output: Path,
        *,
        truncate_after: int | None = None,
        tensorboard: bool = True,
        trackers: Trackers | None = None,
    ):
        self.path = output / "metrics.jsonl"
        if truncate_after is not None and self.path.exists():
            self._truncate(truncate_after)
        if trackers is None:
            names = ["tensorboard"] if tensorboard else []
            trackers = Trackers(names, TrackedRun(output, output.name), resume=False)
        self.trackers = trackers

    def _truncate(self, truncate_after: int) -> None:
        """On resume, keep the records of the iterations the checkpoint covers (it is the truth):
        later ones and a torn last line go, replaced atomically (a crash here loses nothing)."""
        records, torn = _read_records(self.path)
        if torn is not None:
            print(f"{torn}; dropped this torn last line (the checkpoint holds the truth)",
                  file=sys.stderr)  # fmt: skip
        kept = [r for r in records if r.get("iteration", 0) < truncate_after]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict) -> None:
        clean = {k: _jsonable(v) for k, v in record.items()}
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(clean) + "\n")
        except OSError as err:
            cause = describe_write_error(err, self.path.parent)
            raise OutputError(f"{self.path}: cannot append the record ({cause})") from None
        self.trackers.log(clean)  # after the record: a tracker never holds what the file lacks

    def close(self) -> None:
        self.trackers.close()


def _jsonable(value: object) -> object:
    if hasattr(value, "item"):
        value = value.item()  # type: ignore[union-attr]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
