"""Checkpoints a user can load anywhere, holding all a resume needs to be exact.

Layout of OUTPUT/checkpoints/:
    iter_000008/policy/              the policy (`save_pretrained` + tokenizer)
    iter_000008/critic.safetensors   PPO's critic, when there is one
    iter_000008/trainer_state.pt     optimizers, scheduler, RNG states, iteration
    iter_000008/config.json          the run's config
    latest                       name of the newest complete checkpoint

A checkpoint is written into a temporary folder and renamed when complete, and `latest` is replaced
atomically, so a crash or a full disk mid-save never leaves a half-written checkpoint as the latest.
A save that fails (full disk, read-only place) raises CheckpointError naming the folder and cause
and saying that the previous checkpoint is intact. Whether a run resumes, and from which
checkpoint, is the loop's question: `minimalrl.train.resume`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from minimalrl.output import describe_write_error, write_text_atomic
from minimalrl.scale import fsdp


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed (missing, incomplete, from another configuration) or
    could not be written."""


# How torch and safetensors report a write that failed (torch wraps ENOSPC in a RuntimeError).
WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)


@dataclass
class TrainerState:
    iteration: int
    """Iterations completed."""
    optimizer: dict
    scheduler: dict
    critic_optimizer: dict | None
    rng: dict
    critic_scheduler: dict | None = None
    """(None in checkpoints written before the critic had a schedule.)"""


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def save_checkpoint(
    root: Path,
    *,
    iteration: int,
    model: nn.Module,
    tokenizer: object,
    config: dict,
    state: TrainerState,
    critic: nn.Module | None = None,
    keep: int = 1,
    model_state: dict[str, torch.Tensor] | None = None,
    critic_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write checkpoint `iter_{iteration}` completely, then point `latest` at it.

    `model_state` / `critic_state`: full weights gathered from a sharded (FSDP) model, written
    in place of the module's own (sharded) state dict."""
    name = f"iter_{iteration:06d}"
    final = root / name
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp / "policy", state_dict=model_state)
        tokenizer.save_pretrained(tmp / "policy")  # type: ignore[attr-defined]
        if critic is not None:
            critic_weights = critic_state if critic_state is not None else critic.state_dict()
            save_file(
                {k: v.contiguous() for k, v in critic_weights.items()},
                str(tmp / "critic.safetensors"),
            )
        torch.save(state.__dict__, tmp / "trainer_state.pt")
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        write_text_atomic(root / "latest", name + "\n")
    except BaseException as err:
        # Measured before the clean-up frees the space the partial checkpoint took.
        failure = _save_failure(err, root, name) if isinstance(err, WRITE_ERRORS) else None
        shutil.rmtree(tmp, ignore_errors=True)
        (root / "latest.tmp").unlink(missing_ok=True)
        if failure is None:
            raise
        raise CheckpointError(failure) from err
    _prune(root, keep, current=name, every=int(config.get("keep_checkpoint_every") or 0))
    return final


def _save_failure(err: BaseException, root: Path, name: str) -> str:
    """One line: which checkpoint was not written, why, and what is still there."""
    previous = latest_checkpoint(root)
    kept = (
        f"{previous.name} is intact and still the latest"
        if previous is not None
        else "there is no earlier checkpoint"
    )
    return f"{root / name}: checkpoint not written ({describe_write_error(err, root)}); {kept}"


def _prune(root: Path, keep: int, current: str, every: int = 0) -> None:
    """Delete the checkpoints older than the newest `keep`, except those at a multiple of `every`
    iterations (keep_checkpoint_every, read from the saved config: the trainer passes that)."""
    done = sorted(p for p in root.glob("iter_*") if p.is_dir())
    for old in done[:-keep]:
        kept = every > 0 and int(old.name.removeprefix("iter_")) % every == 0
        if old.name != current and not kept:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under `root`, or None."""
    pointer = root / "latest"
    if not pointer.is_file():
        return None
    path = root / pointer.read_text().strip()
    return path if (path / "trainer_state.pt").is_file() else None


def load_trainer_state(path: Path) -> TrainerState:
    data = torch.load(path / "trainer_state.pt", weights_only=False)
    return TrainerState(**data)


def load_policy_weights(model: nn.Module, policy_dir: Path) -> None:
    """Load a saved policy into `model`: full weights, or the LoRA adapter of a peft model."""
    adapter = policy_dir / "adapter_model.safetensors"
    if adapter.is_file():
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, load_file(str(adapter)))
        if getattr(result, "unexpected_keys", None):
            raise CheckpointError(f"{policy_dir}: adapter does not fit the model")
        return
    weights = load_file(str(policy_dir / "model.safetensors"))
    if fsdp.is_sharded(model):
        missing, unexpected = fsdp.load_full_state_dict(model, weights)
    else:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    # Tied embeddings are saved once; anything else missing means another model.
    if unexpected or any("lm_head" not in k for k in missing):
        raise CheckpointError(f"{policy_dir}: weights do not match the model ({missing[:3]})")


def load_critic_weights(critic: nn.Module, path: Path) -> None:
    weights = load_file(str(path / "critic.safetensors"))
    if fsdp.is_sharded(critic):
        fsdp.load_full_state_dict(critic, weights)
    else:
        critic.load_state_dict(weights)
