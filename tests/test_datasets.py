"""Hugging Face datasets as training and eval data: small real datasets written with `datasets`
(parquet, arrow, JSON, CSV, folders of files, save_to_disk folders), read back through
`load_data` and the CLI; named splits and columns, TRL's conversational `prompt`, clear errors."""

from __future__ import annotations

import builtins
import json

import pytest

from minimalrl.cli import main
from minimalrl.data import DataError, build_prompts, load_data, load_problems
from minimalrl.eval.metrics import read_metrics


@pytest.fixture(scope="module")
def datasets():
    """The `datasets` library (the `data` extra): the tests that write datasets need it."""
    return pytest.importorskip("datasets")


ROWS = {"q": [f"What is {i} + {i} ?" for i in range(6)], "a": [str(2 * i) for i in range(6)]}


def _toy(n: int = 16) -> dict[str, list]:
    """The toy task (every answer is 7), with columns named their own way."""
    return {"q": [f"What is {i % 10} + {(i * 3) % 10} ?" for i in range(n)], "a": ["7"] * n}


@pytest.fixture
def ds(datasets):
    return datasets.Dataset.from_dict(ROWS)


def test_parquet_arrow_json_csv_files_with_named_columns(datasets, ds, tmp_path):
    ds.to_parquet(tmp_path / "t.parquet")
    ds.to_json(tmp_path / "t.jsonl")  # (datasets writes JSON lines)
    ds.to_csv(tmp_path / "t.csv", index=False)
    arrow = datasets.Dataset.from_dict(ROWS)
    arrow.save_to_disk(tmp_path / "saved")
    [arrow_file] = (tmp_path / "saved").glob("*.arrow")
    for path in ("t.parquet", "t.jsonl", "t.csv", arrow_file):
        problems = load_data(str(tmp_path / path), question_field="q", answer_field="a")
        assert [p.question for p in problems] == ROWS["q"], path
        assert [p.answer for p in problems] == ROWS["a"], path


def test_save_to_disk_folders_and_split_folders(datasets, ds, tmp_path):
    split = datasets.DatasetDict({"train": ds.select(range(4)), "test": ds.select(range(4, 6))})
    split.save_to_disk(tmp_path / "dict")
    ds.save_to_disk(tmp_path / "one")
    files = tmp_path / "files"
    files.mkdir()
    split["train"].to_parquet(files / "train-00000-of-00001.parquet")
    split["test"].to_parquet(files / "test-00000-of-00001.parquet")
    names = {"question_field": "q", "answer_field": "a"}
    for folder in ("dict", "files"):
        train = load_data(str(tmp_path / folder), **names)  # default: "train"
        test = load_data(str(tmp_path / folder), **names, prefer_split="test")  # eval's default
        named = load_data(str(tmp_path / folder), **names, split="test")
        assert [p.answer for p in train] == ["0", "2", "4", "6"], folder
        assert [p.answer for p in test] == [p.answer for p in named] == ["8", "10"], folder
        assert test[0].meta["split"] == "test" and test[0].id.endswith("/test:0")
    assert len(load_data(str(tmp_path / "one"), **names)) == 6  # a Dataset: its only table
    with pytest.raises(DataError, match=r"dict: no split 'validation'; it has \['train', 'test'\]"):
        load_data(str(tmp_path / "dict"), **names, split="validation")
    with pytest.raises(DataError, match="one table with no splits, so no split 'test'"):
        load_data(str(tmp_path / "one"), **names, split="test")


def test_trl_conversational_prompt_is_the_user_turn(datasets, tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    rows = {
        "prompt": [
            [{"role": "user", "content": "What is 1 + 1 ?"}],
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2 ?"}],
        ],
        "solution": ["The sum is \\boxed{2}.", "\\boxed{4}"],
    }
    datasets.Dataset.from_dict(rows).to_parquet(tmp_path / "conv.parquet")
    problems = load_data(str(tmp_path / "conv.parquet"))  # prompt and solution: detected
    got = [(p.question, p.answer) for p in problems]
    assert got == [("What is 1 + 1 ?", "2"), ("2 + 2 ?", "4")]
    assert "system_prompt" not in problems[0].meta and problems[1].meta["system_prompt"] == (
        "Be brief."
    )  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}<assistant> "
    )
    prompts = build_prompts(tokenizer, problems, instruction="")
    assert prompts == ["<user> What is 1 + 1 ? <assistant> ",
                       "<system> Be brief. <user> 2 + 2 ? <assistant> "]  # fmt: skip
    assert build_prompts(tokenizer, problems[1:], instruction="", system_prompt="S")[0] == (
        "<system> S <user> 2 + 2 ? <assistant> "
    )  # the config's system_prompt replaces the row's


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"q": ["ok ?", " "], "a": ["1", "2"]}, r"bad.parquet row 1: field 'q' should be non-"),
        ({"q": ["ok ?", "x ?"], "a": ["1", ""]}, r"bad.parquet row 1: field 'a' holds an empty"),
        ({"query": ["x ?"], "a": ["1"]}, r"row 0: no question field 'q'; row has fields \['a', "),
        ({"q": [[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]],
          "a": ["1"]}, r"row 0: field 'q' has the turns \['user', 'assistant'\]"),
    ],
)  # fmt: skip
def test_bad_rows_are_one_line_naming_file_row_and_field(datasets, rows, message, tmp_path):
    datasets.Dataset.from_dict(rows).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=message):
        load_data(str(tmp_path / "bad.parquet"), question_field="q", answer_field="a")


