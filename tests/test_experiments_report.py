"""experiments/REPORT.md's tables are those of the generated report it names (sync_report.py):
the committed one is in sync, a stale table is rewritten, and a missing source or table is named."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "compare" / "sync_report.py"


def _sync():
    spec = importlib.util.spec_from_file_location("sync_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATED = """# minimalrl compare

| run | seeds | optimizer steps | avg@4 |
| --- | --- | --- | --- |
| grpo | 3 | 60 | 29.2 [26.3, 32.2] |

Some prose.

| finding (the paper) | effect |
| --- | --- |
| RAFT is a strong baseline | +1.19 |
"""


def test_the_committed_report_tables_are_its_sources():
    sync = _sync()
    assert sync.main(["--check"]) == 0


def test_a_stale_table_is_rewritten_and_the_prose_kept(tmp_path):
    sync = _sync()
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "report.md").write_text(GENERATED)
    report = tmp_path / "REPORT.md"
    text = (
        "# Report\n\n<!-- tables from gen/report.md -->\n\nHand-written.\n\n"
        "<!-- results table -->\n| run | seeds |\n| old | 1 |\n<!-- /results table -->\n\n"
        "Between.\n\n<!-- findings table -->\n| finding (the paper) | effect |\n| --- | --- |\n"
        "| RAFT is a strong baseline | +1.19 |\n<!-- /findings table -->\nAfter.\n"
    )
    new, changed = sync.synced(text, report)
    assert changed == ["results"]
    assert "| grpo | 3 | 60 | 29.2 [26.3, 32.2] |\n<!-- /results table -->" in new
    assert "| old | 1 |" not in new
    for prose in ("Hand-written.", "Between.", "After.", "| RAFT is a strong baseline | +1.19 |"):
        assert prose in new
    assert sync.synced(new, report)[1] == []


def test_a_missing_source_or_table_is_named(tmp_path):
    sync = _sync()
    report = tmp_path / "REPORT.md"
    with pytest.raises(SystemExit, match="no '<!-- tables from PATH -->' line"):
        sync.synced("<!-- results table -->\n<!-- /results table -->\n", report)
    with pytest.raises(SystemExit, match=r"gen/report\.md does not exist"):
        sync.synced("<!-- tables from gen/report.md -->\n", report)
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "report.md").write_text(GENERATED)
    with pytest.raises(SystemExit, match="has no ablations table"):
        sync.synced(
            "<!-- tables from gen/report.md -->\n<!-- ablations table -->\n"
            "<!-- /ablations table -->\n",
            report,
        )
