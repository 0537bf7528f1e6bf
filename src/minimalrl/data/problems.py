"""Problems (question + gold answer) and reading them from JSON-lines files.

One row per line. The question comes from the first of ``QUESTION_FIELDS`` present, the gold
answer from the first of ``ANSWER_FIELDS`` present, unless the caller names the fields. The gold
answer is read by its shape:

- a number -> its text (``12.0`` -> ``"12"``);
- a list -> the items joined with ``", "`` (a ``final_answer`` list);
- text holding ``\\boxed{...}`` (or a ``solution`` field) -> the last box's content (MATH);
- text holding ``####`` -> what follows it, commas removed (GSM8K: ``#### 1,234`` -> ``"1234"``);
- other text -> itself, stripped (MATH500's ``answer``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUESTION_FIELDS = ("question", "problem", "prompt", "input")
ANSWER_FIELDS = ("answer", "final_answer", "solution")


class DataError(ValueError):
    """Bad data or a bad dataset name: the message names the file, line and field at fault."""


@dataclass(frozen=True)
class Problem:
    """One task: a question and its gold answer as text."""

    question: str
    answer: str
    """The gold final answer only (``"18"``, ``"\\frac{\\pi}{2}"``), never a worked solution."""
    meta: dict[str, Any] = field(default_factory=dict, hash=False)
    """The row's other fields (subject, level, type, unique_id, solution...), source, line."""
    id: str = ""
    """``"<file stem>:<line>"`` for files, ``"arithmetic/<split>/<index>"`` for the synthetic."""


def read_jsonl(
    path: str | Path,
    limit: int | None = None,
    *,
    question_field: str | None = None,
    answer_field: str | None = None,
) -> list[Problem]:
    """Problems from a JSON-lines file; blank lines are skipped. Raises DataError on bad input."""
    check_limit(limit)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}")
    problems: list[Problem] = []
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                problems.append(_parse_line(line, path, lineno, question_field, answer_field))
                if limit is not None and len(problems) >= limit:
                    break
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
    if not problems:
        raise DataError(f"{path}: no problems (the file is empty or holds only blank lines)")
    return problems


def check_limit(limit: int | None) -> None:
    """Raise DataError unless ``limit`` is None or a positive integer."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive integer or None, got {limit!r}")


def _parse_line(
    line: str, path: Path, lineno: int, question_field: str | None, answer_field: str | None
) -> Problem:
    where = f"{path}:{lineno}"
    text = line.rstrip("\r\n")  # parsed with it, a line cut short is blamed on the next line
    try:
        row = json.loads(text)
    except json.JSONDecodeError as e:
        at = "the end of the line" if e.pos >= len(text) else f"column {e.pos + 1}"
        raise DataError(f"{where}: malformed JSON ({e.msg.removesuffix(' at')} at {at})") from e
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return parse_row(
        row, where, question_field, answer_field, {"source": path.name, "line": lineno},
        f"{path.stem}:{lineno}",
    )  # fmt: skip


def parse_row(
    row: dict[str, Any],
    where: str,
    question_field: str | None,
    answer_field: str | None,
    origin: dict[str, Any],
    problem_id: str,
) -> Problem:
    """One row (a JSON object, a table's row) as a Problem; `where` names it in errors, `origin`
    (its source and line or row) goes into its meta. A conversational question (TRL's `prompt`:
    a list of {"role", "content"} turns) is read as its user turn, its system turn kept in
    `meta["system_prompt"]`."""
    q_key = _pick_field(row, question_field, QUESTION_FIELDS, "question", where)
    question, system = row[q_key], None
    if isinstance(question, list):
        question, system = _user_turn(question, q_key, where)
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: field {q_key!r} should be non-empty text, got {question!r:.60}")
    a_key = _pick_field(row, answer_field, ANSWER_FIELDS, "answer", where)
    answer = _gold_answer(a_key, row[a_key], where)

    raw = row[a_key]
    meta = {k: v for k, v in row.items() if k not in (q_key, a_key)}
    if isinstance(raw, str) and raw.strip() != answer:  # a worked solution: GSM8K's answer, MATH's
        meta.setdefault("solution", raw)
    if system is not None:
        meta["system_prompt"] = system
    meta.update(origin)
    return Problem(question=question.strip(), answer=answer, meta=meta, id=problem_id)


def _user_turn(turns: list, key: str, where: str) -> tuple[str, str | None]:
    """The user's text and the system prompt (or None) of a conversational prompt: one user
    turn, optionally after one system turn, as TRL's conversational datasets have it."""
    if not all(isinstance(t, dict) and {"role", "content"} <= set(t) for t in turns):
        raise DataError(
            f"{where}: field {key!r} is a list but not of {{'role', 'content'}} turns: "
            f"{turns!r:.80}"
        )
    roles = [t["role"] for t in turns]
    if roles not in (["user"], ["system", "user"]):
        raise DataError(
            f"{where}: field {key!r} has the turns {roles}; minimalrl trains on one question: "
            "a user turn, optionally after a system turn"
        )
    system = turns[0]["content"] if roles[0] == "system" else None
    return turns[-1]["content"], system


def _pick_field(
    row: dict[str, Any], explicit: str | None, candidates: tuple[str, ...], what: str, where: str
) -> str:
    """The key to read: the explicit one (which must be present) or the first candidate present."""
    if explicit is not None:
        if row.get(explicit) is None:
            raise DataError(f"{where}: no {what} field {explicit!r}; row has fields {sorted(row)}")
        return explicit
    for key in candidates:
        if row.get(key) is not None:
            return key
    raise DataError(
        f"{where}: no {what} field found (tried {', '.join(map(repr, candidates))}); "
        f"row has fields {sorted(row)}; name it with {what}_field="
    )


def _gold_answer(key: str, value: Any, where: str) -> str:
    """The final answer held in ``row[key]``, as text (see the module docstring)."""
    if isinstance(value, bool):
        raise DataError(f"{where}: field {key!r} holds a boolean, not an answer")
    if isinstance(value, (int, float)):
        return _number_text(value, key, where)
    if isinstance(value, list) and value:
        return ", ".join(_gold_answer(key, v, where) for v in value)
    if not isinstance(value, str):
        raise DataError(
            f"{where}: field {key!r} should be text, a number or a list, got {value!r:.60}"
        )
    if key == "solution" or "\\boxed" in value:
        boxed = last_boxed(value)
        if boxed is None:
            raise DataError(f"{where}: field {key!r} has no complete \\boxed{{...}} answer")
        answer = boxed.strip()
    elif "####" in value:
        answer = value.rsplit("####", 1)[1].strip().replace(",", "")
    else:
        answer = value.strip()
    if not answer:
        raise DataError(f"{where}: field {key!r} holds an empty answer")
    return answer


def _number_text(value: float, key: str, where: str) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataError(f"{where}: field {key!r} is not a finite number: {value}")
        if value.is_integer():
            return str(int(value))
    return str(value)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` in ``text`` (nested braces matched), or None."""
    start = text.rfind("\\boxed{")
    while start != -1:
        depth, i = 0, start + len("\\boxed")
        for j in range(i, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1 : j]
        start = text.rfind("\\boxed{", 0, start)  # unclosed: try the one before
    return None
