"""The package's face: `import minimalrl` is light, and its public names are the documented ones."""

from __future__ import annotations

import subprocess
import sys

import pytest

import minimalrl


def test_import_loads_no_torch_and_names_resolve_lazily():
    code = (
        "import sys, minimalrl; assert 'torch' not in sys.modules, 'torch at import'; "
        "from minimalrl import TrainConfig; assert 'torch' in sys.modules; "
        "print(TrainConfig.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "TrainConfig"


@pytest.mark.parametrize("name", sorted(set(minimalrl.__all__) - {"__version__"}))
def test_every_public_name_imports(name):
    assert getattr(minimalrl, name) is not None
    assert name in dir(minimalrl)


@pytest.mark.parametrize("old", ["trainer", "logprobs", "fsdp", "compare"])
def test_the_old_layouts_module_names_are_gone(old):
    """The import hook that kept an earlier layout's names working is removed (issue 31).
    (`minimalrl.config` is one of those names again: the config's own module, below the policy.)"""
    import importlib

    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"minimalrl.{old}")


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        minimalrl.nope  # noqa: B018
