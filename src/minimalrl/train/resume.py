"""Whether a run continues, and from which checkpoint: the loop's checks before any work.

`resume_point` reads the run folder (its latest checkpoint, its metrics rows); `check_config`
refuses a checkpoint made under another configuration unless forced.
"""

from __future__ import annotations

from pathlib import Path

from minimalrl.policy.checkpoint import CheckpointError, latest_checkpoint

# Fields that may differ on resume: they do not change what the first iterations compute.
RESUMABLE_CHANGES = frozenset(
    {
        "iterations", "eval_every", "save_every", "keep_checkpoints", "keep_checkpoint_every",
        "threads", "keep_freed_memory",
    }
)  # fmt: skip


def resume_point(output: Path, resume: bool | str) -> Path | None:
    """The checkpoint a run in `output` starts from (None: the beginning), checked before any work.

    `resume`: False (a new run: refused where one is already), True (continue: refused where there
    is no checkpoint, a misspelt folder most often) or "auto" (continue if there is a checkpoint,
    else start, dropping the metrics rows of a run that never saved)."""
    ckpt = latest_checkpoint(output / "checkpoints")
    rows = _count_rows(output / "metrics.jsonl")
    if ckpt is not None and not resume:
        raise CheckpointError(
            f"{output} already holds a run (checkpoint {ckpt.name}, {rows} metrics rows); pass "
            "--resume to continue it, or delete the folder or pick another --output to start over"
        )
    if ckpt is None and rows and resume != "auto":
        raise CheckpointError(
            f"{output} holds {rows} metrics rows but no checkpoint to resume; delete the folder "
            "or pick another --output to start over (or pass --resume auto to start over there)"
        )
    if ckpt is None and resume is True:
        raise CheckpointError(
            f"--resume: no checkpoint in {output / 'checkpoints'} (is the folder right?); drop "
            "--resume to start a new run there, or pass --resume auto to start one when none is"
        )
    return ckpt


def _count_rows(path: Path) -> int:
    """Non-blank lines of a metrics.jsonl (0 when there is none)."""
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return 0


def check_config(
    saved: dict, current: dict, *, force: bool, where: Path, defaults: dict | None = None
) -> None:
    """Refuse to resume a checkpoint made under a different configuration, unless forced.

    A field the checkpoint does not know (added to the config since) counts as unchanged when it
    holds its default value in `defaults`.
    """
    defaults = defaults or {}
    old = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
    diffs = {
        k: (old.get(k), current.get(k))
        for k in sorted(set(old) | set(current))
        if k not in RESUMABLE_CHANGES and _norm(old.get(k)) != _norm(current.get(k))
    }
    if diffs and not force:
        lines = "; ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diffs.items())
        raise CheckpointError(
            f"{where} was made with a different config ({lines}); "
            "resume with the same config, or pass --force to resume anyway"
        )


def _norm(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value
