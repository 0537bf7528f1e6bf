"""Does a run made again from nothing match the committed one? Every logged number but the
timings, and every held-out outcome (per problem: correct samples of n, and the greedy verdict);
and, when the rerun's compare scored the initial model itself, that scoring's outcomes and sha256.

    python experiments/compare/check_rerun.py experiments/compare/results/runs/grpo_seed3 \
        experiments/compare/rerun_check/runs/grpo_seed3

Prints the number of values compared and every difference; exits 1 if there is one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TIMINGS = ("seconds", "tokens_per_second")  # a key holding one of these is a timing
# The held-out outcomes compared: of a run, and of the initial model (with its weights' hash).
SCORES = ("correct_counts", "greedy_correct", "avg_at_n", "pass_at_k", "greedy")
INITIAL = (*SCORES, "model_sha256", "train_temperature_counts", "train_temperature_avg")


def _is_timing(key: str) -> bool:
    return any(t in key for t in TIMINGS)


def differences(committed: Path, rerun: Path) -> tuple[int, list[str]]:
    """(values compared, differences) between two run folders of a compare."""
    rows = [
        [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        for d in (committed, rerun)
    ]
    compared, diffs = 0, []
    if len(rows[0]) != len(rows[1]):
        diffs.append(f"metrics.jsonl: {len(rows[0])} records vs {len(rows[1])}")
    for i, (a, b) in enumerate(zip(*rows)):
        for key in sorted(set(a) | set(b)):
            if _is_timing(key):
                continue
            compared += 1
            if a.get(key) != b.get(key):
                diffs.append(f"record {i} {key}: {a.get(key)!r} vs {b.get(key)!r}")
    after = [json.loads((d / "final_eval.json").read_text())["after"] for d in (committed, rerun)]
    more, found = _outcomes("final_eval", after, SCORES)
    compared, diffs = compared + more, diffs + found
    # The initial model's scoring, when the rerun's compare made its own (from nothing).
    initial = [run.parent.parent / "initial_eval.json" for run in (committed, rerun)]
    if all(p.is_file() for p in initial):
        scored = [json.loads(p.read_text()) for p in initial]
        more, found = _outcomes("initial_eval", scored, INITIAL)
        compared, diffs = compared + more, diffs + found
    return compared, diffs


def _outcomes(what: str, pair: list[dict], keys: tuple[str, ...]) -> tuple[int, list[str]]:
    compared, diffs = 0, []
    for key in keys:
        values = [a.get(key) for a in pair]
        compared += len(values[0]) if isinstance(values[0], list) else 1
        if values[0] != values[1]:
            diffs.append(f"{what} {key}: differs")
    return compared, diffs


def main(argv: list[str]) -> int:
    compared, diffs = differences(Path(argv[0]), Path(argv[1]))
    print(f"{compared} values compared, {len(diffs)} differ")
    for d in diffs:
        print("  " + d)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
