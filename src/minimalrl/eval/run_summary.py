"""The few lines a finished training run ends with: did it learn, how long, where things are.

Held-out accuracy is a proportion over N problems, so it comes with an interval: Wilson's for
each accuracy, and for the change a paired one over the same problems (each problem contributes
d = after − before ∈ {−1, 0, 1}; mean ± 1.96·sd/√N), which is much narrower than two unpaired
intervals when most problems keep their verdict.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

Z95 = 1.959964


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion correct / n ((0, 1) when n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_change(
    before: list[bool], after: list[bool], z: float = Z95
) -> tuple[float, float, float]:
    """(mean change, low, high): the 95% normal interval of the mean of after_i − before_i."""
    if len(before) != len(after) or not before:
        raise ValueError(f"need two verdict lists of one length, got {len(before)}, {len(after)}")
    d = [int(a) - int(b) for a, b in zip(after, before, strict=True)]
    n = len(d)
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / max(n - 1, 1)
    half = z * math.sqrt(var / n)
    return mean, mean - half, mean + half


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def accuracy_lines(before: list[bool], after: list[bool]) -> list[str]:
    """Held-out accuracy before -> after, with intervals, as the summary states it."""
    n = len(after)
    b_lo, b_hi = wilson_interval(sum(before), n)
    a_lo, a_hi = wilson_interval(sum(after), n)
    change, lo, hi = paired_change(before, after)
    verdict = "a rise" if lo > 0 else "a fall" if hi < 0 else "no clear change"
    return [
        f"held-out accuracy (greedy, {n} problems): {_pct(sum(before) / n)} "
        f"[{_pct(b_lo)}, {_pct(b_hi)}] -> {_pct(sum(after) / n)} [{_pct(a_lo)}, {_pct(a_hi)}]",
        f"change: {100 * change:+.1f} points, 95% interval [{100 * lo:+.1f}, {100 * hi:+.1f}] "
        f"({verdict})",
    ]


def unpaired_lines(first: dict, last: dict) -> list[str]:
    """Held-out accuracy of two metrics records (a resumed run: no per-problem verdicts of the
    first evaluation), each with its Wilson interval."""
    parts = []
    for r in (first, last):
        n = int(r.get("eval_problems") or 0)
        acc = r["eval_accuracy"]
        lo, hi = wilson_interval(round(acc * n), n) if n else (0.0, 1.0)
        parts.append(f"{_pct(acc)} [{_pct(lo)}, {_pct(hi)}] at iteration {r['iteration']}")
    n = last.get("eval_problems", "?")
    return [f"held-out accuracy (greedy, {n} problems): {parts[0]} -> {parts[1]}"]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def summary_lines(
    *,
    output: Path,
    iterations: int,
    seconds: float,
    first_iteration: int = 0,
    eval_records: list[dict] | None = None,
    checkpoint: Path | None,
    eval_before: list[bool] | None,
    eval_after: list[bool] | None,
    continue_command: str,
    plots: Path | None,
    benchmark: str = "gsm8k",
) -> list[str]:
    """The end-of-run summary: accuracy before -> after (paired when this process has both
    evaluations' verdicts, else from `eval_records`), iterations and time, where the metrics,
    plots, TensorBoard logs and final checkpoint are, and the commands to evaluate or continue."""
    lines = []
    if eval_before and eval_after and len(eval_before) == len(eval_after):
        lines += accuracy_lines(eval_before, eval_after)
    elif eval_records and len(eval_records) >= 2:
        lines += unpaired_lines(eval_records[0], eval_records[-1])
    if first_iteration:
        done = f"iterations {first_iteration + 1}-{iterations} (resumed after {first_iteration})"
        lines.append(f"{done} in {_duration(seconds)}")
    else:
        lines.append(f"{iterations} iterations in {_duration(seconds)}")
    lines.append(f"metrics: {output / 'metrics.jsonl'}")
    if plots is not None:
        lines.append(f"plots: {plots}/")
    lines.append(f"TensorBoard: tensorboard --logdir {output / 'tensorboard'}")
    if checkpoint is not None:
        policy = checkpoint / "policy"
        lines.append(f"final checkpoint: {policy} (AutoModelForCausalLM.from_pretrained loads it)")
        evaluate = ["minimalrl", "eval", "--model", str(policy), "--benchmark", benchmark]
        lines.append(f"evaluate it: {shlex.join(evaluate)}")
    lines.append(f"continue it: {continue_command}")
    return lines
