"""Issue 15: nothing lost, every bad path a clear error (reruns, forced resumes, torn metrics,
Ctrl-C, unwritable or full outputs, non-finite config values, data checked before the model).

The filesystem tests use a real read-only bind mount and a small tmpfs when this process may mount
(root); otherwise they are skipped, and the monkeypatched tests beside them (OSError with EROFS or
ENOSPC raised by the write) still run.
"""

from __future__ import annotations

import errno
import json
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
from test_trainer import toy_config

from minimalrl.cli import main
from minimalrl.data import DataError, load_problems
from minimalrl.eval.metrics import read_metrics
from minimalrl.policy.checkpoint import CheckpointError, latest_checkpoint
from minimalrl.train.trainer import Trainer, train


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder that refuses writes even to root: a read-only bind mount."""
    path = tmp_path / "ro"
    path.mkdir()
    if not (_mount("--bind", str(path), str(path)) and _mount("-o", "remount,bind,ro", str(path))):
        subprocess.run(["umount", str(path)], capture_output=True)
        pytest.skip("cannot bind-mount read-only here")
    yield path
    subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs: a real full disk."""
    path = tmp_path / "disk"
    path.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)):
        pytest.skip("cannot mount a tmpfs here")
    yield path
    subprocess.run(["umount", str(path)], check=True)


def _fill(disk: Path, leave: int) -> None:
    """Fill the file system of `disk` until about `leave` bytes are free."""
    import shutil

    with open(disk / "filler", "wb") as f:
        while shutil.disk_usage(disk).free > leave:
            try:
                f.write(b"\0" * 4096)
                f.flush()
            except OSError:
                break


def _train_argv(model, task, out, *extra: str, iterations: int = 1) -> list[str]:
    sets = {"model": model, "train_data": task, "eval_data": "", "iterations": iterations,
            "prompts_per_iteration": 4, "samples_per_prompt": 2, "max_new_tokens": 4,
            "eval_every": 0, "save_every": 1, "threads": 1}  # fmt: skip
    argv = ["train", "--output", str(out), "--no-progress", *extra]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    return argv


# ----------------------------------------------------------------- 1. a rerun never loses a run
def test_rerun_without_resume_refuses_and_keeps_the_run(tiny_model_dir, toy_task, tmp_path):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=2, save_every=1)
    train(cfg, tmp_path, progress=False)
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(CheckpointError, match=r"already holds a run .*--resume.*start over"):
        Trainer(cfg, tmp_path, progress=False)
    assert (tmp_path / "metrics.jsonl").read_text() == before
    assert latest_checkpoint(tmp_path / "checkpoints").name == "iter_000002"


def test_rows_without_a_checkpoint_are_not_dropped_unasked(tiny_model_dir, toy_task, tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"iteration": 0, "eval_accuracy": 0.5}\n')
    cfg = toy_config(tiny_model_dir, toy_task, iterations=1)
    for resume in (False, True):
        with pytest.raises(CheckpointError, match="1 metrics rows but no checkpoint"):
            Trainer(cfg, tmp_path, resume=resume, progress=False)
    assert read_metrics(tmp_path) == [{"iteration": 0, "eval_accuracy": 0.5}]
    assert Trainer(cfg, tmp_path, resume="auto", progress=False).start_iteration == 0


# ----------------------------------------------------------------- 2. --force runs the new config
def test_forced_resume_runs_the_config_optimizer_settings(
    tiny_model_dir, toy_task, tmp_path, capsys
):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=1, lr=2e-2)
    train(cfg, tmp_path, progress=False)
    new = cfg.replace(iterations=3, lr=1e-3, adam_betas=(0.8, 0.99), weight_decay=0.1,
                      lr_schedule="linear")  # fmt: skip
    trainer = Trainer(new, tmp_path, resume=True, force=True, progress=False)
    assert "lr 0.02 -> 0.001" in capsys.readouterr().out
    group = trainer.policy.optimizers.policy.param_groups[0]
    assert tuple(group["betas"]) == (0.8, 0.99) and group["weight_decay"] == 0.1
    records = trainer.run()
    # The linear schedule of the new config, from its base lr: 1e-3 * (1 - i/3) at iteration i.
    assert [r["lr"] for r in records] == pytest.approx([1e-3 * 2 / 3, 1e-3 / 3])
    saved = json.loads((latest_checkpoint(tmp_path / "checkpoints") / "config.json").read_text())
    assert saved["lr"] == 1e-3


