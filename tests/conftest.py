import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny import build_tiny_model, write_toy_task


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def toy_task(tmp_path_factory) -> Path:
    return write_toy_task(tmp_path_factory.mktemp("toy") / "toy.jsonl")


@pytest.fixture(scope="session")
def tiny_wide_logits_model_dir(tmp_path_factory) -> Path:
    """A tiny model whose frozen embeddings still let one token dominate (for LoRA)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_lora") / "model", init_std=0.2)
