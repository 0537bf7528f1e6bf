"""The folders show the data flow: no module imports a layer above its own.

Every module of the package is parsed with `ast` (nothing is imported), and each of its imports of
`minimalrl` (at the top, inside a function or under TYPE_CHECKING: each is an arrow) must land in
its own layer or one below. A new module must be given a layer here before this test passes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import minimalrl

# Bottom to top; a module's layer is its longest prefix here ("minimalrl" alone: the package's
# own __init__, the public API).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("output", "trackers", "scale")),  # files, tracker mirrors, torch.distributed, FSDP
    ("data", ("data",)),  # prompts
    ("reward", ("reward",)),  # (responses, problems) -> (rewards, correct)
    ("algorithms", ("algorithms",)),  # the registry and its pure tensor math
    # the model itself, which the rollout backends and the policy stand on: token ids -> log-probs,
    # loading models and LoRA, the CPU fast paths
    ("model", ("model",)),
    ("rollout", ("rollout",)),  # generation backends
    ("config", ("config", "config_file")),  # TrainConfig: checks names of the layers below
    ("experience", ("experience",)),  # rollout + rewards -> filter + advantages -> Experience
    ("policy", ("policy",)),  # the seam: generate, score, update, optimizer steps, state
    ("eval", ("eval",)),  # evaluation, metrics files, curves, findings, reports
    ("train", ("train",)),  # the loop, resume, compare's grid of runs
    ("commands", ("cli", "docgen", "__main__", "")),
]

ROOT = Path(minimalrl.__file__).parent


def module_name(path: Path) -> str:
    parts = ("minimalrl", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """The index in LAYERS of `module`'s layer (None: no layer names it)."""
    best, length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            full = f"minimalrl.{prefix}" if prefix else "minimalrl"
            matches = module == full or (prefix != "" and module.startswith(full + "."))
            if matches and len(full) > length:
                best, length = index, len(full)
    return best


def imports_of(module: str) -> set[str]:
    """The `minimalrl` modules `module` imports (`from X import Y`: X.Y where Y is a module)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, `level - 1` packages up
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in out if name == "minimalrl" or name.startswith("minimalrl.")}


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if layer_of(m) is None]
    assert not unplaced, f"give these modules a layer in LAYERS: {unplaced}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    here = layer_of(module)
    if here is None:
        pytest.skip("no layer (test_every_module_has_a_layer names it)")
    upward = [
        f"{name} ({LAYERS[there][0]})"
        for name in sorted(imports_of(module))
        if (there := layer_of(name)) is not None and there > here
    ]
    assert not upward, f"{module} ({LAYERS[here][0]}) imports upward: {', '.join(upward)}"
