"""The command line: clear errors for bad input, the registry listing, train/eval/plot."""

from __future__ import annotations

import json

import pytest

from minimalrl.algorithms import ALGORITHMS
from minimalrl.cli import main
from minimalrl.eval.metrics import read_metrics


def test_algorithms_lists_every_name(capsys):
    assert main(["algorithms"]) == 0
    out = capsys.readouterr().out
    for name in ALGORITHMS:
        assert f"| {name} " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--algo", "nope", "--output", "x"], "grpo"),
        (["train", "--set", "lr=-1", "--output", "x"], "lr must be > 0"),
        (["train", "--set", "bogus=1", "--output", "x"], "unknown config key 'bogus'"),
        (["train", "--set", "samples_per_prompt=1", "--output", "x"], "at least 2"),
        (["train", "--set", "clip_low=0", "--output", "x"], "clip_low must be > 0"),
        (["train", "--config", "missing.yaml", "--output", "x"], "missing.yaml"),
        (["eval", "--benchmark", "nosuchbench", "--limit", "1"], "nosuchbench"),
        (["eval", "--benchmark", "gsm8k", "--k", "0"], "k must be >= 1"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_yaml_names_the_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("algo: grpo\nlearning_rate: 3\n")
    assert main(["train", "--config", str(cfg), "--output", str(tmp_path / "o")]) == 2
    assert "learning_rate" in capsys.readouterr().err


def test_train_eval_plot_end_to_end(tiny_model_dir, toy_task, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--algo", "raft", "--output", str(out), "--no-progress"]
    sets = {"model": tiny_model_dir, "train_data": toy_task, "eval_data": toy_task,
            "iterations": 2, "prompts_per_iteration": 4, "samples_per_prompt": 2,
            "max_new_tokens": 4, "eval_every": 1, "fallback_last_number": "true"}  # fmt: skip
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    assert main(argv) == 0
    assert (out / "metrics.jsonl").is_file()
    # the run ends with its story: accuracy before -> after with intervals, time, where things are
    said = capsys.readouterr().out
    assert "held-out accuracy (greedy, 32 problems): " in said and "95% interval" in said
    assert "2 iterations in " in said
    assert f"plots: {out / 'plots'}/" in said and (out / "plots" / "reward.png").is_file()
    assert f"final checkpoint: {out / 'checkpoints' / 'iter_000002' / 'policy'}" in said
    assert f"--output {out} --resume" in said and "--set iterations=4" in said
    evals = [r for r in read_metrics(out) if "eval_accuracy" in r]
    assert [r["eval_problems"] for r in evals] == [32, 32, 32]
    assert main(["plot", str(out), "--output", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "reward.png").stat().st_size > 1000
    ev = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model_dir), "--benchmark", str(toy_task), "--k", "4",
            "--max-new-tokens", "4", "--limit", "5", "--output", str(ev), "--no-progress",
            "--fallback-last-number"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((ev / "summary.json").read_text())
    assert summary["problems"] == 5 and summary["k"] == 4
    assert 0 <= summary["avg@4"] <= summary["pass@4"] <= 1
    samples = [json.loads(line) for line in (ev / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 20 and {"response", "extracted", "correct"} <= set(samples[0])
