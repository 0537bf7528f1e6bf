"""Problems for training and evaluation, and the prompts built from them.

``load_problems`` takes a short name, an arithmetic spec or a path:

- ``gsm8k`` (test, 1319), ``gsm8k_train`` (7473), ``math500`` (500), ``minerva_math`` (272):
  JSON-lines files shipped in this folder;
- ``arithmetic`` (1000 train problems) and ``arithmetic_test`` (500 test problems), or with knobs,
  ``arithmetic:digits=2,num_ops=1,ops=+-,n=500,seed=0,split=test`` (see ``synthetic.py``);
- anything else is the path to a JSON-lines file (fields detected as in ``problems.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from minimalrl.data.problems import DataError, Problem, check_limit, last_boxed, read_jsonl
from minimalrl.data.prompts import DEFAULT_INSTRUCTION, build_prompt, build_prompts
from minimalrl.data.synthetic import parse_arithmetic_spec, synthetic_arithmetic

__all__ = [
    "BENCHMARKS",
    "DATASET_NAMES",
    "DEFAULT_INSTRUCTION",
    "SYNTHETIC",
    "DataError",
    "Problem",
    "build_prompt",
    "build_prompts",
    "last_boxed",
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
) -> list[Problem]:
    """The first ``limit`` problems (all if None) of a dataset name, arithmetic spec or JSONL path.

    ``question_field`` / ``answer_field`` name the fields to read, overriding detection (files
    only). Raises DataError, naming the file, line and field, on anything it cannot read.
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
        if not text or (_looks_like_name(text) and not path.exists()):
            raise DataError(
                f"unknown dataset {text!r}: known names are {', '.join(DATASET_NAMES)} "
                "(or arithmetic:key=value,...), or give the path to a .jsonl file"
            )
    return read_jsonl(path, limit, question_field=question_field, answer_field=answer_field)


def _looks_like_name(text: str) -> bool:
    """True for a bare word like ``gsm8k_test``: no folder and no file extension."""
    return not any(c in text for c in "/\\.")
