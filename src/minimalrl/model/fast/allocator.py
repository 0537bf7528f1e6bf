"""CPU memory allocator settings for tensor-heavy loops (glibc malloc, Linux).

By default glibc serves every allocation above 32 MiB (and, adaptively, smaller ones) with a
fresh `mmap` and returns it to the kernel on free. A training step allocates and frees thousands
of activation tensors of that size, so each one is page-faulted and zeroed by the kernel again.
Telling malloc to serve them from its heap and keep freed memory for reuse (what jemalloc or
tcmalloc do, which PyTorch's CPU tuning guide recommends preloading) removes that cost (the
measurements: docs/measurements.md, "Speed"). The process's memory then stays near its peak
between phases instead of shrinking.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def keep_freed_memory() -> bool:
    """Make glibc malloc reuse freed memory instead of unmapping it; True when applied.

    A no-op (False) where the C library is not glibc. Affects the whole process, from now on.
    `mallopt` is not thread-safe: call this before starting threads that allocate (process
    groups, data loaders); the Trainer calls it before joining the process group.
    """
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1  # never mmap: large blocks come from the heap
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1  # never give the heap top back
    _applied = ok
    return ok