def test_forced_resume_sets_the_critic_lr(tiny_model_dir, toy_task, tmp_path):
    cfg = toy_config(tiny_model_dir, toy_task, algo="ppo", iterations=1)
    train(cfg, tmp_path, progress=False)
    changed = cfg.replace(critic_lr=3e-3, iterations=2, critic_weight_decay=0.1, adam_eps=1e-6,
                          critic_lr_schedule="linear")  # fmt: skip
    t = Trainer(changed, tmp_path, resume=True, force=True, progress=False)
    (group,) = t.policy.optimizers.critic.param_groups
    # iteration 2 of 2 on a linear decay: half the base lr
    assert (group["lr"], group["weight_decay"], group["eps"]) == (1.5e-3, 0.1, 1e-6)
    assert t.policy.optimizers.policy.param_groups[0]["eps"] == 1e-6
    assert t.policy.optimizers.critic_schedule.get_last_lr() == [1.5e-3]


# ----------------------------------------------------------------- 3. a torn metrics line
def test_torn_metrics_tail_is_dropped_on_resume(tiny_model_dir, toy_task, tmp_path, capsys):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=2, save_every=1)
    train(cfg.replace(iterations=1), tmp_path, progress=False)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 2, "reward_mean": 0.5, "accuracy": "0.')  # a crash mid-append
    train(cfg, tmp_path, resume=True, progress=False)
    err = capsys.readouterr().err
    assert "metrics.jsonl:2" in err and "dropped" in err
    assert [r["iteration"] for r in read_metrics(tmp_path)] == [1, 2]


