"""Trackers (`report_to`): every metrics record reaches TensorBoard, W&B, Trackio and MLflow at its
step, with the config, each read back from its own offline or local store; a failing tracker
warns once and the run goes on; a tracker that is not installed names its extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from test_trainer import toy_config
from trackers_readback import mlflow_store, tensorboard_events, trackio_local, wandb_offline

from minimalrl.cli import main
from minimalrl.eval.metrics import read_metrics
from minimalrl.trackers import TrackedRun, Trackers, TrackerWarning, numbers
from minimalrl.train.trainer import Trainer, train


def _expected(output: Path) -> dict[int, dict[str, float]]:
    """What every tracker must hold: the numbers of each metrics.jsonl record, by iteration."""
    return {int(r["iteration"]): numbers(r) for r in read_metrics(output)}


def _same(got: dict[int, dict[str, float]], want: dict[int, dict[str, float]], rel: float):
    assert sorted(got) == sorted(want)
    for step, row in want.items():
        assert sorted(got[step]) == sorted(row), step
        for key, value in row.items():
            assert got[step][key] == pytest.approx(value, rel=rel, abs=1e-30), (step, key)


def _train_argv(model, task, out, *extra: str) -> list[str]:
    argv = ["train", "--algo", "grpo", "--output", str(out), "--no-progress"]
    sets = {"model": model, "train_data": task, "eval_data": task, "iterations": 2,
            "prompts_per_iteration": 4, "samples_per_prompt": 2, "max_new_tokens": 4,
            "eval_every": 1, "threads": 1}  # fmt: skip
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    return argv + list(extra)


def test_train_writes_the_same_metrics_to_every_tracker(tiny_model_dir, toy_task, tmp_path):
    """`minimalrl train --set report_to=[...]` in a fresh process, offline and local stores."""
    for module in ("wandb", "trackio", "mlflow"):
        pytest.importorskip(module)
    out = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "TRACKIO_DIR": str(tmp_path / "trackio"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}  # fmt: skip
    trackers = "report_to=[tensorboard,wandb,trackio,mlflow]"
    argv = _train_argv(tiny_model_dir, toy_task, out, "--set", trackers, "--set", "run_group=g1")
    done = subprocess.run([sys.executable, "-m", "minimalrl", *argv], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tracker" not in done.stderr  # no tracker failed
    want = _expected(out)
    assert sorted(want) == [0, 1, 2] and "reward_mean" in want[1] and "eval_accuracy" in want[0]
    config = json.loads((out / "checkpoints" / "iter_000002" / "config.json").read_text())

    history, wb_config, runs = wandb_offline(out)
    _same(history, want, rel=1e-12)
    assert runs[0]["name"] == "run" and runs[0]["group"] == "g1"
    assert runs[0]["project"] == "minimalrl" and wb_config["algo"] == "grpo"
    assert wb_config["report_to"] == ["tensorboard", "wandb", "trackio", "mlflow"]

    history, tk_config = trackio_local(tmp_path / "trackio", "minimalrl", "run")
    _same(history, want, rel=1e-12)
    assert tk_config["algo"] == "grpo" and tk_config["lr"] == config["lr"]

    [(run, history)] = mlflow_store(f"sqlite:///{tmp_path / 'mlflow.db'}", "minimalrl")
    _same(history, want, rel=1e-12)
    assert run.info.run_name == "run" and run.data.tags["group"] == "g1"
    assert json.loads(run.data.params["lr"]) == config["lr"]
    assert set(run.data.params) == set(config)  # every setting

    _same(tensorboard_events(out / "tensorboard"), want, rel=1e-6)  # (stored as float32)


def test_mlflow_file_store_and_resume_continue_the_same_runs(
    tiny_model_dir, toy_task, tmp_path, monkeypatch
):
    """A `file:` store (MLflow's older local store) through MLflow's API; a resumed run
    continues its W&B and MLflow runs instead of starting new ones."""
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = toy_config(tiny_model_dir, toy_task, iterations=1, save_every=1,
                     report_to=("wandb", "mlflow"), tracker_project="p")  # fmt: skip
    train(cfg, tmp_path / "run", progress=False)
    ids = json.loads((tmp_path / "run" / "trackers.json").read_text())
    Trainer(cfg.replace(iterations=2), tmp_path / "run", resume=True, progress=False).run()
    assert json.loads((tmp_path / "run" / "trackers.json").read_text()) == ids
    want = _expected(tmp_path / "run")
    [(run, history)] = mlflow_store(uri, "p")  # one run, both iterations
    assert run.info.run_id == ids["mlflow"]
    _same(history, want, rel=1e-12)
    history, _, runs = wandb_offline(tmp_path / "run")
    assert {r["id"] for r in runs} == {ids["wandb"]}
    _same(history, want, rel=1e-12)


def test_a_tracker_that_fails_mid_run_warns_once_and_the_run_goes_on(
    tiny_model_dir, toy_task, tmp_path, monkeypatch
):
    from minimalrl import trackers

    calls = []

    def log(self, metrics, step):
        calls.append(step)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(trackers._TensorBoard, "log", log)
    cfg = toy_config(tiny_model_dir, toy_task, iterations=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = train(cfg, tmp_path, progress=False)
    said = [w for w in caught if issubclass(w.category, TrackerWarning)]
    assert len(said) == 1, [str(w.message) for w in said]
    assert "tensorboard failed (OSError" in str(said[0].message)
    assert "metrics.jsonl holds every record" in str(said[0].message)
    assert calls == [1, 2] and len(records) == 3  # dropped after the failure; the run finished
    assert [r["iteration"] for r in read_metrics(tmp_path)] == [1, 2, 3]


def test_a_tracker_that_cannot_start_warns_and_the_others_run(tmp_path, monkeypatch):
    from minimalrl import trackers

    def broken(run, run_id):
        raise ConnectionError("server unreachable")

    monkeypatch.setitem(trackers._OPEN, "wandb", broken)
    with pytest.warns(TrackerWarning, match="tracker wandb could not start"):
        group = Trackers(["wandb", "tensorboard"], TrackedRun(tmp_path, "r"), resume=False)
    assert group.names == ["tensorboard"]
    group.log({"iteration": 1, "reward_mean": 0.5, "skipped_update": False, "eval": None})
    group.close()
    assert tensorboard_events(tmp_path / "tensorboard") == {
        1: {"reward_mean": 0.5, "skipped_update": 0.0}
    }


@pytest.mark.parametrize("name", ["wandb", "trackio", "mlflow"])
def test_a_tracker_not_installed_is_one_line_naming_its_extra(name, tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda mod, *a: None if mod == name else find_spec(mod, *a)
    )
    assert main(["train", "--set", f"report_to=[tensorboard,{name}]", "--output",
                 str(tmp_path / "o")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"report_to: {name} is not installed: pip install 'minimalrl[{name}]'" in err
    assert f"bash scripts/setup.sh {name}" in err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_report_to_reads_lists_and_none(monkeypatch):
    import minimalrl.trackers as trackers
    from minimalrl.config_file import build_config

    # Parsing alone: every known tracker counts as installed (the README's setup has none of
    # them; a missing one is refused by its own test above), an unknown name is still refused.
    real = trackers.missing_tracker
    monkeypatch.setattr(
        trackers, "missing_tracker", lambda name: None if name in trackers.TRACKERS else real(name)
    )

    assert build_config(None, {"report_to": "[wandb, mlflow]"}).report_to == ("wandb", "mlflow")
    assert build_config(None, {"report_to": "tensorboard,trackio"}).report_to == (
        "tensorboard", "trackio",
    )  # fmt: skip
    assert build_config(None, {"report_to": "none"}).report_to == ()
    assert build_config(None, {"report_to": ["mlflow"]}).report_to == ("mlflow",)
    with pytest.raises(ValueError, match="unknown tracker 'tensorbord'; choose from"):
        build_config(None, {"report_to": "tensorbord"})


def test_report_to_none_writes_metrics_jsonl_alone(tiny_model_dir, toy_task, tmp_path):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=1, report_to=())
    train(cfg, tmp_path, progress=False)
    assert (tmp_path / "metrics.jsonl").is_file()
    assert not (tmp_path / "tensorboard").exists() and not (tmp_path / "trackers.json").exists()


def test_compare_names_each_run_by_its_folder_and_groups_its_seeds(tmp_path, monkeypatch):
    import minimalrl.train.trainer as trainer
    from minimalrl.config import TrainConfig
    from minimalrl.eval.heldout import HeldOut
    from minimalrl.eval.runspec import RunSpec
    from minimalrl.train.compare import run_one

    seen = []

    def fake_train(cfg, output, **kwargs):
        seen.append((cfg.run_name, cfg.run_group, Path(output).name))
        raise KeyboardInterrupt  # (stop before scoring: the names are what this test is about)

    monkeypatch.setattr(trainer, "train", fake_train)
    spec = RunSpec.parse("reinforce_rej:filtered=drop")
    for seed in (0, 1):
        with pytest.raises(KeyboardInterrupt):
            run_one(spec, seed, TrainConfig(), HeldOut("gsm8k"), {"train_temperature_avg": 0.5},
                    tmp_path)  # fmt: skip
    assert seen == [
        ("reinforce_rej+filtered=drop_seed0", "reinforce_rej:filtered=drop",
         "reinforce_rej+filtered=drop_seed0"),
        ("reinforce_rej+filtered=drop_seed1", "reinforce_rej:filtered=drop",
         "reinforce_rej+filtered=drop_seed1"),
    ]  # fmt: skip
