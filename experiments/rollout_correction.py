"""The table of experiments/rollout_correction.sh: per run and iteration, the sampler/trainer
mismatch (r = π_old/π_sampler per sampled token), what tis did, and the training curves.

    python experiments/rollout_correction.py experiments/rollout_correction
"""

from __future__ import annotations

import sys
from pathlib import Path

from minimalrl.eval.metrics import read_metrics

COLUMNS = (
    ("mean abs log r", "mismatch_abs_log_ratio", "{:.2e}"),
    ("max r", "mismatch_ratio_max", "{:.4f}"),
    ("min r", "mismatch_ratio_min", "{:.4f}"),
    ("KL(sampler, old)", "mismatch_kl", "{:.1e}"),
    ("tis w mean", "update/tis_weight_mean", "{:.6f}"),
    ("tis capped", "update/tis_capped", "{:.4f}"),
    ("masked", "update/rollout_masked", "{:.4f}"),
    ("accuracy", "accuracy", "{:.3f}"),
    ("loss", "update/loss", "{:+.5f}"),
    ("grad norm", "grad_norm", "{:.4f}"),
)


def _cell(record: dict, key: str, fmt: str) -> str:
    value = record.get(key)
    return "—" if value is None else fmt.format(value)


def main(root: Path) -> None:
    for run in sorted(p for p in root.iterdir() if (p / "metrics.jsonl").is_file()):
        records = read_metrics(run)
        steps = [r for r in records if "mismatch_abs_log_ratio" in r]
        evals = [f"{r['eval_accuracy']:.3f}" for r in records if r.get("eval_accuracy") is not None]
        held_out = f"  (held-out greedy accuracy: {' -> '.join(evals)})" if evals else ""
        print(f"## {run.name}{held_out}")
        print("| it | " + " | ".join(name for name, _, _ in COLUMNS) + " |")
        print("| --- " * (len(COLUMNS) + 1) + "|")
        for r in steps:
            cells = [_cell(r, key, fmt) for _, key, fmt in COLUMNS]
            print(f"| {r['iteration']} | " + " | ".join(cells) + " |")
        n = len(steps)
        mean_abs = sum(r["mismatch_abs_log_ratio"] for r in steps) / n
        high = max(r["mismatch_ratio_max"] for r in steps)
        low = min(r["mismatch_ratio_min"] for r in steps)
        print(f"\nover {n} iterations: mean |log r| {mean_abs:.2e}, r in [{low:.4f}, {high:.4f}]\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
