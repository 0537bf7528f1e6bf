"""Held-out scores along a run, from its checkpoints: the long arm's accuracy curve.

`minimalrl compare --score-every K` keeps the checkpoints at multiples of K iterations
(`keep_checkpoint_every`) and, once the run has trained, scores each with the compare's held-out
set into RUN/curve_eval.json, one point at a time (a killed compare resumes with the next
unscored point). The point at the last iteration is the run's final score.
"""

from __future__ import annotations

import json
from pathlib import Path

from minimalrl.config import ConfigError, TrainConfig
from minimalrl.eval.heldout import HeldOut, score_model
from minimalrl.eval.metrics import read_metrics
from minimalrl.output import write_text_atomic

CURVE_FILE = "curve_eval.json"


def check_score_every(every: int, cfg: TrainConfig) -> None:
    """Refuse a scoring interval the run's checkpoints do not fall on."""
    if every < 0:
        raise ConfigError(f"--score-every must be >= 0, got {every}")
    if every and (not cfg.save_every or every % cfg.save_every):
        raise ConfigError(
            f"--score-every {every}: checkpoints are saved every {cfg.save_every} iterations "
            "(save_every), so the points to score must be multiples of it"
        )


def read_curve(run_dir: Path) -> list[dict]:
    """The scored points of a run ({iteration, optimizer_steps, scores}), by iteration; [] when
    it has none."""
    path = run_dir / CURVE_FILE
    if not path.is_file():
        return []
    return json.loads(path.read_text())["points"]


def score_curve(run_dir: Path, cfg: TrainConfig, heldout: HeldOut, every: int) -> list[dict]:
    """Score the checkpoints at multiples of `every` iterations (up to cfg.iterations) that
    RUN/curve_eval.json does not hold yet, writing it after each; all the points."""
    points = {p["iteration"]: p for p in read_curve(run_dir)}
    steps = _steps_by_iteration(read_metrics(run_dir))
    for it in range(every, cfg.iterations + 1, every):
        if it in points:
            continue
        ckpt = run_dir / "checkpoints" / f"iter_{it:06d}" / "policy"
        if not ckpt.is_dir():
            raise ConfigError(
                f"{ckpt} is missing: a run scored every {every} iterations must keep its "
                f"checkpoints there (keep_checkpoint_every={every})"
            )
        scores = score_model(str(ckpt), cfg, heldout)
        points[it] = {"iteration": it, "optimizer_steps": steps.get(it), "scores": scores}
        body = {"every": every, "points": [points[k] for k in sorted(points)]}
        write_text_atomic(run_dir / CURVE_FILE, json.dumps(body) + "\n")
    return [points[k] for k in sorted(points)]


def _steps_by_iteration(records: list[dict]) -> dict[int, int]:
    """Optimizer steps taken by the end of each iteration."""
    total, out = 0, {}
    for r in records:
        if "reward_mean" in r:  # a training iteration's record (not an eval-only row)
            total += int(r.get("update/optimizer_steps", 0))
            out[int(r["iteration"])] = total
    return out
