"""The policy's (and critic's) AdamW optimizers and their per-iteration lr schedules.

The schedule advances once per iteration (as in verl): warmup, then constant, linear or cosine
decay to 0 over the run. A resumed run loads the saved optimizers, then runs the config's
settings (`apply_optimizer_config`), so a forced resume with another lr does what it says.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from minimalrl.config import TrainConfig

LRScheduler = torch.optim.lr_scheduler.LRScheduler


def lr_factor(iteration: int, cfg: TrainConfig, shape: str | None = None) -> float:
    """Multiplier of the base lr during `iteration` (0-based): warmup, then the decay `shape`
    (default `cfg.lr_schedule`)."""
    shape = shape or cfg.lr_schedule
    if iteration < cfg.warmup_iterations:
        return (iteration + 1) / cfg.warmup_iterations
    span = max(1, cfg.iterations - cfg.warmup_iterations)
    progress = (iteration - cfg.warmup_iterations) / span
    if shape == "linear":
        return 1.0 - progress
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


@dataclass
class Optimizers:
    """The policy's optimizer and schedule, and the critic's when there is one."""

    policy: torch.optim.Optimizer
    schedule: LRScheduler
    critic: torch.optim.Optimizer | None = None
    critic_schedule: LRScheduler | None = None

    @classmethod
    def build(cls, cfg: TrainConfig, model: nn.Module, critic: nn.Module | None) -> Optimizers:
        trainable = [p for p in model.parameters() if p.requires_grad]
        # fused: one kernel per step instead of a loop over parameters
        adam = {"betas": cfg.adam_betas, "eps": cfg.adam_eps, "fused": True}
        policy = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, **adam)
        out = cls(policy, torch.optim.lr_scheduler.LambdaLR(policy, lambda i: lr_factor(i, cfg)))
        if critic is not None:
            out.critic = torch.optim.AdamW(
                critic.parameters(), lr=cfg.critic_lr, weight_decay=cfg.critic_weight_decay, **adam
            )
            out.critic_schedule = torch.optim.lr_scheduler.LambdaLR(
                out.critic, lambda i: lr_factor(i, cfg, cfg.critic_lr_schedule)
            )
        return out

    def learning_rates(self) -> dict[str, float]:
        """`lr` (and `critic_lr`) of the coming optimizer steps, for the iteration's record."""
        out = {"lr": self.schedule.get_last_lr()[0]}
        if self.critic_schedule is not None:
            out["critic_lr"] = self.critic_schedule.get_last_lr()[0]
        return out

    def advance_schedules(self) -> None:
        """One iteration done: the schedules take their next step."""
        with warnings.catch_warnings():  # an iteration without kept samples has no optimizer step
            warnings.simplefilter("ignore", UserWarning)
            self.schedule.step()
            if self.critic_schedule is not None:
                self.critic_schedule.step()

    def apply_config(self, cfg: TrainConfig) -> list[str]:
        """The saved optimizers carry the checkpoint's lr, betas, ε and weight decay; a forced
        resume may have changed them: set the config's. Returns what changed, in words."""
        adam = {"betas": tuple(cfg.adam_betas), "eps": cfg.adam_eps}
        changes = apply_optimizer_config(
            self.policy,
            lr=cfg.lr,
            lr_now=cfg.lr * lr_factor(self.schedule.last_epoch, cfg),
            weight_decay=cfg.weight_decay,
            **adam,
        )
        _rebase(self.schedule, cfg.lr)
        if self.critic is not None and self.critic_schedule is not None:
            factor = lr_factor(self.critic_schedule.last_epoch, cfg, cfg.critic_lr_schedule)
            changes += [
                f"critic {c}"
                for c in apply_optimizer_config(
                    self.critic,
                    lr=cfg.critic_lr,
                    lr_now=cfg.critic_lr * factor,
                    weight_decay=cfg.critic_weight_decay,
                    **adam,
                )
            ]
            _rebase(self.critic_schedule, cfg.critic_lr)
        return changes


def apply_optimizer_config(
    optimizer: torch.optim.Optimizer, *, lr: float, lr_now: float, **settings: object
) -> list[str]:
    """Set the config's base `lr` (scheduled to `lr_now`) and other `settings` (betas, weight
    decay...) on every param group of an optimizer whose saved state was just loaded, so what the
    config says is what runs. Returns "name old -> new" for each setting that changed."""
    changes = []
    for group in optimizer.param_groups:
        old = {"lr": group.get("initial_lr", group["lr"]), **{k: group[k] for k in settings}}
        new = {"lr": lr, **settings}
        changes += [f"{k} {old[k]} -> {v}" for k, v in new.items() if _norm(old[k]) != _norm(v)]
        group.update(settings, lr=lr_now)
        if "initial_lr" in group:  # the base a scheduler scales
            group["initial_lr"] = lr
    return list(dict.fromkeys(changes))


def _norm(value: object) -> object:
    return list(value) if isinstance(value, tuple | list) else value


def _rebase(scheduler: LRScheduler, lr: float) -> None:
    """A scheduler whose optimizer's lr was just set: `lr` as its base, the groups' lr as now."""
    scheduler.base_lrs = [lr for _ in scheduler.optimizer.param_groups]
    scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]  # get_last_lr()
