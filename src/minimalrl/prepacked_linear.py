"""Linear layers on oneDNN with weights reordered once, for inference loops on CPU.

A decoding step multiplies a few dozen rows by every weight of the model, so each weight streams
from memory once per step. PyTorch's CPU `linear` (MKL's sgemm) repacks the weight on every call;
oneDNN's matmul on a weight reordered ahead of time into its blocked layout does not. Measured on
this 2-core machine (throwaway microbenchmark, float32, the default model's 30 layers cycled so
the weights come from memory as in decoding): 64 rows 131 -> 187 GFLOP/s for the layers and
103 -> 197 for the (49152, 576) head; 32 rows 100 -> 147 and 72 -> 183. The reorder costs a copy
of the weights (0.13-0.17 s and the weights' size again for the default model), so it pays for a
loop of many steps on unchanged weights: sampling, not training.

This is the path PyTorch's own compiler takes for CPU linear layers
(`torch.ops.mkldnn._reorder_linear_weight` / `_linear_pointwise`), used here without compiling.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode


def prepacking_supported(weights: Iterable[torch.Tensor]) -> bool:
    """oneDNN is built in and the weights are 2D float32 on CPU.

    Not bfloat16: PyTorch's CPU linear already runs bf16 on oneDNN (same numbers, and no
    measurable gain from reordering ahead: 3417 tokens in 8.4 vs 8.0 s, min of 4, A/B).
    """
    if not torch.backends.mkldnn.is_available():
        return False
    return all(
        w.device.type == "cpu" and w.dim() == 2 and w.dtype == torch.float32 for w in weights
    )


class PrepackedLinearMode(TorchFunctionMode):
    """Routes `F.linear(x, w, b)` for the given weights to oneDNN's matmul on their reordered
    copies. Anything else (another weight, another dtype, a call that needs gradients) runs as
    it would without the mode."""

    def __init__(self, weights: Iterable[torch.Tensor], rows: int):
        super().__init__()
        # by identity: the same tensor object the module passes to F.linear
        self._packed: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for w in weights:
            if id(w) not in self._packed:
                plain = w.detach()
                self._packed[id(w)] = (w, torch.ops.mkldnn._reorder_linear_weight(plain, rows))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x, w = args[0], args[1] if len(args) > 1 else kwargs["weight"]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            entry = self._packed.get(id(w))
            if (
                entry is not None
                and entry[0].data_ptr() == w.data_ptr()
                and x.dtype == w.dtype
                and (bias is None or bias.dtype == w.dtype)
                and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))
            ):
                return torch.ops.mkldnn._linear_pointwise(x, entry[1], bias, "none", [None], "")
        return func(*args, **kwargs)


@contextlib.contextmanager
def prepacked_linears(weights: list[torch.Tensor], rows: int) -> Iterator[None]:
    """Within the block, linear layers with these weights run on oneDNN with weights reordered
    for about `rows` rows; a no-op where that is not supported (`prepacking_supported`).

    The reordered copies are taken on entry: weights changed inside the block are not seen.
    """
    if not weights or not prepacking_supported(weights):
        yield
        return
    with PrepackedLinearMode(weights, rows):
        yield
