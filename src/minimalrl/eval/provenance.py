"""Which model and machine a result came from: the weights' sha256, a sketch of them that a
model remade elsewhere can be held against, and the CPU.

A model trained again on another machine is not bitwise the same: kernels round differently.
Sampled, a flipped token sends the run elsewhere and the weights part by as much as training
moved them; replayed from a record of the same tokens (`minimalrl.rollout.replay`), they part by
rounding only. The sketch (the weights at a fixed sample of coordinates) tells the two apart
without the weights themselves: `sketch_distance`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
"""The instruction sets that change how this machine's kernels round (and how fast bf16 is)."""


def machine_record(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """The CPU a result was made on: its model name and which of CPU_FLAGS it has. A trained model
    is remade bitwise only where kernels round alike (a flipped sampled token sends a run
    elsewhere), so results that must pool name their machine. Empty fields where unreadable."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return {"cpu": "", "flags": []}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line and line.strip())
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    present = set(fields.get("flags", "").split())
    return {"cpu": fields.get("model name", ""), "flags": [f for f in CPU_FLAGS if f in present]}


def model_fingerprint(model: str) -> str:
    """sha256 of a model's weight files (a folder's *.safetensors / *.bin / *.gguf), so that
    results made from two different initial models are not mixed; the name itself for a model
    that is not a local folder."""
    from minimalrl.model.loading import resolve_model_path

    path = Path(resolve_model_path(model))
    files = sorted(
        p for p in path.rglob("*") if p.suffix in (".safetensors", ".bin", ".gguf") and p.is_file()
    )
    if not files:
        return f"name:{model}"
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(path).as_posix().encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


SKETCH_PER_TENSOR = 16
"""Coordinates sampled per weight tensor (272 tensors in the default model: ~4,400 values)."""


def _safetensors(model: str) -> list[Path]:
    from minimalrl.model.loading import resolve_model_path

    path = Path(resolve_model_path(model))
    return sorted(path.glob("*.safetensors")) if path.is_dir() else []


def weights_sketch(model: str, per_tensor: int = SKETCH_PER_TENSOR) -> dict | None:
    """The weights at `per_tensor` coordinates of each tensor, drawn by a generator seeded from
    the tensor's name (the same coordinates for any model of that architecture), as float32
    values in exact decimal; None for a model without safetensors files."""
    from safetensors import safe_open

    files = _safetensors(model)
    if not files:
        return None
    values = {}
    for f in files:
        with safe_open(f, "pt") as fh:
            for name in sorted(fh.keys()):
                flat = fh.get_tensor(name).reshape(-1)
                seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:7], "big")
                g = torch.Generator().manual_seed(seed)
                idx = torch.randint(flat.numel(), (per_tensor,), generator=g)
                values[name] = flat[idx].float().tolist()
    return {"per_tensor": per_tensor, "values": values}


def sketch_distance(a: dict, b: dict) -> float:
    """||a - b|| / ||a|| over the sampled coordinates (inf when the two sample other tensors or
    other counts: another architecture)."""
    if a["per_tensor"] != b["per_tensor"] or a["values"].keys() != b["values"].keys():
        return float("inf")
    x = torch.tensor([v for k in sorted(a["values"]) for v in a["values"][k]], dtype=torch.float64)
    y = torch.tensor([v for k in sorted(b["values"]) for v in b["values"][k]], dtype=torch.float64)
    return float((x - y).norm() / x.norm().clamp_min(1e-300))
