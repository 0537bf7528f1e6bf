"""Recorded rollouts replayed: the same run, bitwise, without sampling; what the record lacks or
garbles is refused by file and line."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from test_trainer import TIMING_KEYS, toy_config

from minimalrl.config import ConfigError
from minimalrl.policy.checkpoint import latest_checkpoint
from minimalrl.rollout.base import SamplingParams
from minimalrl.rollout.replay import ReplayBackend, ReplayError, read_record
from minimalrl.train.trainer import train


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(latest_checkpoint(run / "checkpoints") / "policy" / "model.safetensors")


def _strip(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


@pytest.fixture(scope="module")
def recorded(tiny_model_dir, toy_task, tmp_path_factory):
    """A 3-iteration GRPO run (held-out greedy evaluations included) and its record."""
    out = tmp_path_factory.mktemp("recorded")
    cfg = toy_config(
        tiny_model_dir, toy_task, iterations=3, save_every=3, eval_data=str(toy_task),
        eval_every=3, rollout_record=str(out / "rollouts.jsonl"),
    )  # fmt: skip
    return cfg, out / "run", train(cfg, out / "run", progress=False)


def test_replay_trains_the_same_weights_bitwise(recorded, tmp_path):
    cfg, run, records = recorded
    calls = read_record(cfg.rollout_record)
    assert len(calls) == 3 + 2  # one per iteration, the evaluation before and after
    replay = cfg.replace(rollout_record="", rollout_replay=cfg.rollout_record)
    again = train(replay, tmp_path / "replayed", progress=False)
    assert _strip(again) == _strip(records)  # rewards, entropies, KL, losses, evaluations
    before, after = _weights(run), _weights(tmp_path / "replayed")
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_replay_of_calls_not_recorded_is_refused(recorded, tmp_path):
    cfg, _, _ = recorded
    other_seed = cfg.replace(rollout_record="", rollout_replay=cfg.rollout_record, seed=1)
    with pytest.raises(ReplayError, match=r"rollouts.jsonl: no recorded rollout for \d+ prompts"):
        train(other_seed, tmp_path / "other", progress=False)


def test_a_resumed_recording_writes_each_call_once(recorded, tmp_path):
    cfg, _, _ = recorded
    record = tmp_path / "rollouts.jsonl"
    cut = cfg.replace(rollout_record=str(record), save_every=1)
    train(cut.replace(iterations=2), tmp_path / "run", progress=False)
    with record.open("a") as fh:  # the half line a kill leaves
        fh.write('{"key": "abc", "respon')
    train(cut, tmp_path / "run", resume=True, progress=False)
    lines = record.read_text().splitlines()
    # 3 iterations, evaluations after 0, 3 and 2 (the cut run's last): none written twice
    assert len(lines) == len({json.loads(line)["key"] for line in lines}) == 6
    assert read_record(cfg.rollout_record).keys() < read_record(record).keys()


def test_a_garbled_line_is_named(tmp_path):
    record = tmp_path / "r.jsonl"
    record.write_text('{"key": "a", "responses": []}\nnot json\n{"key": "b"}\n')
    with pytest.raises(ReplayError, match=r"r.jsonl, line 2: not a rollout record"):
        read_record(record)
    record.write_text('{"key": "a", "responses": []}\n{"key": "b", "resp')  # cut off: left out
    assert list(read_record(record)) == ["a"]


def test_replayed_rollout_is_the_recorded_one(recorded):
    cfg, _, _ = recorded
    call = next(c for c in read_record(cfg.rollout_record).values() if c["params"]["n"] > 1)
    backend = ReplayBackend(cfg.rollout_record, pad_token_id=0)
    ro = backend.generate(call["prompts"], SamplingParams(**call["params"]), call["prompt_keys"])
    lengths = ro.response_lengths_B.tolist()
    assert [row[:n] for row, n in zip(ro.response_ids_BR.tolist(), lengths)] == call["responses"]
    assert ro.response_ids_BR.shape[1] == max(lengths)
    assert (ro.response_ids_BR[ro.response_mask_BR == 0] == 0).all()  # pads
    logp = [row[:n] for row, n in zip(ro.sampler_logp_BR.tolist(), lengths)]
    assert logp == call["sampler_logp"]  # float32 to JSON and back: exact
    assert ro.prompt_index_B.tolist() == [i for i in range(8) for _ in range(8)]
    with pytest.raises(ReplayError, match="no recorded rollout for 1 prompts"):
        backend.generate([[1, 2, 3]], SamplingParams(**call["params"]), [0])


def test_record_and_replay_config_is_checked(tiny_model_dir, toy_task, tmp_path):
    with pytest.raises(ConfigError, match=r"rollout_replay: .*missing\.jsonl: no such file"):
        toy_config(tiny_model_dir, toy_task, rollout_replay=str(tmp_path / "missing.jsonl"))
    (tmp_path / "r.jsonl").write_text("")
    with pytest.raises(ConfigError, match="rollout_record and rollout_replay: one or the other"):
        toy_config(
            tiny_model_dir, toy_task, rollout_record=str(tmp_path / "w.jsonl"),
            rollout_replay=str(tmp_path / "r.jsonl"),
        )  # fmt: skip
