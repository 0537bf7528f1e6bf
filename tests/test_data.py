"""Loading problems: the shipped benchmarks, field detection, gold answers and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from minimalrl.data import DATASET_NAMES, DataError, Problem, last_boxed, load_problems

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# name -> (rows, first gold answer)
SHIPPED = {
    "gsm8k": (1319, "18"),
    "gsm8k_train": (7473, "72"),
    "math500": (500, "\\left( 3, \\frac{\\pi}{2} \\right)"),
    "minerva_math": (272, "1.6"),
}
SHARED_FILES = {
    "gsm8k": "benchmarks/gsm8k_test.jsonl",
    "gsm8k_train": "train/gsm8k_train.jsonl",
    "math500": "benchmarks/math500.jsonl",
    "minerva_math": "benchmarks/minerva_math.jsonl",
}


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    """Rows as JSON lines; a str row is written verbatim (for blank or broken lines)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# --- shipped benchmarks --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_benchmark_counts_and_first_answer(name):
    problems = load_problems(name)
    rows, first_answer = SHIPPED[name]
    assert len(problems) == rows
    assert problems[0].answer == first_answer
    assert all(p.question and p.answer for p in problems)
    assert len({p.id for p in problems}) == rows


@pytest.mark.parametrize("name", list(SHARED_FILES))
def test_shared_files_by_path_match_shipped_copies(name):
    path = SHARED_DATA / SHARED_FILES[name]
    if not path.is_file():
        pytest.skip(f"{path} not present")
    assert load_problems(str(path)) == load_problems(name)
    assert load_problems(path, limit=3) == load_problems(name)[:3]


def test_gsm8k_answers_are_plain_numbers():
    for name in ("gsm8k", "gsm8k_train"):
        bad = [
            p.answer for p in load_problems(name) if not re.fullmatch(r"-?\d+(\.\d+)?", p.answer)
        ]
        assert bad == []
    first = load_problems("gsm8k", limit=1)[0]
    assert first.question.startswith("Janet’s ducks lay 16 eggs per day.")
    assert first.meta["solution"].endswith("#### 18")  # the worked answer is kept
    assert first.meta["source"] == "gsm8k_test.jsonl" and first.meta["line"] == 1
    assert first.id == "gsm8k_test:1"


def test_gsm8k_answer_with_thousands_separator():
    raw = [
        p for p in load_problems("gsm8k_train") if "," in p.meta["solution"].rsplit("####", 1)[1]
    ]
    assert raw, "expected some comma answers in GSM8K train"
    assert all("," not in p.answer for p in raw)


def test_math500_fields_and_meta():
    p = load_problems("math500", limit=2)[1]
    assert p.question.startswith("Define\n\\[p = \\sum_{k = 1}^\\infty")
    assert p.answer == "p - q"
    assert p.meta["subject"] == "Intermediate Algebra"
    assert isinstance(p.meta["level"], int)
    assert p.meta["unique_id"].startswith("test/")
    assert "\\boxed" in p.meta["solution"]


def test_minerva_answers_come_from_last_boxed():
    problems = load_problems("minerva_math")
    assert [p.answer for p in problems[:5]] == ["1.6", "4.5e33", "41.8", "20.39", "0.006"]
    assert problems[12].answer.startswith("\\frac{2 \\pi c^{2} R^{2}}{\\lambda^{5}\\left[")
    assert problems[12].answer.endswith("\\right] d^{2}}")  # nested braces kept whole
    assert problems[0].meta["type"].startswith("Introduction to Astronomy")
    assert problems[0].meta["idx"] == 0


def test_limit_takes_the_first_rows():
    assert [p.answer for p in load_problems("gsm8k", limit=3)] == ["18", "3", "70000"]
    assert len(load_problems("minerva_math", limit=10_000)) == 272


# --- field detection and answer forms ------------------------------------------------------


