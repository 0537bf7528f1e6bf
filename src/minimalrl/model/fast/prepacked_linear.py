"""Linear layers on oneDNN with weights reordered once, for inference loops on CPU.

A decoding step multiplies a few dozen rows by every weight of the model, so each weight streams
from memory once per step. PyTorch's CPU `linear` (MKL's sgemm) repacks the weight on every call;
oneDNN's matmul on a weight reordered ahead of time into its blocked layout does not (the
measurements: docs/measurements.md, "Speed"). The reorder costs a copy of the weights (their
size again, a fraction of a second for the default model), so it pays for a loop of many steps
on unchanged weights: sampling, not training.

This is the path PyTorch's own compiler takes for CPU linear layers
(`torch.ops.mkldnn._reorder_linear_weight` / `_linear_pointwise`), used here without compiling.
The layers are switched by giving each `nn.Linear` instance its own `forward` for the length of
the block, not by a `TorchFunctionMode`: a mode sees every torch call of the model, and its
Python hook on each one cost measurable generation time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.nn import functional as F


def prepacking_supported(weights: Iterable[torch.Tensor]) -> bool:
    """oneDNN is built in and the weights are 2D float32 on CPU.

    Not bfloat16: PyTorch's CPU linear already runs bf16 on oneDNN (same numbers, and no
    measurable gain from reordering ahead).
    """
    if not torch.backends.mkldnn.is_available():
        return False
    return all(
        type(w) in (torch.Tensor, nn.Parameter)  # not a DTensor or another subclass
        and w.device.type == "cpu"
        and w.dim() == 2
        and w.dtype == torch.float32
        for w in weights
    )


def _prepacked_forward(module: nn.Linear, packed: torch.Tensor):
    """`module.forward` on oneDNN with `packed`, its weight as it is now, reordered.

    Falls back to the plain linear when the module's weight is no longer that tensor (swapped by
    `functional_call` or a sharding hook), when the input's dtype differs, or when the call
    records gradients."""
    weight = module.weight

    def forward(x: torch.Tensor) -> torch.Tensor:
        w, bias = module.weight, module.bias
        if (
            w is weight
            and x.dtype == w.dtype
            and (bias is None or bias.dtype == w.dtype)
            and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))
        ):
            return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [None], "")
        return F.linear(x, w, bias)

    return forward


@contextlib.contextmanager
def prepacked_linears(modules: list[nn.Module], rows: int) -> Iterator[None]:
    """Within the block, the plain `nn.Linear` layers among `modules` (subclasses and wrappers
    are left alone) run on oneDNN with their weights reordered for about `rows` rows; a no-op
    where that is not supported (`prepacking_supported`).

    The reordered copies are taken on entry: weights changed inside the block are not seen.
    """
    linears = [m for m in modules if type(m) is nn.Linear]
    if not linears or not prepacking_supported([m.weight for m in linears]):
        yield
        return
    for m in linears:
        if "forward" in m.__dict__:
            raise RuntimeError(f"{m} already has an instance forward: nested prepacked_linears?")
    packed: dict[int, torch.Tensor] = {}  # one reordered copy per weight, however many share it
    try:
        for m in linears:
            if id(m.weight) not in packed:
                packed[id(m.weight)] = torch.ops.mkldnn._reorder_linear_weight(
                    m.weight.detach(), rows
                )
            m.forward = _prepacked_forward(m, packed[id(m.weight)])
        yield
    finally:
        for m in linears:
            m.__dict__.pop("forward", None)
