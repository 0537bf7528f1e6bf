"""Name lookup shared by the registries here: an unknown name lists the valid ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


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
