"""The time-limited sympy worker behind `verify.py`.

One persistent child process runs math-verify on (answer, gold) pairs. The parent writes one pair
as a JSON line, waits at most `timeout` seconds for the verdict line, and on overrun kills the
child and starts a fresh one in the background.

The child is a plain `python -c` subprocess talking over stdin/stdout, not a `multiprocessing`
process: spawn and forkserver both re-import the caller's `__main__` in the child (re-running an
unguarded training script), fork would copy the trainer's threads and CUDA state, and daemonic
processes (DataLoader workers) may not start multiprocessing children at all. Waiting uses
`select` on the pipe, so this module is POSIX-only.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT = 120.0  # importing sympy takes ~0.5 s; allow for a loaded machine
FLOAT_DIGITS = 9  # math-verify's default of 6 makes 0.333333 equal 1/3 and 1.414214 equal √2
MEMORY_LIMIT_BYTES = 4 * 1024**3  # a runaway sympy integer fails with MemoryError, not swap
CACHE_SIZE = 4096  # GRPO groups repeat answers; remember recent verdicts
_CHILD_CODE = "from minimalrl.reward._worker import worker_main; worker_main()"


# --- the child side -------------------------------------------------------------------------


def _math_verify_equal(answer: str, gold: str) -> bool:
    """math-verify's verdict on two normalised answers (runs in the worker only).

    Both are wrapped in `$...$`: a bare `(3,\\pi/2)` parses to nothing otherwise. Its time limits
    are off (`None`) because they use signal.alarm; the parent enforces the limit. Floats are
    compared to FLOAT_DIGITS decimal places, so a decimal equals an exact value only when it
    carries it to 9 places.
    """
    from math_verify import parse, verify

    parsed_gold = parse(f"${gold}$", parsing_timeout=None)  # type: ignore[arg-type]
    parsed_answer = parse(f"${answer}$", parsing_timeout=None)  # type: ignore[arg-type]
    if not parsed_gold or not parsed_answer:
        return False
    return bool(
        verify(parsed_gold, parsed_answer, float_rounding=FLOAT_DIGITS, timeout_seconds=None)
    )


def _guard_child() -> None:
    """Cap memory where the OS allows, and exit if the parent dies while sympy is busy."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def worker_main() -> None:
    """Child loop: read `[answer, gold]` JSON lines, answer `1` or `0`; stop at end of input."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout is disabled" noise
    import math_verify  # noqa: F401  (import before saying ready: the first pair is not slowed)

    _guard_child()
    out = os.fdopen(os.dup(1), "w")  # the protocol channel; stray prints go to stderr instead
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            answer, gold = json.loads(line)
            ok = _math_verify_equal(str(answer), str(gold))
        except Exception:  # includes RecursionError and MemoryError on hostile input
            ok = False
        out.write("1\n" if ok else "0\n")
        out.flush()


# --- the parent side ------------------------------------------------------------------------


class _Child:
    """One worker process and the part of its output not yet read."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])  # so the child finds minimalrl
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal is the parent's business
        )
        self.buffer = b""
        self.ready = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self) -> bool:
        """Wait for the child to finish importing sympy; False if it died or never said so."""
        if not self.ready:
            try:
                self.ready = self.read_line(STARTUP_TIMEOUT) == "ready"
            except (EOFError, OSError):
                return False
        return self.ready

    def ask(self, answer: str, gold: str, timeout: float) -> bool | None:
        """The child's verdict on one pair, or None if it overran `timeout` or died."""
        try:
            self.proc.stdin.write(json.dumps([answer, gold]).encode() + b"\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            line = self.read_line(timeout)
        except (EOFError, OSError):
            return None
        return None if line is None else line == "1"

    def read_line(self, timeout: float) -> str | None:
        """The next output line, or None after `timeout` seconds; EOFError if the child died."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError("reward worker closed its output")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode().strip()

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


class Worker:
    """A lazily started, thread-safe handle on the sympy worker, with a warm spare.

    The spare (a second, idle process) takes over at once when the active one is killed, so a
    call after a timeout does not wait ~0.5 s for a fresh process to import sympy.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: _Child | None = None
        self._spare: _Child | None = None
        self._cache: OrderedDict[tuple[str, str], bool] = OrderedDict()

    def start(self) -> None:
        """Start the worker and its spare (without waiting for them) unless they run."""
        with self._lock:
            self._ensure_started()

    def close(self) -> None:
        """Stop both processes; the next comparison starts new ones."""
        with self._lock:
            for child in (self._active, self._spare):
                if child is not None:
                    child.kill()
            self._active = self._spare = None

    def compare(self, pairs: list[tuple[str, str]], timeout: float) -> list[bool]:
        """math-verify's verdict on each (answer, gold); False for any pair that overruns."""
        with self._lock:
            return [self._compare_one(answer, gold, timeout) for answer, gold in pairs]

    def _compare_one(self, answer: str, gold: str, timeout: float) -> bool:
        key = (answer, gold)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        verdict = self._ready_child().ask(answer, gold, timeout)
        if verdict is None:
            logger.info("reward: sympy gave up after %.1f s on %.120r; restarting", timeout, answer)
            self._replace_active()
            return False
        self._cache[key] = verdict
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return verdict

    def _ensure_started(self) -> None:
        if self._active is None or not self._active.alive():
            self._replace_active()
        if self._spare is None or not self._spare.alive():
            self._spare = _Child()

    def _ready_child(self) -> _Child:
        """The active child, started if needed and done importing sympy."""
        self._ensure_started()
        assert self._active is not None
        if not self._active.wait_ready():
            self._active.kill()
            self._active = None
            raise RuntimeError("the reward worker process did not start")
        return self._active

    def _replace_active(self) -> None:
        """Kill the active child and promote the spare (a new spare starts on next use)."""
        if self._active is not None:
            self._active.kill()
        spare, self._spare = self._spare, None
        self._active = spare if spare is not None and spare.alive() else _Child()
        self._spare = _Child()

    def kill_at_exit(self) -> None:
        """Kill both processes without the lock (a thread may hold it while Python exits)."""
        for child in (self._active, self._spare):
            if child is not None and child.alive():
                child.proc.kill()

    def _forget_after_fork(self) -> None:
        """In a forked child the processes belong to the parent: drop them untouched."""
        self._lock = threading.Lock()
        self._active = self._spare = None


WORKER = Worker()
atexit.register(WORKER.kill_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WORKER._forget_after_fork)
