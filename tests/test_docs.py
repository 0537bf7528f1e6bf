"""The documentation site: its reference is generated from the code and lists every setting, the
pages name only settings that exist, and `mkdocs build --strict` passes (where mkdocs is)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minimalrl import docgen
from minimalrl.algorithms import ALGORITHMS, describe_registry
from minimalrl.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def test_the_config_reference_lists_every_field_with_type_default_and_doc():
    from minimalrl.config_file import field_docs

    text = docgen.config_reference()
    docs = field_docs()
    for f in dataclasses.fields(TrainConfig):
        head = f"### `{f.name}` {{#{f.name}}}\n\n`{f.type}` · default `{f.default!r}`\n\n"
        assert head in text, f.name
        first_line = docs[f.name].strip().splitlines()[0].replace("\\\\", "\\")
        assert first_line in text, f.name


def test_the_algorithm_and_cli_references_are_generated():
    text = docgen.algorithm_reference()
    assert describe_registry() in text
    assert all(f"- `{name}`: " in text for name in ALGORITHMS)
    cli = docgen.cli_reference()
    for command in ("train", "eval", "algorithms", "plot", "merge", "compare"):
        assert f"## `minimalrl {command}` {{#{command}}}" in cli
    assert "--report-only" in cli and "--resume" in cli


def test_every_page_and_the_readme_name_only_settings_that_exist():
    pages = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
    assert len(pages) > 10
    for page in pages:
        assert docgen.check_settings(page.read_text()) == [], page
    assert docgen.check_settings("--set lr=1 --set lrr=2 --set KEY=VALUE") == ["lrr"]


@pytest.mark.skipif(shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None,
                    reason="mkdocs is not installed (the docs extra)")  # fmt: skip
def test_mkdocs_build_strict_passes(tmp_path):
    mkdocs = str(Path(sys.executable).parent / "mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "reference" / "config" / "index.html").read_text()
    assert all(f'id="{f.name}"' in page for f in dataclasses.fields(TrainConfig))
