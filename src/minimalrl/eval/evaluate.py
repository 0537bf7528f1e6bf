"""The evaluation harness: greedy accuracy or avg@k, pass@k and maj@k on any math benchmark.

avg@k is the mean accuracy over k samples per problem (the paper's average@16); pass@k uses the
unbiased estimator of Chen et al. (2021); maj@k scores the most frequent extracted answer.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from minimalrl.data import Problem, build_prompts
from minimalrl.output import (
    OutputError,
    describe_write_error,
    prepare_output,
    write_text_atomic,
)
from minimalrl.reward import extract_answer, last_number, verify_batch
from minimalrl.rollout import (
    BACKENDS,
    RolloutBackend,
    SamplingParams,
    close_backend,
    make_backend,
)

if TYPE_CHECKING:
    from minimalrl.config import TrainConfig

GROUP_KEYS = ("subject", "level", "type")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 − C(n−c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_ks(n: int) -> list[int]:
    """The k of the pass@k reported from n samples: the powers of two up to n, and n."""
    return sorted({2**i for i in range(n.bit_length()) if 2**i <= n} | {n})


def majority_correct(answers: list[str | None], verdicts: list[bool]) -> bool:
    """Is the most frequent extracted answer (ties: the first seen) a correct one?"""
    votes = Counter(a.strip() for a in answers if a)
    if not votes:
        return False
    top = votes.most_common(1)[0][0]
    return any(v for a, v in zip(answers, verdicts) if a and a.strip() == top)


@dataclass
class EvalSettings:
    """How a benchmark is evaluated."""

    k: int = 1
    """Samples per problem (1 with temperature 0 = greedy accuracy)."""
    temperature: float = 0.0
    """0 = greedy; the paper's avg@16 uses 1.0."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    max_new_tokens: int = 512
    """Generation limit per response."""
    batch_size: int = 32
    """Sequences generated together."""
    seed: int = 0
    """Sampling seed."""
    fallback_last_number: bool = True
    """Judge a response with no \\boxed{} / #### / "the answer is" by its last number (as
    training does by default, so train and eval accuracies compare); see `TrainConfig`."""
    system_prompt: str | None = None
    """Replaces the chat template's default system prompt when set."""
    rollout_backend: str = "hf"
    """What generates the responses (`minimalrl.rollout.BACKENDS`), as in training."""

    @classmethod
    def from_config(cls, cfg: TrainConfig, **changes: Any) -> EvalSettings:
        """Greedy evaluation as a training run does it: its seed, answer rule, system prompt,
        backend and generation limit (`eval_max_new_tokens`, else `max_new_tokens`); `changes`
        override any field."""
        base = {
            "max_new_tokens": cfg.eval_max_new_tokens or cfg.max_new_tokens,
            "seed": cfg.seed,
            "fallback_last_number": cfg.fallback_last_number,
            "system_prompt": cfg.system_prompt,
            "rollout_backend": cfg.rollout_backend,
        }
        return cls(**{**base, **changes})

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.k > 1 and self.temperature <= 0:
            raise ValueError("k > 1 samples need temperature > 0 (greedy samples are identical)")
        if not 0 <= self.temperature < math.inf:  # also refuses nan
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")
        if self.rollout_backend not in BACKENDS:
            raise ValueError(
                f"unknown rollout backend {self.rollout_backend!r}; valid: "
                f"{', '.join(sorted(BACKENDS))}"
            )


@dataclass
class EvalResult:
    summary: dict
    samples: list[dict] = field(default_factory=list)


def _score_problem(problem: Problem, responses: list[str], verdicts: list[bool], k: int) -> dict:
    answers = [extract_answer(r) for r in responses]
    c = sum(verdicts)
    row = {"accuracy": c / k, "maj": float(majority_correct(answers, verdicts))}
    for j in pass_ks(k):
        row[f"pass@{j}"] = pass_at_k(k, c, j)
    return row


