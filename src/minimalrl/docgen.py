"""The documentation's reference pages, generated from the code (the site's build hook calls these).

- `config_reference()`: every `TrainConfig` field, grouped as in the source, with its type,
  default and docstring, each under a heading whose anchor is the field's name (so a page that
  links a setting breaks `mkdocs build --strict` when the setting is renamed);
- `algorithm_reference()`: the registry's table and each algorithm's line;
- `cli_reference()`: every `minimalrl` command's help;
- `python_reference()`: the public API of `minimalrl/__init__.py`.

`check_settings(text)` names every `--set KEY=` of a page whose KEY is no field.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re

SET_KEY = re.compile(r"--set[ =]['\"]?([a-z_][a-z0-9_]*)=")


def config_groups() -> list[tuple[str, list[str]]]:
    """The fields of TrainConfig in source order, under the `# --- group` comments above them."""
    from minimalrl.config import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    groups: list[tuple[str, list[str]]] = []
    for line in inspect.getsource(TrainConfig).splitlines():
        heading = re.match(r"\s+# --- (.+)", line)
        field = re.match(r"\s{4}([a-z_][a-z0-9_]*): ", line)
        if heading:
            groups.append((heading.group(1).strip(), []))
        elif field and field.group(1) in names:
            if not groups:
                groups.append(("settings", []))
            groups[-1][1].append(field.group(1))
    return groups


def config_reference() -> str:
    """Markdown: every TrainConfig field with its type, default and docstring."""
    from minimalrl.config import TrainConfig
    from minimalrl.config_file import field_docs

    docs = field_docs()
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    out = [
        f"{len(fields)} settings. Each is a key of a YAML file (`--config`) and of `--set "
        "KEY=VALUE`; a wrong key, type or value is refused with one line naming it.",
        "",
    ]
    for group, names in config_groups():
        out += [f"## {group[0].upper()}{group[1:]}", ""]
        for name in names:
            f = fields[name]
            out += [
                f"### `{name}` {{#{name}}}",
                "",
                f"`{f.type}` · default `{_default(f)}`",
                "",
                _markdown(docs.get(name, "")),
                "",
            ]
    missing = sorted(set(fields) - {n for _, names in config_groups() for n in names})
    if missing:
        raise RuntimeError(f"fields outside every group of the reference: {missing}")
    return "\n".join(out)


def algorithm_reference() -> str:
    """Markdown: the registry's table (as `minimalrl algorithms` prints it) and each line."""
    from minimalrl.algorithms import ALGORITHMS, describe_registry

    lines = [f"- `{name}`: {alg.description}" for name, alg in ALGORITHMS.items()]
    return "\n".join([describe_registry(), "", *lines, ""])


def cli_reference() -> str:
    """Markdown: the help of `minimalrl` and of each of its commands."""
    from minimalrl.cli import build_parser

    parser = build_parser()
    out = ["```text", parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():  # type: ignore[attr-defined]
        out += [f"## `minimalrl {name}` {{#{name}}}", "", "```text",
                command.format_help().rstrip(), "```", ""]  # fmt: skip
    return "\n".join(out)


def python_reference() -> str:
    """Markdown: each public name of the package, its signature and docstring."""
    import minimalrl

    out = []
    for name, module in minimalrl._PUBLIC.items():
        value = getattr(importlib.import_module(module), name)
        if inspect.isclass(value) or inspect.isfunction(value):
            kind = "class" if inspect.isclass(value) else "def"
            head = f"{kind} {name}{_signature(value)}"
            doc = inspect.getdoc(value) or ""
        else:
            head, doc = f"{name}: {type(value).__name__}", VALUES.get(name, "")
        out += [f"## `{name}` {{#{name.lower()}}}", "", f"From `{module}`.", "", "```python",
                head, "```", "", _markdown(doc), ""]  # fmt: skip
    return "\n".join(out)


VALUES = {"ALGORITHMS": "The registry: name -> `Algorithm` record ([the table](algorithms.md))."}
"""Docs of the public names that are values (a value has no docstring of its own)."""


def _signature(value: object) -> str:
    """`(arguments)` of a function or class; `(...)` for a dataclass (its fields: the settings
    reference), "" where there is none to read."""
    if dataclasses.is_dataclass(value):
        return "(...)"
    try:
        return str(inspect.signature(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def check_settings(text: str) -> list[str]:
    """The KEYs of `--set KEY=` in `text` that are no TrainConfig field (`key`, `KEY`: the
    placeholder)."""
    from minimalrl.config import TrainConfig

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return sorted({key for key in SET_KEY.findall(text) if key not in known | {"key"}})


def _default(f: dataclasses.Field) -> str:
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return repr(value)


def _markdown(doc: str) -> str:
    """A docstring as Markdown: its lines joined (they are wrapped prose), escapes undone."""
    text = inspect.cleandoc(doc)
    return text.replace("\\\\", "\\")
