"""Reading a TrainConfig from a YAML file and `--set key=value` assignments, with errors that
name the file and the field (and the nearest known key for a misspelt one)."""

from __future__ import annotations

import difflib
import itertools
import types
import typing
from dataclasses import fields
from pathlib import Path

import yaml

from minimalrl.config import ConfigError, TrainConfig


def field_docs(cls: type = TrainConfig) -> dict[str, str]:
    """Each field's docstring (the string literal after it), read from the source."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr):
            value = getattr(nxt.value, "value", None)
            if isinstance(value, str):
                docs[node.target.id] = value  # type: ignore[union-attr]
    return docs


def _field_type(name: str) -> tuple[object, bool]:
    """The declared type of a field, without `| None`, and whether None is allowed."""
    tp = typing.get_type_hints(TrainConfig)[name]
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = typing.get_args(tp)
        return next(a for a in args if a is not type(None)), type(None) in args
    return tp, False


def _coerce(name: str, value: object) -> object:
    """Convert a YAML or command-line value to the field's declared type."""
    base, optional = _field_type(name)
    if optional and (value is None or str(value).lower() in ("none", "null")):
        return None
    text = str(value).lower()
    try:
        if base is bool:
            if isinstance(value, bool) or text in ("true", "false", "1", "0", "yes", "no"):
                return value if isinstance(value, bool) else text in ("true", "1", "yes")
            raise ValueError(value)
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)  # type: ignore[arg-type]
        if base is float:
            return float(value)  # type: ignore[arg-type]  (nan/inf too: validate names them)
        if typing.get_origin(base) is tuple:
            return _coerce_tuple(base, value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: cannot read {value!r} as {base}") from None


def _coerce_tuple(base: object, value: object) -> tuple:
    """A tuple field from a YAML list or `a,b` / `[a,b]` text; `tuple[str, ...]` items stay text
    ("none" or "" = no items), the others are numbers."""
    if isinstance(value, list | tuple):
        items = list(value)
    else:
        text = str(value).strip().removeprefix("[").removesuffix("]")
        items = [item.strip().strip("'\"") for item in text.split(",") if item.strip()]
    if typing.get_args(base)[0] is str:
        return tuple(str(v) for v in items if str(v).lower() != "none")
    return tuple(float(v) for v in items)


def build_config(
    file: str | Path | None = None, overrides: dict[str, object] | None = None
) -> TrainConfig:
    """TrainConfig from defaults, then a YAML file, then explicit overrides (later wins)."""
    values: dict[str, object] = {}
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys")
        values.update(typed_values(loaded, where=f"{path}: "))
    values.update(typed_values(overrides or {}))
    return TrainConfig(**values)  # type: ignore[arg-type]


def typed_values(values: dict, where: str = "") -> dict[str, object]:
    """Each value converted to its TrainConfig field's type; an unknown key is a ConfigError that
    starts with `where` (the file, or the run, it came from)."""
    known = {f.name for f in fields(TrainConfig)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{where}{unknown_key_message(key, known)}")
    return {key: _coerce(key, value) for key, value in values.items()}


def unknown_key_message(key: object, known: set[str]) -> str:
    """One short line: the unknown key and the closest field name (not all ~60 of them)."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.5)
    hint = (
        f"did you mean {close[0]!r}?"
        if close
        else "see the fields of TrainConfig in minimalrl/config.py"
    )
    return f"unknown config key {key!r}; {hint}"


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`["lr=1e-5", "algo=raft"]` -> {"lr": "1e-5", "algo": "raft"}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out
