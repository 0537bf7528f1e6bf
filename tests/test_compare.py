"""`minimalrl compare` end to end on a tiny model: two algorithms, two iterations, a report."""

from __future__ import annotations

import json

from minimalrl.cli import main


def test_compare_writes_a_report_and_resumes(tiny_model_dir, toy_task, tmp_path, capsys):
    cfg = tmp_path / "cmp.yaml"
    cfg.write_text(
        f"model: {tiny_model_dir}\ntrain_data: {toy_task}\neval_data: {toy_task}\n"
        "iterations: 2\nprompts_per_iteration: 4\nsamples_per_prompt: 4\nmax_new_tokens: 4\n"
        "fallback_last_number: true\nlr: 0.01\neval_every: 1\n"
    )
    out = tmp_path / "cmp"
    argv = ["compare", "--algos", "raft,grpo", "--config", str(cfg), "--eval-k", "2",
            "--eval-limit", "8", "--output", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    assert "| initial model |" in report and "| raft |" in report and "| grpo |" in report
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "all_eval_accuracy.png" in figures and "all_entropy.png" in figures
    assert "](figures/all_eval_accuracy.png)" in report
    results = json.loads((out / "results.json").read_text())
    assert [r["algo"] for r in results["after"]] == ["raft", "grpo"]
    # Run again: finished runs are skipped, the report is rewritten from their results.
    mtime = (out / "runs" / "raft_seed0" / "metrics.jsonl").stat().st_mtime
    assert main(argv) == 0
    assert (out / "runs" / "raft_seed0" / "metrics.jsonl").stat().st_mtime == mtime


def test_compare_rejects_unknown_algorithm_before_training(tmp_path, capsys):
    argv = ["compare", "--algos", "grpo,nope", "--output", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
