"""Problems from tables: CSV files (the standard library) and Hugging Face datasets on disk.

What `load_problems` reads besides its names and JSON-lines files:
- a `.csv` file, with no dependency (each row's columns as text);
- with the `datasets` library (`pip install 'minimalrl[data]'`): a `.parquet`, `.arrow` or `.json`
  file, a folder of such files (splits from the file names, as `datasets.load_dataset(folder)`
  finds them: `train-00000-of-00001.parquet`, `test.jsonl`, `train/`...), or a `save_to_disk`
  folder (a Dataset or a DatasetDict).

Rows become problems exactly as JSON lines do (`problems.parse_row`: the same field detection,
`question_field` / `answer_field`, the same one-line errors, naming the file, split and row).
Nothing is downloaded: a hub id that is not a folder here says how to bring a local copy.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from minimalrl.data.problems import DataError, Problem, parse_row

DATASETS_SUFFIXES = (".parquet", ".arrow", ".json")
"""Files read through `datasets` (`.jsonl` and `.csv` have readers of their own)."""
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def read_csv(path: Path, limit: int | None, question_field: str | None,
             answer_field: str | None) -> list[Problem]:  # fmt: skip
    """Problems from a CSV file with a header row; `path:line` in errors."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            rows = ((reader.line_num, _cells(row)) for row in reader)
            return _problems(
                rows, limit, question_field, answer_field, label=str(path),
                where=lambda n: f"{path}:{n}", origin={"source": path.name}, key="line",
                stem=path.stem,
            )  # fmt: skip
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except csv.Error as e:
        raise DataError(f"{path}: not a CSV file ({e})") from e


def read_dataset(
    path: Path,
    limit: int | None,
    question_field: str | None,
    answer_field: str | None,
    split: str | None,
    prefer: str,
) -> list[Problem]:
    """Problems from a dataset file or folder on disk, split `split` (None: the only one, or
    `prefer` when there are several)."""
    if path.is_dir() and not _holds_a_dataset(path):
        raise DataError(
            f"{path}: is a directory with no dataset in it (no save_to_disk files, no "
            ".parquet, .arrow, .jsonl, .json or .csv files)"
        )
    datasets = _import_datasets(path)
    try:
        table = _open(datasets, path)
    except (OSError, ValueError, datasets.exceptions.DatasetNotFoundError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise DataError(f"{path}: not a dataset datasets can read ({first})") from None
    if isinstance(table, datasets.DatasetDict):
        name = _pick_split(path, list(table), split, prefer)
        table, where = table[name], f"{path} [split {name}]"
    else:
        if split:
            raise DataError(
                f"{path}: one table with no splits, so no split {split!r}: leave the split "
                "setting empty"
            )
        name, where = "", str(path)
    rows = ((i, dict(row)) for i, row in enumerate(table))
    origin = {"source": path.name, **({"split": name} if name else {})}
    return _problems(
        rows, limit, question_field, answer_field, label=where, where=lambda i: f"{where} row {i}",
        origin=origin, key="row", stem=f"{path.stem}/{name}" if name else path.stem,
    )  # fmt: skip


def hub_id_message(text: str) -> str | None:
    """For a name shaped like a hub dataset id (`owner/name`) that is not on disk: how to bring
    a local copy (nothing is downloaded here); None for other text."""
    if not HUB_ID.match(text) or Path(text).suffix in (".jsonl", ".csv", *DATASETS_SUFFIXES):
        return None
    folder = text.rsplit("/", 1)[1]
    return (
        f"{text!r} is not a file or folder here, and minimalrl downloads nothing. On a machine "
        f"that reaches the hub: python -c \"import datasets; datasets.load_dataset('{text}')"
        f".save_to_disk('{folder}')\" (add the config name if it has several), copy the folder "
        f"here and give its path (train_data={folder}, and train_split=, eval_split= to pick "
        "splits)"
    )


def _holds_a_dataset(folder: Path) -> bool:
    suffixes = {".jsonl", ".csv", *DATASETS_SUFFIXES}
    markers = ("dataset_dict.json", "state.json")
    return any(p.suffix in suffixes or p.name in markers for p in folder.rglob("*"))


def _import_datasets(path: Path) -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{path}: reading parquet, arrow and dataset folders needs the datasets library: "
            "pip install 'minimalrl[data]' (or bash scripts/setup.sh data); JSON-lines and CSV "
            "files need nothing more"
        ) from None
    datasets.disable_progress_bars()
    return datasets


def _open(datasets: Any, path: Path) -> Any:
    """The Dataset or DatasetDict at `path`."""
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            return datasets.load_from_disk(str(path))  # a save_to_disk folder
        return datasets.load_dataset(str(path))  # a folder of data files: splits by file name
    if path.suffix == ".arrow":
        return datasets.Dataset.from_file(str(path))
    builder = {".parquet": "parquet", ".json": "json"}[path.suffix]
    return datasets.load_dataset(builder, data_files=str(path), split="train")


def _pick_split(path: Path, splits: list[str], split: str | None, prefer: str) -> str:
    if split:
        if split not in splits:
            raise DataError(f"{path}: no split {split!r}; it has {splits}")
        return split
    if len(splits) == 1:
        return splits[0]
    if prefer in splits:
        return prefer
    raise DataError(
        f"{path}: several splits {splits} and none is {prefer!r}: name one with "
        "train_split= or eval_split="
    )


def _cells(row: dict) -> dict:
    """A CSV row's cells by column; cells past the header (key None) are dropped."""
    return {k: v for k, v in row.items() if k is not None}


def _problems(
    rows: Iterable[tuple[int, dict]],
    limit: int | None,
    question_field: str | None,
    answer_field: str | None,
    *,
    label: str,
    where: Any,
    origin: dict,
    key: str,
    stem: str,
) -> list[Problem]:
    """Row n of `rows` (from the source `label`) as a problem named `where(n)` in errors, with
    id `stem:n` and `origin` and {key: n} in its meta."""
    problems = []
    for n, row in rows:
        meta = {**origin, key: n}
        problems.append(parse_row(row, where(n), question_field, answer_field, meta, f"{stem}:{n}"))
        if limit is not None and len(problems) >= limit:
            break
    if not problems:
        raise DataError(f"{label}: no problems (the table has no rows)")
    return problems