def _summarise(rows: list[dict], problems: list[Problem], k: int) -> dict:
    keys = list(rows[0]) if rows else []
    overall = {key: sum(r[key] for r in rows) / len(rows) for key in keys}
    summary: dict = {"problems": len(rows), "k": k, **overall}
    summary[f"avg@{k}"] = overall.get("accuracy", 0.0)
    summary[f"maj@{k}"] = overall.get("maj", 0.0)
    for gk in GROUP_KEYS:
        groups: dict[str, list[float]] = defaultdict(list)
        for r, p in zip(rows, problems):
            if gk in p.meta:
                groups[str(p.meta[gk])].append(r["accuracy"])
        if groups:
            summary[f"by_{gk}"] = {g: sum(v) / len(v) for g, v in sorted(groups.items())}
    return summary


def _verify_problems(
    problems: list[Problem], responses: list[list[str]], settings: EvalSettings
) -> tuple[list[dict], list[list[dict]], list[bool]]:
    """Per problem: its scores row and its sample records; and the verdicts under the other
    answer rule (so one run reports what the "last number" fallback changes)."""
    flat = [r for rs in responses for r in rs]
    golds = [p.answer for p, rs in zip(problems, responses) for _ in rs]
    verdicts = verify_batch(flat, golds, fallback_last_number=settings.fallback_last_number)
    other = verify_batch(flat, golds, fallback_last_number=not settings.fallback_last_number)
    rows, samples = [], []
    for i, p in enumerate(problems):
        v = verdicts[i * settings.k : (i + 1) * settings.k]
        rows.append(_score_problem(p, responses[i], v, settings.k))
        mine = []
        for j, (text, ok) in enumerate(zip(responses[i], v)):
            answer = extract_answer(text)
            if answer is None and settings.fallback_last_number:
                answer = last_number(text)
            mine.append(
                {
                    "id": p.id,
                    "sample": j,
                    "question": p.question,
                    "gold": p.answer,
                    "response": text,
                    "extracted": answer,
                    "correct": bool(ok),
                }
            )
        samples.append(mine)
    return rows, samples, other


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    problems: list[Problem],
    settings: EvalSettings,
    *,
    backend: RolloutBackend | None = None,
    progress: bool = True,
    on_samples: Callable[[list[dict]], None] | None = None,
) -> EvalResult:
    """Generate k responses per problem, verify them, and summarise accuracy.

    `on_samples` receives each batch's verified sample records as soon as they are made (to write
    them as they come: a run stopped midway keeps what it did). A backend made here (none given)
    is closed on return: an engine frees its memory, as a compare scoring many runs needs."""
    if not problems:
        raise ValueError("no problems to evaluate")
    if backend is None:
        backend = make_backend(settings.rollout_backend, model, tokenizer)
        try:
            return evaluate(model, tokenizer, problems, settings, backend=backend,
                            progress=progress, on_samples=on_samples)  # fmt: skip
        finally:
            close_backend(backend)
    prompts = build_prompts(tokenizer, problems, system_prompt=settings.system_prompt)
    ids = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths pad less
    per_batch = max(1, settings.batch_size // settings.k)
    rows: list[dict] = [{} for _ in problems]
    samples: list[list[dict]] = [[] for _ in problems]
    other: list[bool] = []
    tokens = 0
    start = time.perf_counter()
    bar = tqdm(total=len(problems), desc="eval", disable=not progress, unit="problem")
    for b in range(0, len(order), per_batch):
        chunk = order[b : b + per_batch]
        responses, generated = _generate(backend, tokenizer, ids, chunk, settings)
        tokens += generated
        chunk_rows, chunk_samples, chunk_other = _verify_problems(
            [problems[i] for i in chunk], responses, settings
        )
        for i, row, mine in zip(chunk, chunk_rows, chunk_samples):
            rows[i], samples[i] = row, mine
        other += chunk_other
        if on_samples is not None:
            on_samples([s for mine in chunk_samples for s in mine])
        bar.update(len(chunk))
    bar.close()
    summary = _summarise(rows, problems, settings.k)
    _add_rates(summary, other, settings, time.perf_counter() - start, tokens, len(problems))
    return EvalResult(summary, [s for mine in samples for s in mine])


def _generate(
    backend: RolloutBackend,
    tokenizer: PreTrainedTokenizerBase,
    ids: list[list[int]],
    chunk: list[int],
    settings: EvalSettings,
) -> tuple[list[list[str]], int]:
    """The k response texts of each problem of `chunk`, and how many tokens were generated."""
    params = SamplingParams(
        n=settings.k,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        seed=settings.seed,
    )
    # Keyed by problem index: a problem's samples do not depend on the batching.
    out = backend.generate([ids[i] for i in chunk], params, prompt_keys=chunk)
    texts = tokenizer.batch_decode(
        out.response_ids_BR.masked_fill(out.response_mask_BR == 0, tokenizer.pad_token_id),
        skip_special_tokens=True,
    )
    k = settings.k
    return [texts[r * k : (r + 1) * k] for r in range(len(chunk))], int(out.response_mask_BR.sum())


def _add_rates(
    summary: dict, other: list[bool], settings: EvalSettings, seconds: float, tokens: int, n: int
) -> None:
    """The accuracy under each answer rule, the speed, and the settings, into `summary`."""
    rule, other_rule = (
        ("last_number", "strict") if settings.fallback_last_number else ("strict", "last_number")
    )
    summary[f"accuracy_{rule}"] = summary["accuracy"]
    summary[f"accuracy_{other_rule}"] = sum(other) / len(other)
    summary.update(
        seconds=seconds,
        generated_tokens=tokens,
        problems_per_second=n / seconds,
        tokens_per_second=tokens / seconds,
        settings=settings.__dict__,
    )


def write_result(result: EvalResult, output: str | Path) -> None:
    """DIR/summary.json and DIR/samples.jsonl (every response, its answer and verdict), each
    replaced atomically."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "samples.jsonl", "".join(json.dumps(s) + "\n" for s in result.samples))
    write_text_atomic(out / "summary.json", json.dumps(result.summary, indent=2) + "\n")


class ResultWriter:
    """Writes DIR/samples.jsonl as the samples come (`add`, flushed per batch), then the summary
    and the samples in problem order (`finish`). The folder is checked on creation, before any
    work, so an unwritable --output fails at once and a failure midway keeps the samples so far."""

    def __init__(self, output: str | Path):
        self.dir = prepare_output(output)
        self.path = self.dir / "samples.jsonl"
        try:
            self._file = open(self.path, "w")  # noqa: SIM115 (open for the whole evaluation)
        except OSError as err:
            raise OutputError(f"{self.path}: {describe_write_error(err, self.dir)}") from None

    def add(self, samples: list[dict]) -> None:
        try:
            self._file.write("".join(json.dumps(s) + "\n" for s in samples))
            self._file.flush()
        except OSError as err:
            raise OutputError(
                f"{self.path}: cannot write the samples ({describe_write_error(err, self.dir)})"
            ) from None

    def finish(self, result: EvalResult) -> None:
        self._file.close()
        try:
            write_result(result, self.dir)
        except OSError as err:
            raise OutputError(
                f"{self.dir}: cannot write the summary ({describe_write_error(err, self.dir)}); "
                f"{self.path} holds every sample, in batch order"
            ) from None

    def close(self) -> None:
        self._file.close()


def format_summary(summary: dict) -> str:
    """A few human lines: the headline numbers and the per-group accuracies."""
    k = summary["k"]
    head = f"problems {summary['problems']}  "
    if k == 1:
        head += f"accuracy {summary['accuracy']:.3f}"
    else:
        head += (
            f"avg@{k} {summary[f'avg@{k}']:.3f}  pass@{k} {summary[f'pass@{k}']:.3f}  "
            f"maj@{k} {summary[f'maj@{k}']:.3f}"
        )
    lines = [
        head,
        f"per-sample accuracy: strict (\\boxed / ####) {summary['accuracy_strict']:.3f}, "
        f"with last-number fallback {summary['accuracy_last_number']:.3f}",
        f"{summary['seconds']:.1f} s, {summary['problems_per_second']:.2f} problems/s, "
        f"{summary['tokens_per_second']:.1f} generated tokens/s",
    ]
    for gk in GROUP_KEYS:
        for g, acc in summary.get(f"by_{gk}", {}).items():
            lines.append(f"  {gk} {g}: {acc:.3f}")
    return "\n".join(lines)