def test_several_splits_and_none_preferred_asks_for_one(datasets, ds, tmp_path):
    datasets.DatasetDict({"a": ds, "b": ds}).save_to_disk(tmp_path / "d")
    with pytest.raises(DataError, match=r"several splits \['a', 'b'\] and none is 'train'"):
        load_data(str(tmp_path / "d"), question_field="q", answer_field="a")


def test_a_hub_id_not_on_disk_says_nothing_is_downloaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        load_problems("openai/gsm8k")
    text = str(err.value)
    assert "'openai/gsm8k' is not a file or folder here, and minimalrl downloads nothing" in text
    assert "load_dataset('openai/gsm8k').save_to_disk('gsm8k')" in text
    assert "train_data=gsm8k" in text and "\n" not in text


def test_without_datasets_parquet_names_the_extra_and_jsonl_csv_still_read(
    ds, tmp_path, monkeypatch
):
    ds.to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.csv").write_text("q,a\nWhat is 1 ?,1\n")
    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets" or name.startswith("datasets."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(DataError, match=r"needs the datasets library: pip install 'minimalrl\["):
        load_data(str(tmp_path / "t.parquet"))
    [p] = load_data(str(tmp_path / "t.csv"), question_field="q", answer_field="a")
    assert (p.question, p.answer, p.meta["line"]) == ("What is 1 ?", "1", 2)


def test_train_on_a_parquet_file_and_eval_on_a_split_of_a_saved_dataset(
    datasets, tiny_model_dir, tmp_path, capsys
):
    """The issue's check: `--set train_data=<a parquet file>` with named columns trains."""
    datasets.Dataset.from_dict(_toy()).to_parquet(tmp_path / "train.parquet")
    held = datasets.DatasetDict({"train": datasets.Dataset.from_dict(_toy(4)),
                                 "test": datasets.Dataset.from_dict(_toy(6))})  # fmt: skip
    held.save_to_disk(tmp_path / "held")
    out = tmp_path / "run"
    sets = {"model": tiny_model_dir, "train_data": tmp_path / "train.parquet",
            "eval_data": tmp_path / "held", "question_field": "q", "answer_field": "a",
            "iterations": 2, "prompts_per_iteration": 4, "samples_per_prompt": 2,
            "max_new_tokens": 4, "eval_every": 2, "threads": 1, "report_to": "none"}  # fmt: skip
    argv = ["train", "--output", str(out), "--no-progress"]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    assert main(argv) == 0, capsys.readouterr().err
    records = read_metrics(out)
    assert [r["iteration"] for r in records] == [0, 1, 2]
    assert records[0]["eval_problems"] == 6  # eval_split "" -> "test" of the saved DatasetDict
    saved = json.loads((out / "checkpoints" / "iter_000002" / "config.json").read_text())
    assert saved["question_field"] == "q" and saved["train_data"].endswith("train.parquet")
    capsys.readouterr()
    # the eval command reads the same sources
    argv = ["eval", "--model", str(tiny_model_dir), "--benchmark", str(tmp_path / "held"),
            "--split", "train", "--question-field", "q", "--answer-field", "a",
            "--max-new-tokens", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "problems 4 " in capsys.readouterr().out  # the train split


def test_cli_bad_dataset_is_one_line_before_the_model_loads(ds, tmp_path, capsys):
    ds.to_parquet(tmp_path / "t.parquet")
    argv = ["train", "--set", f"train_data={tmp_path / 't.parquet'}", "--set",
            "question_field=question", "--output", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "t.parquet row 0: no question field 'question'" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_csv_needs_nothing_and_names_the_line_of_a_bad_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('q,a\n"What is 1, plus 1 ?",2\n"x ?",\n')
    with pytest.raises(DataError, match=r"t.csv:3: no answer field 'a'|t.csv:3: field 'a' holds"):
        load_data(str(path), question_field="q", answer_field="a")
    path.write_text('question,answer\n"What is 1, plus 1 ?",2\n')
    [p] = load_data(str(path))  # fields detected as in JSON lines
    assert (p.question, p.answer, p.id) == ("What is 1, plus 1 ?", "2", "t:2")
