"""experiments/REPORT.md's tables from the generated report.md it reads them from.

REPORT.md names its source in a line `<!-- tables from PATH -->` (PATH relative to REPORT.md), and
each block between `<!-- NAME table -->` and `<!-- /NAME table -->` is that report's table of
that name: so a table of the hand-written report cannot outlive the numbers it shows, and a
regenerated report is one command away from it.

    python experiments/compare/sync_report.py           # rewrite REPORT.md's tables
    python experiments/compare/sync_report.py --check   # exit 1, naming the tables, if stale
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "REPORT.md"
# A table of the generated report, by the start of its header row (minimalrl.eval.report.tables).
TABLES = {
    "results": "| run | seeds |",
    "seeds": "| run | seeds (in order) |",
    "ablations": "| run | against |",
    "findings": "| finding (the paper) |",
    "long arm": "| iteration | optimizer steps |",
}
SOURCE = re.compile(r"^<!-- tables from (\S+) -->$", re.M)
BLOCK = re.compile(r"^<!-- (?P<name>[a-z ]+) table -->\n(?P<body>.*?)^<!-- /(?P=name) table -->$",
                   re.M | re.S)  # fmt: skip


def generated_tables(report: Path) -> dict[str, str]:
    """The generated report's tables by name (TABLES), each its lines up to the first non-row."""
    lines = report.read_text().splitlines()
    found = {}
    for name, head in TABLES.items():
        start = next((i for i, line in enumerate(lines) if line.startswith(head)), None)
        if start is None:
            continue
        end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), None)
        found[name] = "\n".join(lines[start:end]) + "\n"
    return found


def synced(text: str, where: Path) -> tuple[str, list[str]]:
    """(REPORT.md's text with its tables from its source, the names of those that changed)."""
    source = SOURCE.search(text)
    if source is None:
        raise SystemExit(f"{where}: no '<!-- tables from PATH -->' line names the generated report")
    report = (where.parent / source.group(1)).resolve()
    if not report.is_file():
        raise SystemExit(f"{where}: its tables' source {source.group(1)} does not exist")
    tables = generated_tables(report)
    changed = []

    def table(m: re.Match) -> str:
        name = m.group("name")
        if name not in TABLES:
            raise SystemExit(f"{where}: unknown table {name!r}; known: {', '.join(TABLES)}")
        if name not in tables:
            raise SystemExit(f"{where}: {report} has no {name} table (its header: {TABLES[name]})")
        if m.group("body") != tables[name]:
            changed.append(name)
        return f"<!-- {name} table -->\n{tables[name]}<!-- /{name} table -->"

    return BLOCK.sub(table, text), changed


def main(argv: list[str]) -> int:
    text = REPORT.read_text()
    new, changed = synced(text, REPORT)
    if "--check" in argv:
        if changed:
            print(f"{REPORT}: stale tables: {', '.join(changed)} (run {Path(__file__).name})")
            return 1
        return 0
    if changed:
        REPORT.write_text(new)
    print(f"{REPORT}: {', '.join(changed) or 'no'} tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
