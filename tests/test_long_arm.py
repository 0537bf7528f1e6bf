"""The long arm: a longer run whose first iterations are the shorter run's, scored on the
held-out set from checkpoints along training (`minimalrl compare --score-every`), and its report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from minimalrl.cli import main
from minimalrl.config import TrainConfig
from minimalrl.eval.curve import CURVE_FILE, read_curve
from minimalrl.eval.report import write_report
from minimalrl.eval.report.prose import costs
from minimalrl.eval.report.runs import (
    LONG_ARM,
    Runs,
    measure_findings,
    paired_at,
    pooled_curve,
    same_start,
    shorter_run,
)
from minimalrl.eval.runspec import RunSpec
from minimalrl.policy.checkpoint import _prune


def test_keep_checkpoint_every_keeps_the_multiples_past_the_newest(tmp_path):
    for it in range(10, 80, 10):
        (tmp_path / f"iter_{it:06d}").mkdir()
    _prune(tmp_path, 1, current="iter_000070", every=30)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "iter_000030", "iter_000060", "iter_000070",
    ]  # fmt: skip
    _prune(tmp_path, 1, current="iter_000070")  # 0: the newest only, as before
    assert [p.name for p in tmp_path.iterdir()] == ["iter_000070"]
    assert TrainConfig(keep_checkpoint_every=30).keep_checkpoint_every == 30


@pytest.fixture
def long_argv(tiny_model_dir, toy_task, tmp_path):
    cfg = tmp_path / "cmp.yaml"
    cfg.write_text(
        f"model: {tiny_model_dir}\ntrain_data: {toy_task}\neval_data: {toy_task}\n"
        "iterations: 2\nprompts_per_iteration: 4\nsamples_per_prompt: 4\nmax_new_tokens: 4\n"
        "minibatch_size: 16\nfallback_last_number: true\nlr: 0.01\neval_every: 0\n"
        "temperature: 1.0\nsave_every: 1\n"
    )
    out = tmp_path / "cmp"
    argv = ["compare", "--algos", "grpo,grpo:iterations=4", "--seeds", "0", "--config",
            str(cfg), "--eval-n", "2", "--eval-limit", "8", "--output", str(out),
            "--no-progress", "--score-every", "2"]  # fmt: skip
    return argv, out


def test_a_longer_run_starts_as_the_shorter_one_and_is_scored_along_training(long_argv):
    argv, out = long_argv
    assert main([*argv, "--keep-checkpoints"]) == 0
    short, long = out / "runs/grpo_seed0", out / "runs/grpo+iterations=4_seed0"
    # The checkpoints at multiples of 2 were kept through training, the others pruned.
    assert sorted(p.name for p in (long / "checkpoints").glob("iter_*")) == [
        "iter_000002", "iter_000004",
    ]  # fmt: skip
    # Its first 2 iterations computed what the 2-iteration run did: every logged number but the
    # timings, and the held-out scores of its checkpoint at 2 are the short run's final ones.
    rows = [json.loads(line) for line in (long / "metrics.jsonl").read_text().splitlines()]
    short_rows = [json.loads(line) for line in (short / "metrics.jsonl").read_text().splitlines()]
    untimed = [{k: v for k, v in r.items() if "second" not in k} for r in rows]
    assert len(rows) == 4
    assert untimed[:2] == [{k: v for k, v in r.items() if "second" not in k} for r in short_rows]
    curve = read_curve(long)
    assert [(p["iteration"], p["optimizer_steps"]) for p in curve] == [(2, 2), (4, 4)]
    final_short = json.loads((short / "final_eval.json").read_text())
    final_long = json.loads((long / "final_eval.json").read_text())
    assert curve[0]["scores"]["correct_counts"] == final_short["after"]["correct_counts"]
    assert curve[0]["scores"]["greedy_correct"] == final_short["after"]["greedy_correct"]
    assert final_long["after"] == curve[1]["scores"]  # the last point is the final score
    assert final_long["score_every"] == 2 and final_long["config"]["keep_checkpoint_every"] == 0
    assert final_long["optimizer_steps"] == 4 and final_long["config"]["iterations"] == 4
    runs = Runs(out, [final_short, final_long], json.loads((out / "initial_eval.json").read_text()))
    assert same_start(runs, "grpo:iterations=4", [0]) == {0: True}
    report = (out / "report.md").read_text()
    assert "](figures/heldout_along_training.png)" in report
    assert "| iteration | optimizer steps | grpo avg@2 | grpo:iterations=4 avg@2 |" in report
    # A compare killed while scoring resumes with the next point: the first is not rescored.
    (long / "final_eval.json").unlink()
    body = json.loads((long / CURVE_FILE).read_text())
    (long / CURVE_FILE).write_text(json.dumps({**body, "points": body["points"][:1]}))
    assert main(argv) == 0
    again = read_curve(long)
    assert (
        again[0] == curve[0]
        and again[1]["scores"]["correct_counts"] == (curve[1]["scores"]["correct_counts"])
    )
    assert not (long / "checkpoints").exists()  # deleted once scored


def test_score_every_must_fall_on_saved_checkpoints(long_argv, capsys):
    argv, out = long_argv
    assert main([*argv[:-1], "3", "--set", "save_every=2"]) == 2
    assert "--score-every 3: checkpoints are saved every 2 iterations" in capsys.readouterr().err
    assert main([*argv[:-1], "-2"]) == 2
    assert "--score-every must be >= 0, got -2" in capsys.readouterr().err
    assert not out.exists()  # refused before anything was trained or scored


def _fake_run(out: Path, name: str, seed: int, counts: list[list[int]], *, finish: bool) -> dict:
    """A run of 4 iterations (2 optimizer steps each) scored at iterations 2 and 4 (`counts`: the
    correct counts of 2 samples at each); its final_eval.json when `finish`."""
    run = out / "runs" / RunSpec.parse(name).dir_name(seed)
    run.mkdir(parents=True)
    rows = [{"iteration": i, "reward_mean": 0.0, "accuracy": 0.5, "entropy": 0.3,
             "response_length": 10.0, "update/optimizer_steps": 2, "update_seconds": i}
            for i in range(1, 5)]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    points = [
        {"iteration": it, "optimizer_steps": 2 * it,
         "scores": {"correct_counts": c, "greedy_correct": [int(x > 0) for x in c],
                    "seconds": 3.0}}
        for it, c in zip((2, 4), counts, strict=False)
    ]  # fmt: skip
    (run / CURVE_FILE).write_text(json.dumps({"every": 2, "points": points}))
    spec = RunSpec.parse(name)
    after = {**points[-1]["scores"], "avg_at_n": float(np.mean(counts[-1]) / 2),
             "pass_at_k": {"1": 0.5, "2": 0.5}, "greedy": 0.5}  # fmt: skip
    result = {"run": name, "algo": spec.algo, "seed": seed, "control": None,
              "settings": dict(spec.settings), "iterations": 4, "optimizer_steps": 8,
              "config": {}, "after": after}  # fmt: skip
    if finish:
        (run / "final_eval.json").write_text(json.dumps(result))
    return result


INITIAL = {
    "n": 2, "problems": 4, "temperature": 1.0, "correct_counts": [0, 1, 1, 0],
    "greedy_correct": [0, 1, 0, 0], "avg_at_n": 0.25, "pass_at_k": {"1": 0.25, "2": 0.5},
    "greedy": 0.25, "model": "m", "model_sha256": "0" * 64, "seconds": 1.0,
    "settings": {"data": "toy", "temperature": 1.0, "greedy": True},
}  # fmt: skip


def test_the_report_follows_the_long_arm_while_it_runs(tmp_path):
    a, b = LONG_ARM.a, LONG_ARM.b
    assert (shorter_run(a), shorter_run(b)) == ("grpo", "raft++")
    names = [a, b]
    # Nothing run yet: the finding is not run, the section says so, no figure.
    write_report(tmp_path, TrainConfig(), names, [0, 1], INITIAL, [], "RERUN")
    report = (tmp_path / "report.md").read_text()
    assert f"- `{a}`: not run yet." in report and f"- `{b}`: not run yet." in report
    assert "GRPO overtakes RAFT++ within 240 optimizer steps | " in report
    assert not (tmp_path / "figures/heldout_along_training.png").exists()
    # Seed 0 of both finished; seed 1 of a scored at iteration 2 only, still training.
    results = [
        _fake_run(tmp_path, a, 0, [[1, 1, 2, 0], [2, 2, 2, 1]], finish=True),
        _fake_run(tmp_path, b, 0, [[2, 1, 2, 0], [2, 1, 2, 0]], finish=True),
    ]
    _fake_run(tmp_path, a, 1, [[1, 2, 2, 0]], finish=False)
    runs = Runs(tmp_path, results, INITIAL)
    curve = pooled_curve(runs, a, [0, 1])
    assert [(p.iteration, p.optimizer_steps, p.seeds) for p in curve] == [
        (0, 0, (0, 1)), (2, 4, (0, 1)), (4, 8, (0,)),
    ]  # fmt: skip
    assert curve[1].mean == pytest.approx((4 / 8 + 5 / 8) / 2)  # avg@2 of seeds 0 and 1
    assert curve[2].per_seed == (7 / 8,)
    seeds, effect, _ = paired_at(runs, a, b, [0, 1], 4)
    assert seeds == 1 and effect == pytest.approx(7 / 8 - 5 / 8)
    finding = next(m for m in measure_findings(runs) if m.finding is LONG_ARM)
    assert finding.now.seeds == 1 and finding.now.effect == pytest.approx(0.25)
    write_report(tmp_path, TrainConfig(), names, [0, 1], INITIAL, results, "RERUN")
    report = (tmp_path / "report.md").read_text()
    assert (
        f"- `{a}`: finished at seeds [0]; scored along training at seeds 0 (to iteration "
        "4), 1 (to iteration 2)." in report
    )
    assert f"| {a} − {b}: Δ avg@2 | Δ greedy |" in report
    assert "| 4 | 8 | 87.5 [" in report  # a at iteration 4: one seed
    assert (tmp_path / "figures/heldout_along_training.png").is_file()
    # the training curves of the long arm are its own set; "all" (the shared run length) is empty
    assert "### Curves: long_arm" in report and "### Curves: all" not in report
    row = next(f for f in json.loads((tmp_path / "summary.json").read_text())["findings"]
               if f["name"] == LONG_ARM.name)  # fmt: skip
    assert row["effect"] == pytest.approx(0.25) and row["seeds"] == 1


def test_the_cost_per_run_is_given_for_each_run_length_apart(tmp_path):
    """A run 4x as long is not averaged with the short ones; scoring along training costs each
    point (the last one is the final score, not scored again)."""
    long = _fake_run(tmp_path, LONG_ARM.a, 0, [[1, 1, 2, 0], [2, 2, 2, 1]], finish=True)
    short_dir = tmp_path / "runs" / RunSpec.parse("grpo").dir_name(0)
    short_dir.mkdir(parents=True)
    (short_dir / "metrics.jsonl").write_text(
        json.dumps({"iteration": 1, "rollout_seconds": 9.0, "update_seconds": 3.0}) + "\n"
    )
    short = {**long, "run": "grpo", "settings": {}, "iterations": 1, "optimizer_steps": 2,
             "after": {**long["after"], "seconds": 1.5}}  # fmt: skip
    # scored along training at iteration 2 only: its end was scored apart, in 15 s
    cut = _fake_run(tmp_path, LONG_ARM.b, 0, [[1, 1, 2, 0]], finish=True)
    cut["after"]["seconds"] = 15.0
    results = [long, short, cut]
    line = costs(Runs(tmp_path, results, INITIAL), results, "RERUN")
    # training: 12 s, and 1 + 2 + 3 + 4 s each; scoring: 1.5 s, and 2 points x 3 s, 3 + 15 s
    assert line.startswith(
        "Cost per run at 1 iterations (mean of 1): training 0.2 min, held-out scoring 0.0 min; "
        "at 4 iterations (mean of 2): training 0.2 min, held-out scoring 0.2 min (up to 2 points "
        "along training); the initial model was scored once (0.0 min)."
    )