def test_metrics_rewrite_is_atomic_and_names_a_bad_line(tmp_path, monkeypatch):
    import minimalrl.eval.metrics as m
    from minimalrl import output

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iteration": 1}\n{"iteration": 2}\n')

    def crash(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output.os, "replace", crash)  # the rename of write_text_atomic
    with pytest.raises(OSError):
        m.MetricsWriter(tmp_path, truncate_after=2, tensorboard=False)
    assert path.read_text() == '{"iteration": 1}\n{"iteration": 2}\n'  # untouched
    assert not (tmp_path / "metrics.jsonl.tmp").exists()  # and no temporary left behind
    path.write_text('{"iteration": 1}\n{"iter\n{"iteration": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: not a JSON record"):
        read_metrics(tmp_path)


# ----------------------------------------------------------------- 4. --resume needs a checkpoint
def test_resume_of_an_empty_or_misspelt_folder_is_an_error(tiny_model_dir, toy_task, tmp_path):
    cfg = toy_config(tiny_model_dir, toy_task, iterations=1)
    with pytest.raises(CheckpointError, match=r"no checkpoint in .*folder right.*auto"):
        Trainer(cfg, tmp_path / "typo", resume=True, progress=False)
    assert not (tmp_path / "typo").exists()
    t = Trainer(cfg, tmp_path / "typo", resume="auto", progress=False)  # asked: start
    assert t.start_iteration == 0


def test_cli_resume_auto(tiny_model_dir, toy_task, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train_argv(tiny_model_dir, toy_task, out, "--resume")) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(_train_argv(tiny_model_dir, toy_task, out, "--resume", "auto")) == 0
    assert main(_train_argv(tiny_model_dir, toy_task, out, "--resume", "auto")) == 0  # done: no-op
    assert [r["iteration"] for r in read_metrics(out)] == [1]


# ----------------------------------------------------------------- 5. eval --output
def _eval_argv(model, task, out) -> list[str]:
    return ["eval", "--model", str(model), "--benchmark", str(task), "--limit", "5",
            "--max-new-tokens", "4", "--batch-size", "2", "--output", str(out),
            "--no-progress"]  # fmt: skip


def test_eval_checks_the_output_before_loading_the_model(toy_task, tmp_path, monkeypatch, capsys):
    import minimalrl.model.loading as models

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(models, "load_policy", no_load)
    (tmp_path / "file").write_text("x")
    assert main(_eval_argv("m", toy_task, tmp_path / "file")) == 2
    err = capsys.readouterr().err
    assert "--output" in err and "is a file" in err and "Traceback" not in err


def test_eval_to_a_read_only_place(toy_task, readonly_dir, capsys):
    assert main(_eval_argv("m", toy_task, readonly_dir / "eval")) == 2
    assert "read-only file system" in capsys.readouterr().err


def test_eval_writes_samples_as_they_come(tiny_model_dir, toy_task, tmp_path, monkeypatch):
    import minimalrl.eval.evaluate as ev

    def crash(*args, **kwargs):  # the end of the evaluation never comes
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "_summarise", crash)
    out = tmp_path / "eval"
    assert main(_eval_argv(tiny_model_dir, toy_task, out)) == 130
    samples = (out / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 5 and {"response", "correct"} <= set(json.loads(samples[0]))


# ----------------------------------------------------------------- 6. Ctrl-C is not success
def test_ctrl_c_exits_130_and_prints_the_resume_command(
    tiny_model_dir, toy_task, tmp_path, monkeypatch, capsys
):
    original = Trainer.iteration

    def interrupted(self, it):
        record = original(self, it)
        self._on_sigint(signal.SIGINT, None)  # what one Ctrl-C does
        return record

    monkeypatch.setattr(Trainer, "iteration", interrupted)
    out = tmp_path / "run"
    assert main(_train_argv(tiny_model_dir, toy_task, out, iterations=2)) == 130
    captured = capsys.readouterr()
    assert "metrics:" not in captured.out
    line = captured.err.strip().splitlines()[-1]
    assert "stopped by Ctrl-C after iteration 1 of 2" in line
    assert latest_checkpoint(out / "checkpoints").name == "iter_000001"
    monkeypatch.undo()
    command = shlex.split(line.split("to go on: ")[1])
    assert command[:2] == ["minimalrl", "train"] and "--resume" in command
    assert main(command[1:]) == 0
    assert [r["iteration"] for r in read_metrics(out)] == [1, 2]


def test_second_ctrl_c_exits_130(tiny_model_dir, toy_task, tmp_path, monkeypatch, capsys):
    def abort(self, it):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "iteration", abort)
    assert main(_train_argv(tiny_model_dir, toy_task, tmp_path / "run")) == 130
    assert "aborted by Ctrl-C" in capsys.readouterr().err


