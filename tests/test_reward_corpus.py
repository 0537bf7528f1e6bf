"""The labelled verifier corpus: every case must get its expected verdict.

`tests/data/verifier_corpus.jsonl` holds responses in the answer styles of the shipped benchmarks
(GSM8K, MATH500, Minerva), correct ones and wrong ones that look close, plus hostile input.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from minimalrl.reward import verify_batch

CORPUS = Path(__file__).parent / "data" / "verifier_corpus.jsonl"


def load_corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


def test_corpus_shape():
    cases = load_corpus()
    assert len(cases) >= 160
    assert Counter(c["expected"] for c in cases)[False] >= 50  # close-but-wrong answers matter
    for case in cases:
        assert {"response", "gold", "expected", "note"} <= case.keys(), case


def test_corpus_verdicts():
    """Every case, scored in two batches (with and without the last-number fallback)."""
    cases = load_corpus()
    wrong = []
    for fallback in (False, True):
        batch = [c for c in cases if c.get("fallback_last_number", False) is fallback]
        verdicts = verify_batch(
            [c["response"] for c in batch],
            [c["gold"] for c in batch],
            fallback_last_number=fallback,
            timeout=5.0,
        )
        wrong += [(c["note"], c["gold"]) for c, v in zip(batch, verdicts) if v != c["expected"]]
    assert not wrong, f"{len(wrong)} of {len(cases)} cases wrong: {wrong}"
