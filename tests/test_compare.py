"""`minimalrl compare` end to end on a tiny model, and the pieces its report is made of."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from minimalrl.cli import main
from minimalrl.config import ConfigError, TrainConfig
from minimalrl.data.problems import Problem
from minimalrl.eval.findings import mean_interval
from minimalrl.eval.heldout import pass_at_k_table, summarise_counts
from minimalrl.eval.runspec import RunSpec
from minimalrl.reward import Reward
from minimalrl.reward.control import coin, random_reward


@pytest.fixture
def compare_argv(tiny_model_dir, toy_task, tmp_path):
    cfg = tmp_path / "cmp.yaml"
    cfg.write_text(
        f"model: {tiny_model_dir}\ntrain_data: {toy_task}\neval_data: {toy_task}\n"
        "iterations: 2\nprompts_per_iteration: 4\nsamples_per_prompt: 4\nmax_new_tokens: 4\n"
        "minibatch_size: 16\nfallback_last_number: true\nlr: 0.01\neval_every: 0\n"
        "temperature: 1.0\n"
    )
    out = tmp_path / "cmp"
    algos = "raft,grpo,grpo:random_reward,raft:filtered=zero"
    argv = ["compare", "--algos", algos, "--seeds", "0,1", "--config", str(cfg),
            "--eval-n", "2", "--eval-limit", "8", "--output", str(out),
            "--no-progress"]  # fmt: skip
    return argv, out


def test_compare_writes_report_and_summary_then_skips_finished_runs(compare_argv, capsys):
    argv, out = compare_argv
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    for row in ("| initial model |", "| raft |", "| grpo |", "| grpo:random_reward |"):
        assert row in report
    assert "## The paper's findings at this scale" in report
    assert "all equal, 2" in report  # minibatch = the whole batch: one step per iteration
    config = argv[argv.index("--config") + 1]
    rerun = f"`minimalrl compare --config {config} --eval-n 2 --eval-limit 8 --algos RUN --seeds"
    assert rerun in report
    assert "](figures/all_entropy.png)" in report and (out / "figures/initial_regime.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval"]["problems"] == 8 and summary["eval"]["k"] == 2
    runs = summary["runs"]
    assert [(r["algo"], r["seed"], r["control"], r["settings"]) for r in runs] == [
        ("raft", 0, None, {}), ("grpo", 0, None, {}), ("grpo", 0, "random_reward", {}),
        ("raft", 0, None, {"filtered": "zero"}),
        ("raft", 1, None, {}), ("grpo", 1, None, {}), ("grpo", 1, "random_reward", {}),
        ("raft", 1, None, {"filtered": "zero"}),
    ]  # fmt: skip
    assert "| raft:filtered=zero |" in report
    assert "## Ablations: runs with settings of their own" in report
    assert "| raft:filtered=zero | raft | 2 | 2/2 vs 2/2 |" in report
    zeroed = json.loads((out / "runs/raft+filtered=zero_seed0/final_eval.json").read_text())
    assert zeroed["config"]["filtered"] == "zero"
    assert all(r["iterations"] == 2 and r["optimizer_steps"] == 2 for r in runs)
    assert set(runs[0]["pass_at_k"]["after"]) == {"1", "2"}
    names = {f["name"] for f in summary["findings"]}
    assert {"raft_strong_baseline", "real_reward_beats_random"} <= names
    for f in summary["findings"]:
        assert f["verdict"] in ("holds", "contradicted", "inconclusive") and f["seeds"] == 2
        assert f["verdict_first_seeds"] == f["verdict"] and f["first_seeds"] == 2  # seeds 0, 1
        assert set(f["seeds_to_settle"]) == {"seeds", "verdict", "why"}
    assert "| verdict, seeds 0-2 | verdict, all seeds | seeds | seeds to settle |" in report
    # The control's coin is the initial model's accuracy at the training temperature.
    initial = json.loads((out / "initial_eval.json").read_text())
    assert set(initial["machine"]) == {"cpu", "flags"}  # where the initial model was scored
    control = json.loads((out / "runs/grpo+random_reward_seed1/final_eval.json").read_text())
    assert control["config"]["reward"] == "random"
    assert control["config"]["random_reward_p"] == initial["train_temperature_avg"]
    assert not (out / "runs/grpo_seed0/checkpoints").exists()  # deleted once scored
    # Run again: finished runs are skipped, the report is rewritten from their results.
    mtime = (out / "runs/raft_seed0/metrics.jsonl").stat().st_mtime
    before = (out / "summary.json").read_text()
    assert main(argv) == 0
    assert (out / "runs/raft_seed0/metrics.jsonl").stat().st_mtime == mtime
    assert (out / "summary.json").read_text() == before
    assert main([*argv, "--report-only"]) == 0
    # A report while some runs have not finished (the grid still going): they are left out.
    rest = [*argv, "--report-only"]
    rest[rest.index(argv[2])] = "raft,grpo,ppo,grpo:random_reward"
    assert main(rest) == 0
    assert "| ppo |" not in (out / "report.md").read_text()
    # A finished run made with another config is not reused silently.
    assert main([*argv, "--set", "lr=0.02"]) == 2
    assert (
        "raft_seed0/final_eval.json: this run finished with another config (lr: 0.01 there, "
        "0.02 here)" in capsys.readouterr().err
    )


def test_compare_refuses_results_of_another_initial_model(compare_argv, capsys):
    argv, out = compare_argv
    out.mkdir()
    (out / "initial_eval.json").write_text(
        json.dumps({"model": "other", "model_sha256": "0" * 64, "settings": {}})
    )
    assert main(argv) == 2
    assert "initial_eval.json: made from model other" in capsys.readouterr().err


def test_compare_says_when_the_same_model_path_holds_other_weights(tmp_path):
    """A warm start remade on another machine: same path and settings, other sha256."""
    from dataclasses import asdict

    from minimalrl.config_file import build_config
    from minimalrl.eval.heldout import HeldOut
    from minimalrl.train.compare import REMADE, initial_scores

    model = tmp_path / "warm_start"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights made here")
    base = build_config(None, {"model": str(model)})
    heldout = HeldOut(data="arithmetic:n=8")
    saved = {"model": str(model), "model_sha256": "0" * 64, "settings": asdict(heldout)}
    (tmp_path / "initial_eval.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError) as err:
        initial_scores(base, heldout, tmp_path)
    assert str(err.value).endswith(REMADE)
    saved["settings"] = {**saved["settings"], "n": 8}  # other settings: not a remade model
    (tmp_path / "initial_eval.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError) as err:
        initial_scores(base, heldout, tmp_path)
    assert str(err.value).endswith("use another --output")


def test_a_model_remade_to_rounding_is_accepted_a_retrained_one_is_not(
    tiny_model_dir, tmp_path, capsys
):
    """Held to the recorded weights' sketch: 1e-7 of their norm away (what replayed rollouts
    leave) pools, 1e-3 (training sent elsewhere) is refused, saying how far."""
    from dataclasses import asdict

    from transformers import AutoModelForCausalLM

    from minimalrl.config_file import build_config
    from minimalrl.eval.heldout import HeldOut
    from minimalrl.eval.provenance import model_fingerprint, weights_sketch
    from minimalrl.train.compare import initial_scores

    heldout = HeldOut(data="arithmetic:n=8")
    saved = {
        "model": "m", "model_sha256": model_fingerprint(str(tiny_model_dir)),
        "settings": asdict(heldout), "model_sketch": weights_sketch(str(tiny_model_dir)),
    }  # fmt: skip
    (tmp_path / "initial_eval.json").write_text(json.dumps(saved))
    torch.manual_seed(0)
    for scale, accepted in ((1e-7, True), (1e-3, False)):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + scale * torch.randn_like(p))
        model.save_pretrained(tmp_path / f"remade_{scale}")
        base = build_config(None, {"model": str(tmp_path / f"remade_{scale}")})
        if accepted:
            got = initial_scores(base, heldout, tmp_path)
            assert got["initial_sha256"] == model_fingerprint(base.model) != saved["model_sha256"]
            err = capsys.readouterr().err
            assert re.search(r"but within 1(\.\d)?e-07 of its weights \(remade: rounding\)", err)
        else:
            with pytest.raises(ConfigError, match=r", 0\.00\d+ of their norm away"):
                initial_scores(base, heldout, tmp_path)


def test_compare_rejects_unknown_algorithm_or_control_before_training(tmp_path, capsys):
    for algos in ("grpo,nope", "grpo:coin"):
        argv = ["compare", "--algos", algos, "--output", str(tmp_path / "x")]
        assert main(argv) == 2
        assert algos.split(",")[-1].split(":")[-1] in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def test_run_spec_sets_the_control_reward():
    spec = RunSpec.parse("grpo:random_reward")
    assert spec.name == "grpo:random_reward" and spec.dir_name(2) == "grpo+random_reward_seed2"
    cfg = spec.config(TrainConfig(), seed=3, control_p=0.25)
    assert (cfg.algo, cfg.seed, cfg.reward, cfg.random_reward_p) == ("grpo", 3, "random", 0.25)
    plain = RunSpec.parse("raft").config(TrainConfig(), seed=1, control_p=0.25)
    assert plain.reward == "math"


def test_run_spec_settings_of_its_own():
    spec = RunSpec.parse("reinforce_rej:filtered=drop")
    assert spec.name == "reinforce_rej:filtered=drop"
    assert spec.dir_name(0) == "reinforce_rej+filtered=drop_seed0"
    base = TrainConfig(filtered="zero", lr=1e-5)
    cfg = spec.config(base, seed=1, control_p=0.5)
    assert (cfg.algo, cfg.seed, cfg.filtered, cfg.lr) == ("reinforce_rej", 1, "drop", 1e-5)
    both = RunSpec.parse("grpo:random_reward:lr=2e-6")
    assert both.name == "grpo:random_reward:lr=2e-6"
    cfg = both.config(base, seed=0, control_p=0.3)
    assert (cfg.reward, cfg.lr, cfg.random_reward_p) == ("random", 2e-6, 0.3)
    assert RunSpec.parse(both.name) == both  # a report finds the run's folder from its name
    for bad, message in (
        ("grpo:lrr=1", "run 'grpo:lrr=1': unknown config key 'lrr'; did you mean 'lr'"),
        ("grpo:seed=3", r"\['seed'\] come from --algos and --seeds"),
        ("grpo:coin", "'coin' is neither a control"),
        ("grpo:lr=fast", "lr: cannot read 'fast'"),
    ):
        with pytest.raises(ConfigError, match=message):
            RunSpec.parse(bad)
    with pytest.raises(ConfigError, match="filtered must be one of"):
        RunSpec.parse("grpo:filtered=sometimes").config(base, seed=0, control_p=0.5)


def test_random_reward_ignores_correctness_and_is_fixed_by_its_inputs():
    problems = [Problem("What is 1 + 1?", "2", id=f"p{i}") for i in range(4000)]
    right = ["2"] * 4000
    rewards, heads = random_reward(right, problems, random_reward_p=0.3, seed=5)
    assert abs(np.mean(heads) - 0.3) < 0.03  # 4000 coins: std of the mean 0.007
    assert set(rewards) == {1.0, -1.0}
    assert [r == 1.0 for r in rewards] == heads
    again, _ = random_reward(right[:10], problems[:10], random_reward_p=0.3, seed=5)
    assert again == rewards[:10]  # no hidden state: a rerun or another batching agrees
    _, wrong_heads = random_reward(["3"] * 4000, problems, random_reward_p=0.3, seed=5)
    assert abs(np.mean(wrong_heads) - 0.3) < 0.03  # wrong answers: the same mean reward
    assert coin(5, "p0", "2") != coin(5, "p0", "3") != coin(6, "p0", "3")
    assert random_reward(right[:50], problems[:50], random_reward_p=0.0)[1] == [False] * 50
    assert random_reward(right[:50], problems[:50], random_reward_p=1.0)[1] == [True] * 50


def test_random_reward_is_a_built_in_reward_with_its_settings():
    reward = Reward.load("random", correct_reward=1.0, wrong_reward=0.0, random_reward_p=1.0,
                         seed=0, fallback_last_number=True)  # fmt: skip
    rewards, correct = reward(["nonsense"], [Problem("q", "1", id="a")])
    assert rewards.tolist() == [1.0] and correct.tolist() == [True]
    with pytest.raises(ConfigError, match="random_reward_p"):
        TrainConfig(reward="random", random_reward_p=1.5)


def test_pass_at_k_and_avg_from_counts_by_hand():
    # n = 4; counts 0, 1, 4: pass@1 = c/4; pass@2 = 1 - C(4-c, 2)/C(4, 2): 0, 1/2, 1
    s = summarise_counts(np.array([0, 1, 4]), 4)
    assert s["avg_at_n"] == pytest.approx(5 / 12)
    assert s["pass_at_k"]["1"] == pytest.approx(5 / 12)
    assert s["pass_at_k"]["2"] == pytest.approx((0 + 0.5 + 1) / 3)
    assert s["pass_at_k"]["4"] == pytest.approx(2 / 3)
    table = pass_at_k_table(np.array([[0, 1], [2, 4]]), 4, 2)
    np.testing.assert_allclose(table, [[0, 0.5], [1 - 1 / 6, 1]])


def test_mean_interval_covers_the_mean_and_shrinks_with_problems():
    rng = np.random.default_rng(0)
    # One seed: only the problems vary, and the width goes as 1/sqrt(problems) (sqrt(40) = 6.3
    # here; the 0/1 scores' sd is ~0.5 in both tables).
    small = rng.integers(0, 2, size=(1, 50)).astype(float)
    large = rng.integers(0, 2, size=(1, 2000)).astype(float)
    for x in (small, large):
        mean, (lo, hi) = mean_interval(x)
        assert lo < mean < hi and mean == pytest.approx(x.mean())
    assert np.diff(mean_interval(large)[1])[0] < np.diff(mean_interval(small)[1])[0] / 4
    # A constant table has no spread.
    mean, (lo, hi) = mean_interval(np.full((2, 5), 0.25))
    assert mean == 0.25 and lo == pytest.approx(0.25, abs=1e-15) and hi == pytest.approx(0.25)


def test_a_per_run_finding_on_one_seed_has_no_interval_and_no_verdict(tmp_path):
    from minimalrl.eval.findings import FINDINGS
    from minimalrl.eval.report.runs import Runs

    initial = {"n": 2, "correct_counts": [0, 1, 2]}
    results = []
    for name, entropy in (("raft++", 0.1), ("grpo", 0.5)):
        run = tmp_path / "runs" / f"{name}_seed0"
        run.mkdir(parents=True)
        rows = [{"iteration": i, "accuracy": 0.5, "entropy": entropy} for i in range(1, 5)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        results.append({"run": name, "seed": 0, "after": {"correct_counts": [1, 1, 2]}})
    runs = Runs(tmp_path, results, initial)
    collapse = next(f for f in FINDINGS if f.name == "raft++_entropy_collapses")
    res = runs.measure(collapse)
    assert res.effect == pytest.approx(-0.4) and res.seeds == 1
    assert res.ci95 == (-np.inf, np.inf) and res.verdict == "inconclusive"
    overtakes = next(f for f in FINDINGS if f.name == "grpo_overtakes_raft++")
    assert runs.measure(overtakes).ci95 == (0.0, 0.0)  # per problem: the held-out set resampled


def test_a_per_run_finding_whose_seeds_agree_exactly_has_no_interval(tmp_path):
    from minimalrl.eval.findings import FINDINGS
    from minimalrl.eval.report.runs import Runs, measure_findings
    from minimalrl.eval.report.tables import findings_table

    # Early training accuracy moves in steps of 1/(iterations' samples): RAFT++ − GRPO is +0.25 at
    # both seeds (0.75 vs 0.5 over the first quarter). Two equal numbers are no evidence that the
    # spread is 0 (the t interval from them would be the point +0.25 and a verdict "holds").
    initial = {"n": 2, "correct_counts": [0, 1, 2]}
    results = []
    for seed in (0, 1):
        for name, accuracy in (("raft++", 0.75), ("grpo", 0.5)):
            run = tmp_path / "runs" / f"{name}_seed{seed}"
            run.mkdir(parents=True)
            rows = [{"iteration": i, "accuracy": accuracy, "entropy": 0.3} for i in range(1, 5)]
            (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            results.append({"run": name, "seed": seed, "after": {"correct_counts": [1, 1, 2]}})
    runs = Runs(tmp_path, results, initial)
    early = next(f for f in FINDINGS if f.name == "raft++_fastest_early")
    res = runs.measure(early)
    assert res.effect == pytest.approx(0.25) and res.seeds == 2
    assert res.ci95 == (-np.inf, np.inf) and res.verdict == "inconclusive"
    m = next(m for m in measure_findings(runs) if m.finding.name == "raft++_fastest_early")
    assert m.settle.seeds is None and m.settle.why == "needs seeds that differ to estimate"
    row = next(line for line in findings_table([m]) if "fastest early" in line)
    assert "| +25.0 | none (equal at every seed: no spread) | **inconclusive** |" in row


def test_the_per_seed_table_lists_each_seeds_numbers_in_seed_order(tmp_path):
    from minimalrl.eval.report.runs import Runs
    from minimalrl.eval.report.tables import seeds_table

    # n = 2 samples on 3 problems: correct counts (2, 1, 0) are avg@2 50%, (2, 2, 1) 83.3%. Eight
    # iterations: the early quarter is iterations 1-2, the late one 7-8.
    initial = {"n": 2, "correct_counts": [0, 1, 2], "greedy_correct": [0, 1, 1]}
    results = []
    for seed, counts, greedy in ((1, [2, 2, 1], [1, 1, 1]), (0, [2, 1, 0], [1, 0, 0])):
        run = tmp_path / "runs" / f"grpo_seed{seed}"
        run.mkdir(parents=True)
        rows = [
            {"iteration": i, "accuracy": i / 10, "entropy": 0.5 - i / 100 - seed / 10,
             "response_length": 20 - i}
            for i in range(1, 9)
        ]  # fmt: skip
        del rows[7]["response_length"], rows[6]["response_length"]  # only iterations 1-6 have one
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        after = {"correct_counts": counts, "greedy_correct": greedy}
        results.append({"run": "grpo", "seed": seed, "after": after})
    table = seeds_table(Runs(tmp_path, results, initial), ["grpo", "raft"])
    assert table[0] == (
        "| run | seeds (in order) | avg@2 | greedy | early training accuracy | late entropy | "
        "late response length |"
    )
    # early accuracy (0.1 + 0.2) / 2; late entropy (0.43 + 0.42) / 2 − seed / 10; of the 6
    # records with a length the last quarter (1) is iteration 6's 14.
    assert table[2:] == [
        "| grpo | 0, 1 | 50.0, 83.3 | 33.3, 100.0 | 15.0, 15.0 | 0.425, 0.325 | 14.0, 14.0 |"
    ]


def test_the_findings_table_gives_the_verdict_at_the_first_seeds_and_on_all(tmp_path):
    from minimalrl.eval.report.runs import FIRST_SEEDS, Runs, measure_findings
    from minimalrl.eval.report.tables import findings_table

    # RAFT++'s late entropy minus GRPO's at seeds 0-5: -0.3, -0.1, +0.02 at the first three
    # (mean -0.127, t interval ±0.40: inconclusive), then -0.2 three times (6 seeds: mean
    # -0.163 ± 2.571 · 0.045: holds).
    initial = {"n": 2, "correct_counts": [0, 1, 2]}
    results = []
    for seed, d in enumerate((-0.3, -0.1, 0.02, -0.2, -0.2, -0.2)):
        for name, entropy in (("raft++", 0.5 + d), ("grpo", 0.5)):
            run = tmp_path / "runs" / f"{name}_seed{seed}"
            run.mkdir(parents=True)
            rows = [{"iteration": i, "accuracy": 0.5, "entropy": entropy} for i in range(1, 5)]
            (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            results.append({"run": name, "seed": seed, "after": {"correct_counts": [1, 1, 2]}})
    measured = measure_findings(Runs(tmp_path, results, initial))
    m = next(m for m in measured if m.finding.name == "raft++_entropy_collapses")
    assert FIRST_SEEDS == (0, 1, 2)
    assert (m.first.seeds, m.first.verdict) == (3, "inconclusive")
    assert (m.now.seeds, m.now.verdict) == (6, "holds")
    assert m.settle.verdict == "holds" and m.settle.seeds <= 6
    row = next(line for line in findings_table(measured) if "entropy collapses" in line)
    assert f"| **inconclusive** | **holds** | 6 | {m.settle.seeds} (holds) |" in row


def test_machine_record_names_the_cpu_and_its_rounding_flags(tmp_path):
    from minimalrl.eval.provenance import machine_record

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16 sse\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16 sse\n"
    )
    assert machine_record(info) == {"cpu": "AMD EPYC", "flags": ["avx2", "avx512f", "avx512_bf16"]}
    assert machine_record(tmp_path / "absent") == {"cpu": "", "flags": []}
