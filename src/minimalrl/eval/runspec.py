"""One run of a compare, by name: an algorithm, optionally as a control, with settings of its own.

`grpo`, `grpo:random_reward` (the control: trained on a coin), `reinforce_rej:filtered=drop` (an
ablation), `grpo:iterations=120` (the long arm). The name is also the run's folder
(`dir_name`), so the report finds a run's files from its name alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from minimalrl.config import ConfigError, TrainConfig
from minimalrl.config_file import parse_assignments, typed_values

CONTROLS = ("random_reward",)


@dataclass(frozen=True)
class RunSpec:
    """One line of a compare: an algorithm, optionally as a control, with settings of its own."""

    algo: str
    control: str | None = None
    settings: tuple[tuple[str, str], ...] = ()
    """(field, value) pairs this run changes in the shared config, in the order written."""

    @classmethod
    def parse(cls, text: str) -> RunSpec:
        algo, *parts = (p.strip() for p in text.strip().split(":"))
        control, settings = None, {}
        for part in parts:
            if "=" in part:
                settings.update(parse_assignments([part]))
            elif part in CONTROLS and control is None:
                control = part
            else:
                raise ConfigError(
                    f"run {text!r}: {part!r} is neither a control {CONTROLS} nor KEY=VALUE"
                )
        fixed = sorted(settings.keys() & {"algo", "seed"})
        if fixed:
            raise ConfigError(f"run {text!r}: {fixed} come from --algos and --seeds")
        typed_values(settings, where=f"run {text!r}: ")  # an unknown field fails here, not later
        return cls(algo, control, tuple(settings.items()))

    @property
    def name(self) -> str:
        extra = [self.control] if self.control else []
        return ":".join([self.algo, *extra, *(f"{k}={v}" for k, v in self.settings)])

    def dir_name(self, seed: int) -> str:
        return f"{self.name.replace(':', '+')}_seed{seed}"

    def config(self, base: TrainConfig, seed: int, control_p: float) -> TrainConfig:
        own = typed_values(dict(self.settings), where=f"run {self.name!r}: ")
        cfg = base.replace(algo=self.algo, seed=seed, **own)
        if self.control == "random_reward":
            cfg = cfg.replace(reward="random", random_reward_p=control_p)
        return cfg
