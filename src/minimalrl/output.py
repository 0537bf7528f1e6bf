"""Output folders: checked before any work, and failed writes told in one line.

A run folder (`train --output`) or a results folder (`eval --output`) is made and probed for
writing before the model loads, so a path that is a file, a read-only place or a full disk stops
the command at once instead of after the work. A write that fails later (a disk that fills up
mid-run) is reported by `describe_write_error`: the path and the cause, never a traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


class OutputError(RuntimeError):
    """An output that cannot be written: the message names the path and the cause."""


LOW_SPACE_BYTES = 1 << 20
"""Free space under which a failed write is reported as a full disk, whatever its message."""


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` by `text` all at once: written beside it, then renamed over it, so a crash
    or a full disk leaves the old file or the new one, never half of either."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def prepare_output(path: str | Path, flag: str = "--output") -> Path:
    """Make the folder `path` (and its parents) and check that a file can be written in it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path}: is a file, not a folder")
    probe = path / ".minimalrl-write-test"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        cause = describe_write_error(err, path)
        raise OutputError(f"{flag} {path}: cannot write there ({cause})") from None
    return path


def describe_write_error(err: BaseException, where: Path) -> str:
    """The cause of a failed write under `where`, in a few words: an OS error's text, or a full
    disk when little space is left (torch and safetensors word that their own ways, or not at all).
    """
    if isinstance(err, OSError) and err.errno is not None:
        if err.errno == errno.ENOSPC:
            return "no space left on device"
        return (err.strerror or os.strerror(err.errno)).lower()
    text = str(err)
    if "No space left on device" in text or _free_bytes(where) < LOW_SPACE_BYTES:
        return "no space left on device"
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return f"{type(err).__name__}: {first[:160]}"


def _free_bytes(where: Path) -> int:
    """Free bytes on the file system holding `where` (or its nearest existing parent)."""
    for folder in (where, *where.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return LOW_SPACE_BYTES  # unknown: do not claim a full disk
