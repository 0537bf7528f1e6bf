"""minimalrl: the minimalist family of RL algorithms for LLM reasoning (arXiv 2504.11343).

Train from Python as the command line does:

    from minimalrl import Trainer, build_config

    cfg = build_config("configs/smoke.yaml", {"algo": "raft++", "report_to": ["tensorboard"]})
    records = Trainer(cfg, "runs/raftpp").run()   # one metrics record per iteration

The names below load on first use, so `import minimalrl` (and the `minimalrl` command) does not
import torch until something needs it.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    # configure and train
    "TrainConfig": "minimalrl.config",
    "ConfigError": "minimalrl.config",
    "build_config": "minimalrl.config_file",
    "Trainer": "minimalrl.train.trainer",
    # algorithms, data, rewards
    "ALGORITHMS": "minimalrl.algorithms",
    "get_algorithm": "minimalrl.algorithms",
    "Problem": "minimalrl.data",
    "DataError": "minimalrl.data",
    "load_problems": "minimalrl.data",
    "is_correct": "minimalrl.reward",
    "math_reward": "minimalrl.reward",
    # evaluate and read results
    "EvalSettings": "minimalrl.eval.evaluate",
    "evaluate": "minimalrl.eval.evaluate",
    "read_metrics": "minimalrl.eval.metrics",
}
"""The public API: name -> the module that defines it."""

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'minimalrl' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