def test_answer_forms(tmp_path):
    path = write_jsonl(
        tmp_path / "forms.jsonl",
        [
            {"question": "q1", "answer": "Work.\n#### 1,234"},
            {"problem": "q2", "final_answer": ["(1, 2)", "(3, 4)"]},
            {"problem": "q3", "final_answer": "x^2"},
            {"prompt": "q4", "answer": 42},
            {"input": "q5", "answer": 12.0},
            {"question": "q6", "answer": 2.5},
            {"problem": "q7", "solution": "So $\\boxed{\\frac{1}{2}}$, not \\boxed{\\{a, b\\}}."},
            {"problem": "q8", "solution": "\\boxed{\\frac{\\sqrt{3}}{2}} done"},
            {"problem": "q9", "answer": "  \\frac{1}{2} ", "solution": "\\boxed{0.5}"},
            {"problem": "q10", "answer": "$\\boxed{7}$"},
            {"question": "q11", "answer": "#### -3"},
        ],
    )
    problems = load_problems(str(path))
    assert [p.question for p in problems] == [f"q{i}" for i in range(1, 12)]
    assert [p.answer for p in problems] == [
        "1234",
        "(1, 2), (3, 4)",
        "x^2",
        "42",
        "12",
        "2.5",
        "\\{a, b\\}",
        "\\frac{\\sqrt{3}}{2}",
        "\\frac{1}{2}",  # "answer" is preferred to the solution's box
        "7",
        "-3",
    ]
    assert problems[0].meta["solution"] == "Work.\n#### 1,234"
    assert problems[8].meta["solution"] == "\\boxed{0.5}"
    assert "solution" not in problems[2].meta
    assert problems[3].id == "forms:4"


def test_blank_lines_are_skipped_and_lines_counted(tmp_path):
    path = write_jsonl(tmp_path / "b.jsonl", ["", {"question": "a", "answer": "1"}, "   ", "\t"])
    path.write_text(path.read_text() + json.dumps({"question": "b", "answer": "2"}) + "\n\n")
    problems = load_problems(str(path))
    assert [(p.question, p.meta["line"]) for p in problems] == [("a", 2), ("b", 5)]


def test_explicit_fields_override_detection(tmp_path):
    path = write_jsonl(
        tmp_path / "custom.jsonl",
        [{"question": "ignored", "text": "What is 1 + 1?", "answer": "9", "gold": 2, "src": "x"}],
    )
    (p,) = load_problems(str(path), question_field="text", answer_field="gold")
    assert (p.question, p.answer) == ("What is 1 + 1?", "2")
    assert p.meta["question"] == "ignored" and p.meta["answer"] == "9" and p.meta["src"] == "x"
    (p,) = load_problems(str(path), answer_field="answer")
    assert (p.question, p.answer) == ("ignored", "9")


def test_problem_is_frozen_and_hashable():
    p = Problem("q", "1", {"level": 1})
    with pytest.raises(AttributeError):
        p.answer = "2"  # type: ignore[misc]
    assert hash(p) == hash(Problem("q", "1", {"level": 2}))
    assert Problem("q", "1").meta == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{5}", "5"),
        ("a \\boxed{1} b \\boxed{2} c", "2"),
        ("\\boxed{\\frac{a}{b}}", "\\frac{a}{b}"),
        ("\\boxed{{{x}}}", "{{x}}"),
        ("\\boxed{1} then \\boxed{2", "1"),  # an unclosed last box falls back to the one before
        ("no box", None),
        ("\\boxed{", None),
        ("\\boxed{}", ""),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


# --- bad input -----------------------------------------------------------------------------


def error_for(tmp_path, rows, **kwargs) -> str:
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_problems(str(path), **kwargs)
    return str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jsonl: no such file"):
        load_problems(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match="is a directory"):
        load_problems(str(tmp_path))


def test_empty_file(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match=r"empty\.jsonl: no problems"):
        load_problems(str(tmp_path / "empty.jsonl"))
    (tmp_path / "blank.jsonl").write_text("\n  \n\n")
    with pytest.raises(DataError, match=r"blank\.jsonl: no problems"):
        load_problems(str(tmp_path / "blank.jsonl"))