# ----------------------------------------------------------------- 7. unwritable outputs
def test_output_that_is_a_file(tiny_model_dir, toy_task, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(_train_argv(tiny_model_dir, toy_task, tmp_path / "f")) == 2
    err = capsys.readouterr().err
    assert f"--output {tmp_path / 'f'}: is a file" in err and len(err.splitlines()) == 1


def test_output_in_a_read_only_place(tiny_model_dir, toy_task, readonly_dir, capsys):
    assert main(_train_argv(tiny_model_dir, toy_task, readonly_dir / "run")) == 2
    err = capsys.readouterr().err
    assert "read-only file system" in err and str(readonly_dir) in err
    assert len(err.splitlines()) == 1


def test_output_not_writable_simulated(tiny_model_dir, toy_task, tmp_path, monkeypatch, capsys):
    import minimalrl.output as output

    def read_only(self, data):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(output.Path, "write_bytes", read_only)
    assert main(_train_argv(tiny_model_dir, toy_task, tmp_path / "run")) == 2
    assert "cannot write there (read-only file system)" in capsys.readouterr().err


def test_full_disk_is_one_line_and_keeps_the_checkpoint(
    tiny_model_dir, toy_task, small_disk, capsys
):
    out = small_disk / "run"
    assert main(_train_argv(tiny_model_dir, toy_task, out)) == 0
    _fill(small_disk, leave=16 * 1024)  # a metrics line fits, a checkpoint does not
    assert main(_train_argv(tiny_model_dir, toy_task, out, "--resume", iterations=2)) == 2
    err = capsys.readouterr().err
    assert "no space left on device" in err and "iter_000001 is intact" in err
    assert "Traceback" not in err and err.count("minimalrl train: error:") == 1
    assert latest_checkpoint(out / "checkpoints").name == "iter_000001"
    assert not list((out / "checkpoints").glob(".tmp-*"))


def test_torch_save_full_disk_simulated(tiny_model_dir, toy_task, tmp_path, monkeypatch):
    """torch.save on a full disk says `[enforce fail at inline_container.cc:672]`, no word of
    space: the free space decides."""
    import minimalrl.output as output
    import minimalrl.policy.checkpoint as ck

    cfg = toy_config(tiny_model_dir, toy_task, iterations=2, save_every=1)
    trainer = Trainer(cfg, tmp_path, progress=False)
    trainer.save(1)

    def enforce_fail(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(ck.torch, "save", enforce_fail)
    monkeypatch.setattr(output, "_free_bytes", lambda where: 0)
    with pytest.raises(CheckpointError, match=r"iter_000002: checkpoint not written \(no space"):
        trainer.save(2)
    assert latest_checkpoint(tmp_path / "checkpoints").name == "iter_000001"


def test_metrics_append_on_a_full_disk_simulated(tiny_model_dir, toy_task, tmp_path, monkeypatch,
                                                 capsys):  # fmt: skip
    import builtins

    import minimalrl.eval.metrics as m

    real_open = builtins.open

    def full(path, mode="r", *args, **kwargs):
        if str(path).endswith("metrics.jsonl") and mode == "a":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(m, "open", full, raising=False)
    assert main(_train_argv(tiny_model_dir, toy_task, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "metrics.jsonl: cannot append the record (no space left on device)" in err


# ----------------------------------------------------------------- 8. non-finite numbers
@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("lr=nan", "lr must be a finite number"),
        ("temperature=nan", "temperature must be a finite number"),
        ("kl_coef=inf", "kl_coef must be a finite number"),
        ("grad_clip=nan", "grad_clip must be a finite number"),
        ("correct_reward=nan", "correct_reward must be a finite number"),
        ("wrong_reward=-inf", "wrong_reward must be a finite number"),
        ("dual_clip=nan", "dual_clip must be a finite number"),
        ("adam_betas=0.9", "adam_betas must be two numbers"),
        ("adam_betas=0.9,1.0", "adam_betas must each be in [0, 1)"),
        ("adam_betas=0.9,nan", "adam_betas must be a finite number"),
    ],
)
def test_non_finite_and_bad_betas_are_refused_by_name(assignment, message, capsys, tmp_path):
    # (a missing model: were the value let through, the run would still stop at once)
    argv = ["train", "--set", assignment, "--set", f"model={tmp_path / 'no-model'}"]
    assert main([*argv, "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ----------------------------------------------------------------- 9. data and keys first
def test_bad_data_fails_before_the_model_loads(tiny_model_dir, tmp_path, monkeypatch):
    import minimalrl.policy.policy as tr

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was read")

    monkeypatch.setattr(tr, "load_policy", no_load)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "What is 1 + 1 ?", "answer": "2"}\n{"question": "What\n')
    cfg = toy_config(tiny_model_dir, bad)
    with pytest.raises(DataError, match=r"bad\.jsonl:2"):
        Trainer(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_unknown_key_suggests_the_closest(capsys, tmp_path):
    assert main(["train", "--set", "lr_shedule=linear", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "did you mean 'lr_schedule'?" in err and len(err) < 120


def test_malformed_json_column(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "What is\n{"question": "q" "answer": "1"}\n')
    torn = r"bad\.jsonl:1: .*Unterminated string starting at column 14"
    with pytest.raises(DataError, match=torn):
        load_problems(bad)
    bad.write_text('{"question": "q" "answer": "1"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: .*delimiter at column 18"):
        load_problems(bad)
