"""Name lookup shared by the registries here (an unknown name lists the valid ones), and calling a
pure function with the arguments it names."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class UnknownNameError(ValueError, KeyError):
    """An unknown registry name: a `ValueError` and a `KeyError`; its message lists valid names."""

    def __str__(self) -> str:
        # KeyError would repr-quote the message; show it as written.
        return str(self.args[0]) if self.args else ""


def lookup(table: Mapping[str, T], name: str, what: str) -> T:
    """`table[name]`, or `UnknownNameError` naming `what` and listing every valid key."""
    try:
        return table[name]
    except KeyError:
        valid = ", ".join(repr(key) for key in table)
        raise UnknownNameError(f"unknown {what} {name!r}; valid names: {valid}") from None


def parameters(fn: Callable[..., object]) -> frozenset[str]:
    """The names of `fn`'s parameters: what it reads."""
    return frozenset(inspect.signature(fn).parameters)


def call_with(fn: Callable[..., R], **available: object) -> R:
    """`fn` called with those of `available` that it names as parameters, by name.

    Lets pure functions of different needs share one call site: a filter that reads only
    `correct_PG` and one that reads `rewards_PG` and a band are both `call_with(f, ...)`."""
    names = parameters(fn)
    return fn(**{name: value for name, value in available.items() if name in names})