def test_malformed_json_names_file_and_line(tmp_path):
    ok = {"question": "q", "answer": "1"}
    msg = error_for(tmp_path, [ok, "", '{"question": "q", "answer": '])
    assert "bad.jsonl:3: malformed JSON" in msg
    assert "bad.jsonl:2: expected a JSON object, got list" in error_for(tmp_path, [ok, "[1, 2]"])


def test_not_utf8(tmp_path):
    (tmp_path / "latin.jsonl").write_bytes(b'{"question": "caf\xe9", "answer": "1"}\n')
    with pytest.raises(DataError, match=r"latin\.jsonl: not UTF-8"):
        load_problems(str(tmp_path / "latin.jsonl"))


def test_missing_question_names_fields_tried(tmp_path):
    msg = error_for(tmp_path, [{"question": "q", "answer": "1"}, {"text": "q", "answer": "1"}])
    assert "bad.jsonl:2: no question field found" in msg
    for name in ("'question'", "'problem'", "'prompt'", "'input'", "['answer', 'text']"):
        assert name in msg


def test_missing_answer_names_fields_tried(tmp_path):
    msg = error_for(tmp_path, [{"question": "q", "gold": "1"}])
    assert "bad.jsonl:1: no answer field found" in msg
    assert "'answer', 'final_answer', 'solution'" in msg and "answer_field=" in msg
    msg = error_for(tmp_path, [{"question": "q", "answer": None}])  # null counts as absent
    assert "bad.jsonl:1: no answer field found" in msg


def test_explicit_field_missing(tmp_path):
    msg = error_for(tmp_path, [{"question": "q", "answer": "1"}], answer_field="gold")
    assert "bad.jsonl:1: no answer field 'gold'" in msg and "['answer', 'question']" in msg
    msg = error_for(tmp_path, [{"question": "q", "answer": "1"}], question_field="text")
    assert "bad.jsonl:1: no question field 'text'" in msg


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"problem": "q", "solution": "the answer is 4"},
            "field 'solution' has no complete \\boxed",
        ),
        ({"problem": "q", "solution": "\\boxed{4"}, "field 'solution' has no complete \\boxed"),
        ({"question": "q", "answer": "   "}, "field 'answer' holds an empty answer"),
        ({"question": "q", "answer": "#### "}, "field 'answer' holds an empty answer"),
        ({"question": "q", "answer": True}, "field 'answer' holds a boolean"),
        (
            {"question": "q", "answer": {"x": 1}},
            "field 'answer' should be text, a number or a list",
        ),
        ({"question": "q", "final_answer": []}, "field 'final_answer' should be text"),
        ({"question": "q", "answer": float("nan")}, "field 'answer' is not a finite number"),
        ({"question": "  ", "answer": "1"}, "field 'question' should be non-empty text"),
        ({"question": 7, "answer": "1"}, "field 'question' should be non-empty text"),
    ],
)
def test_unusable_values_name_line_and_field(tmp_path, row, expected):
    msg = error_for(tmp_path, [{"question": "fine", "answer": "1"}, row])
    assert msg.startswith(str(tmp_path / "bad.jsonl") + ":2: ")
    assert expected in msg


@pytest.mark.parametrize("name", ["gsm8k_tst", "", "MATH500"])
def test_unknown_name_lists_known_names(name):
    with pytest.raises(DataError) as info:
        load_problems(name)
    msg = str(info.value)
    assert f"unknown dataset {name!r}" in msg
    assert all(known in msg for known in DATASET_NAMES)


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "3"])
def test_bad_limit(limit):
    with pytest.raises(DataError, match="limit must be a positive integer"):
        load_problems("gsm8k", limit=limit)


def test_bad_argument_type():
    with pytest.raises(DataError, match="expected a dataset name or a path"):
        load_problems(None)  # type: ignore[arg-type]


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)
