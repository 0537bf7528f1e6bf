"""Rollouts written down and read back: a record of every `generate` call's responses, and a
backend that answers from it instead of sampling.

Sampling is where machines part: kernels that round differently move a probability by 1e-7, one
drawn token flips, and a run goes elsewhere (an initial model trained on one CPU is not the one
trained on another). Replayed, the same tokens come back on any machine, so what is computed from
them (log-probs, losses, the weights after every update) differs only by rounding; on the
machine that recorded them, not at all.

The record is JSON lines, one per call: the call's key (sha256 of its prompts, prompt keys and
sampling parameters), those three, and each response's token ids and sampler log-probs, exactly
(a float32 written as the double it is). A call is looked up by its key, so a resumed run and a
run that evaluates in another order find theirs; a call the record lacks is refused, naming it.
A line cut short by a killed run is left out on reading (its call made again is written again).
A record ending in `.gz` is read gzipped (what is committed); one is written as plain lines.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from minimalrl.rollout.base import Rollout, RolloutBackend, SamplingParams, keys_of, pad_left


class ReplayError(ValueError):
    """The record is unreadable, or lacks a call the run makes; the message names the file."""


def call_key(prompt_token_ids: list[list[int]], keys: list[int], params: SamplingParams) -> str:
    """What identifies one `generate` call: its prompts, their seeding keys and its sampling."""
    text = json.dumps([prompt_token_ids, keys, asdict(params)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def rank_file(path: str, rank: int) -> str:
    """Where rank `rank` records (each its own file; rank 0 the path itself). Replay reads
    them all: run it with the world size it was recorded with (each rank's calls are those of
    its shard of prompts)."""
    return f"{path}.rank{rank}" if path and rank else path


def read_record(path: str | Path) -> dict[str, dict]:
    """The calls of the record and its other ranks' files, by key (the first of a key written
    twice; a cut-off last line left out). A missing file is an empty record."""
    path = Path(path)
    calls: dict[str, dict] = {}
    for other in sorted(path.parent.glob(path.name + ".rank*")):
        calls.update(_read_one(other))
    return {**calls, **_read_one(path)}


def _read_one(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    opener = gzip.open if path.suffix == ".gz" else open
    calls: dict[str, dict] = {}
    with opener(path, "rt") as fh:
        lines = fh.read().split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            call = json.loads(line)
            calls.setdefault(call["key"], call)
        except (json.JSONDecodeError, KeyError) as err:
            if number == len(lines):  # the line a killed writer left unfinished
                continue
            raise ReplayError(f"{path}, line {number}: not a rollout record ({err})") from None
    return calls


def _rows(ro: Rollout) -> tuple[list[list[int]], list[list[float]] | None]:
    lengths = ro.response_lengths_B.tolist()
    ids = [row[:n] for row, n in zip(ro.response_ids_BR.tolist(), lengths, strict=True)]
    if ro.sampler_logp_BR is None:
        return ids, None
    logps = ro.sampler_logp_BR.float().tolist()
    return ids, [row[:n] for row, n in zip(logps, lengths, strict=True)]


class RecordingBackend:
    """Another backend, its every call's responses appended to `path` (flushed and synced per
    call: a run killed at any point keeps what it sampled)."""

    def __init__(self, inner: RolloutBackend, path: str | Path):
        self.inner, self.path = inner, Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._calls = read_record(self.path)
        if self.path.is_file():  # a cut-off last line (a killed run) must not run into the next
            text = self.path.read_bytes()
            if text and not text.endswith(b"\n"):
                self.path.write_bytes(text[: text.rfind(b"\n") + 1])

    def generate(
        self,
        prompt_token_ids: list[list[int]],
        params: SamplingParams,
        prompt_keys: list[int] | None = None,
    ) -> Rollout:
        ro = self.inner.generate(prompt_token_ids, params, prompt_keys)
        keys = keys_of(prompt_token_ids, prompt_keys)
        key = call_key(prompt_token_ids, keys, params)
        ids, logps = _rows(ro)
        if key in self._calls:  # a resumed run sampling again what it sampled before
            if self._calls[key]["responses"] != ids:
                raise ReplayError(
                    f"{self.path}: call {key[:12]} ({len(keys)} prompts, {asdict(params)}) "
                    "was recorded with other responses: the same prompts and sampling at other "
                    "weights (a replay could not tell them apart), or another machine resuming"
                )
            return ro
        line = {"key": key, "params": asdict(params), "prompt_keys": keys}
        line["prompts"] = [list(p) for p in prompt_token_ids]
        line.update(responses=ids, sampler_logp=logps, stats=ro.stats)
        with self.path.open("a") as fh:
            fh.write(json.dumps(line, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._calls[key] = line
        return ro

    def sync_weights(self, model: nn.Module) -> None:
        self.inner.sync_weights(model)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class ReplayBackend:
    """The recorded responses of each call, as the backend that sampled them returned them:
    the same token matrix, masks, sampler log-probs and stats. Samples nothing; its weights are
    the trainer's business (`sync_weights` does nothing)."""

    def __init__(self, path: str | Path, pad_token_id: int, device: torch.device | str = "cpu"):
        self.path, self.pad_token_id, self.device = Path(path), pad_token_id, device
        if not self.path.is_file():
            raise ReplayError(f"{self.path}: no such rollout record")
        self.calls = read_record(self.path)

    def generate(
        self,
        prompt_token_ids: list[list[int]],
        params: SamplingParams,
        prompt_keys: list[int] | None = None,
    ) -> Rollout:
        keys = keys_of(prompt_token_ids, prompt_keys)
        call = self.calls.get(call_key(prompt_token_ids, keys, params))
        if call is None:
            raise ReplayError(
                f"{self.path}: no recorded rollout for {len(keys)} prompts (keys {keys[:4]}...) "
                f"with {asdict(params)}: this run asks for samples the recorded run did not draw"
                " (another config, seed, data or model)"
            )
        ids = call["responses"]
        n = params.n
        if len(ids) != len(keys) * n:
            raise ReplayError(f"{self.path}: call {call['key'][:12]} has {len(ids)} responses")
        lengths = torch.tensor([len(r) for r in ids], dtype=torch.long)
        R = max(int(lengths.max()), 1) if ids else 1
        response_ids = torch.full((len(ids), R), self.pad_token_id, dtype=torch.long)
        logp = torch.zeros((len(ids), R), dtype=torch.float32)
        for i, row in enumerate(ids):
            response_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            if call["sampler_logp"] is not None:
                logp[i, : len(row)] = torch.tensor(call["sampler_logp"][i], dtype=torch.float32)
        prompt_ids, prompt_mask = pad_left(prompt_token_ids, self.pad_token_id)
        dev = self.device
        return Rollout(
            prompt_ids_UP=prompt_ids.to(dev),
            prompt_mask_UP=prompt_mask.to(dev),
            prompt_index_B=torch.arange(len(keys), device=dev).repeat_interleave(n),
            response_ids_BR=response_ids.to(dev),
            response_mask_BR=(torch.arange(R)[None] < lengths[:, None]).long().to(dev),
            stats=dict(call["stats"]),
            sampler_logp_BR=None if call["sampler_logp"] is None else logp.to(dev),
        )

    def sync_weights(self, model: nn.Module) -> None:
        pass
