"""minimalrl: the minimalist family of RL algorithms for LLM reasoning (arXiv 2504.11343)."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

__version__ = "0.1.0"

# Modules that moved when the folders were drawn to show the flow: `import minimalrl.trainer`
# (outside code written before) still works, warns once, and gets the very module at its new
# place (so a monkeypatch on either name patches both).
MOVED = {
    "trainer": "train.trainer", "experience": "train.experience", "update": "train.update",
    "checkpoint": "train.checkpoint", "config": "train.config",
    "evaluate": "eval.evaluate", "compare": "eval.compare", "plots": "eval.plots",
    "metrics": "eval.metrics", "run_summary": "eval.run_summary",
    "logprobs": "policy.logprobs", "models": "policy.models", "critic": "policy.critic",
    "reference": "policy.reference", "packing": "policy.fast.packing",
    "head_logprobs": "policy.fast.head_logprobs", "allocator": "policy.fast.allocator",
    "matmul_attention": "policy.fast.matmul_attention",
    "prepacked_linear": "policy.fast.prepacked_linear",
    "distributed": "scale.distributed", "fsdp": "scale.fsdp",
}  # fmt: skip


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `minimalrl.<old name>` and loads it as the module at its new place."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        old = name.removeprefix(f"{__name__}.")
        if old == name or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = f"{__name__}.{MOVED[spec.name.removeprefix(f'{__name__}.')]}"
        warnings.warn(
            f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2
        )
        module = importlib.import_module(new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # (the import system set the old name's; nothing to run)


sys.meta_path.append(_MovedModules())
