"""Held-out scores of one saved model, per problem: what `minimalrl compare` compares.

For each problem: how many of n samples at temperature T are correct (avg@n and the unbiased
pass@k for every k <= n follow from that count), and whether the greedy response is. Per-problem
numbers, not only means, so that differences between runs can be paired by problem and get an
interval (`minimalrl.eval.findings`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from minimalrl.config import TrainConfig
from minimalrl.eval.evaluate import pass_at_k, pass_ks


@dataclass(frozen=True)
class HeldOut:
    """How models are scored before and after training."""

    data: str
    """Held-out problems: a benchmark name, `arithmetic:...` spec or jsonl path."""
    n: int = 4
    """Samples per problem (avg@n, pass@k for k <= n)."""
    temperature: float = 1.0
    """Sampling temperature of the n samples (the paper's avg@16 uses 1.0)."""
    limit: int | None = None
    """First N problems only (None: all)."""
    max_new_tokens: int = 0
    """Generation limit (0: the training config's)."""
    greedy: bool = True
    """Also score one greedy response per problem."""
    seed: int = 0
    """Sampling seed, the same for every model scored (the before/after pairs share it)."""
    batch_size: int = 128
    """Sequences generated together."""

    def __post_init__(self) -> None:
        if self.n < 1 or not self.temperature > 0:
            raise ValueError(f"held-out scoring needs n >= 1 and temperature > 0, got {self}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")


def summarise_counts(counts_N: np.ndarray, n: int) -> dict:
    """avg@n and pass@k (k in `pass_ks(n)`) over problems from per-problem correct counts."""
    counts = [int(c) for c in counts_N]
    return {
        "avg_at_n": float(np.mean(counts) / n),
        "pass_at_k": {
            str(k): float(np.mean([pass_at_k(n, c, k) for c in counts])) for k in pass_ks(n)
        },
    }


def pass_at_k_table(counts_SN: np.ndarray, n: int, k: int) -> np.ndarray:
    """Per (seed, problem) unbiased pass@k from correct counts of n samples."""
    return np.vectorize(lambda c: pass_at_k(n, int(c), k))(counts_SN).astype(np.float64)


def score_model(
    model: str,
    cfg: TrainConfig,
    heldout: HeldOut,
    *,
    temperature: float | None = None,
    greedy: bool | None = None,
) -> dict:
    """Per-problem correct counts of n samples (at `temperature`, default heldout's) and greedy
    verdicts (if `greedy`, default heldout's) of the model at `model`, with their summaries."""
    from minimalrl.data import load_data
    from minimalrl.eval.evaluate import EvalSettings, evaluate
    from minimalrl.model.loading import load_policy

    start = time.perf_counter()
    loaded, tokenizer = load_policy(model)
    loaded.eval()
    problems = load_data(
        heldout.data, question_field=cfg.question_field, answer_field=cfg.answer_field,
        split=cfg.eval_split, prefer_split="test", limit=heldout.limit,
    )  # fmt: skip
    base = EvalSettings.from_config(
        cfg,
        max_new_tokens=heldout.max_new_tokens or cfg.max_new_tokens,
        seed=heldout.seed,
        batch_size=heldout.batch_size,
    )
    temp = heldout.temperature if temperature is None else temperature
    sampled = evaluate(
        loaded, tokenizer, problems, replace(base, k=heldout.n, temperature=temp), progress=False
    )
    counts = _per_problem(sampled.samples, problems)
    out: dict = {
        "problems": len(problems),
        "n": heldout.n,
        "temperature": temp,
        "correct_counts": counts,
        **summarise_counts(np.array(counts), heldout.n),
    }
    if heldout.greedy if greedy is None else greedy:
        greedy_run = evaluate(
            loaded, tokenizer, problems, replace(base, k=1, temperature=0.0), progress=False
        )
        out["greedy_correct"] = _per_problem(greedy_run.samples, problems)
        out["greedy"] = float(np.mean(out["greedy_correct"]))
    out["settings"] = asdict(heldout)
    out["seconds"] = time.perf_counter() - start
    return out


def _per_problem(samples: list[dict], problems: list) -> list[int]:
    """Correct samples per problem, in the problems' order."""
    index = {p.id: i for i, p in enumerate(problems)}
    counts = [0] * len(problems)
    for s in samples:
        counts[index[s["id"]]] += int(s["correct"])
    return counts
