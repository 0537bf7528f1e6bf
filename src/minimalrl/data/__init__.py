"""Problems for training and evaluation, and the prompts built from them.

``load_problems`` takes a short name, an arithmetic spec or a path:

- ``gsm8k`` (test, 1319), ``gsm8k_train`` (7473), ``math500`` (500), ``minerva_math`` (272):
  JSON-lines files shipped in this folder;
- ``arithmetic`` (1000 train problems) and ``arithmetic_test`` (500 test problems), or with knobs,
  ``arithmetic:digits=2,num_ops=1,ops=+-,n=500,seed=0,split=test`` (see ``synthetic.py``);
- anything else is a path: a JSON-lines or CSV file, or with the ``datasets`` library a parquet,
  arrow or JSON file, a folder of them, or a ``save_to_disk`` folder (``tables.py``); fields are
  detected as in ``problems.py`` or named by ``question_field`` / ``answer_field``.
"""

from __future__ import annotations

import os
from pathlib import Path

from minimalrl.data.problems import DataError, Problem, check_limit, last_boxed, read_jsonl
from minimalrl.data.prompts import DEFAULT_INSTRUCTION, build_prompt, build_prompts
from minimalrl.data.synthetic import parse_arithmetic_spec, synthetic_arithmetic
from minimalrl.data.tables import DATASETS_SUFFIXES, hub_id_message, read_csv, read_dataset

__all__ = [
    "BENCHMARKS",
    "DATASET_NAMES",
    "DEFAULT_INSTRUCTION",
    "SYNTHETIC",
    "DataError",
    "Problem",
    "build_prompt",
    "build_prompts",
    "is_builtin",
    "last_boxed",
    "load_data",
    "load_problems",
    "read_jsonl",
    "synthetic_arithmetic",
]

DATA_DIR = Path(__file__).resolve().parent
BENCHMARKS = {
    "gsm8k": "gsm8k_test.jsonl",
    "gsm8k_train": "gsm8k_train.jsonl",
    "math500": "math500.jsonl",
    "minerva_math": "minerva_math.jsonl",
}
"""Short name -> file shipped next to this module."""
SYNTHETIC: dict[str, dict[str, int | str]] = {
    "arithmetic": {"n": 1000, "split": "train"},
    "arithmetic_test": {"n": 500, "split": "test"},
}
"""Short name -> defaults for synthetic_arithmetic; a ``:key=value,...`` suffix overrides them."""
DATASET_NAMES = (*BENCHMARKS, *SYNTHETIC)


def load_problems(
    path_or_name: str | os.PathLike[str],
    limit: int | None = None,
    *,
    question_field: str | None = None,
    answer_field: str | None = None,
    split: str | None = None,
    prefer_split: str = "train",
) -> list[Problem]:
    """The first ``limit`` problems (all if None) of a dataset name, arithmetic spec or path.

    ``question_field`` / ``answer_field`` name the fields to read, overriding detection (files
    only). ``split`` picks a split of a dataset folder (None: its only split, or
    ``prefer_split`` when it has several). Raises DataError, naming the file, line (or split and
    row) and field, on anything it cannot read.
    """
    check_limit(limit)
    if not isinstance(path_or_name, (str, os.PathLike)):
        raise DataError(f"expected a dataset name or a path, got {path_or_name!r}")
    text = os.fspath(path_or_name)
    name, _, spec = text.partition(":")
    if isinstance(path_or_name, str) and name in SYNTHETIC:
        if question_field is not None or answer_field is not None:
            raise DataError(f"{name}: question_field and answer_field apply to files only")
        kwargs = {**SYNTHETIC[name], **parse_arithmetic_spec(spec)}
        if limit is not None:
            kwargs["n"] = min(int(kwargs["n"]), limit)  # the first k of n are the k made first
        return synthetic_arithmetic(**kwargs)  # type: ignore[arg-type]
    if isinstance(path_or_name, str) and text in BENCHMARKS:
        path = DATA_DIR / BENCHMARKS[text]
    else:
        path = Path(text)
        if not path.exists() and hub_id_message(text):
            raise DataError(hub_id_message(text))
        if not text or (_looks_like_name(text) and not path.exists()):
            raise DataError(
                f"unknown dataset {text!r}: known names are {', '.join(DATASET_NAMES)} "
                "(or arithmetic:key=value,...), or give the path to a .jsonl, .csv or .parquet "
                "file or a dataset folder"
            )
    fields = {"question_field": question_field, "answer_field": answer_field}
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir() or path.suffix in DATASETS_SUFFIXES:
        return read_dataset(path, limit, *fields.values(), split or None, prefer_split)
    if split:
        raise DataError(f"{path}: one file with no splits, so no split {split!r}")
    if path.suffix == ".csv":
        return read_csv(path, limit, *fields.values())
    return read_jsonl(path, limit, **fields)


def load_data(
    spec: str,
    *,
    question_field: str = "",
    answer_field: str = "",
    split: str = "",
    prefer_split: str = "train",
    limit: int | None = None,
) -> list[Problem]:
    """`load_problems` with a config's data settings ("" = unset): the field names and split
    apply to files and datasets; a built-in name or arithmetic spec has its own and ignores them
    (so one config can train on a parquet file and evaluate on `gsm8k`)."""
    if is_builtin(spec):
        return load_problems(spec, limit)
    return load_problems(
        spec, limit, question_field=question_field or None, answer_field=answer_field or None,
        split=split or None, prefer_split=prefer_split,
    )  # fmt: skip


def is_builtin(spec: str) -> bool:
    """True for a shipped benchmark name or a synthetic spec (`arithmetic:...`)."""
    return spec in BENCHMARKS or spec.partition(":")[0] in SYNTHETIC


def _looks_like_name(text: str) -> bool:
    """True for a bare word like ``gsm8k_test``: no folder and no file extension."""
    return not any(c in text for c in "/\\.")
