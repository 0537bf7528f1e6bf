"""MkDocs hooks: the reference pages generated from the code, and settings checked by name.

A page's line holding `<!-- minimalrl:NAME -->` is replaced by `minimalrl.docgen`'s generated
Markdown (the rest of that line is for a reader of the bare file), and a
page that says `--set KEY=` for a KEY that is no setting fails the build (`mkdocs build
--strict` also fails on a link to a setting's anchor that no longer exists).
"""

from __future__ import annotations

from mkdocs.exceptions import PluginError

from minimalrl import docgen

GENERATED = {
    "config": docgen.config_reference,
    "algorithms": docgen.algorithm_reference,
    "algorithm-table": lambda: docgen.algorithm_reference().split("\n\n", 1)[0] + "\n",
    "cli": docgen.cli_reference,
    "python": docgen.python_reference,
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    unknown = docgen.check_settings(markdown)
    if unknown:
        raise PluginError(f"{page.file.src_path}: --set of settings that do not exist: {unknown}")
    lines = markdown.splitlines()
    for name, make in GENERATED.items():
        marker = f"<!-- minimalrl:{name} -->"
        # the whole line goes: beside the marker, what a reader of the bare file sees instead
        lines = [make() if marker in line else line for line in lines]
    return "\n".join(lines) + "\n"
