"""Re-score a checkpoint independently of minimalrl's evaluation code (issue "A first run that
visibly learns"): plain transformers greedy decoding and math-verify, on fresh arithmetic
problems of the default task's kind that no run trained or evaluated on.

    python experiments/rescore.py MODEL_DIR [MODEL_DIR ...] --n 200 --seed 7 --max-new-tokens 64

The problems are drawn here with Python's `random` (two-digit sums and differences, two-digit by
one-digit products), and any problem whose expression occurs in the default train or eval set is
skipped. The prompt is the chat template with the same user turn minimalrl builds (question +
the paper's instruction); the answer is math-verify's reading of the response (its own
extraction of the last boxed or plain number), compared with the integer.
"""

from __future__ import annotations

import argparse
import json
import operator
import random

import torch
from math_verify import parse, verify
from transformers import AutoModelForCausalLM, AutoTokenizer

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."


def problems(n: int, seed: int, exclude: set[str]) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    while len(out) < n:
        op = rng.choice("+-*")
        a = rng.randint(10, 99)
        b = rng.randint(2, 9) if op == "*" else rng.randint(10, 99)
        expr = f"{a} {op} {b}"
        if expr in seen or expr in exclude:
            continue
        seen.add(expr)
        out.append((f"What is {expr}?", OPS[op](a, b)))
    return out


def default_expressions() -> set[str]:
    """Expressions of the default run's train and eval sets (to be left out)."""
    from minimalrl.config import TrainConfig
    from minimalrl.data import load_problems

    cfg = TrainConfig()
    data = load_problems(cfg.train_data) + load_problems(cfg.eval_data)
    return {p.meta["expression"] for p in data}


@torch.inference_mode()
def score(model_dir: str, items: list[tuple[str, int]], max_new_tokens: int, batch: int) -> float:
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    tok.pad_token = tok.pad_token or tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    correct = 0
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        texts = [
            tok.apply_chat_template(
                [{"role": "user", "content": f"{q} {INSTRUCTION}"}],
                tokenize=False,
                add_generation_prompt=True,
            )
            for q, _ in chunk
        ]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
        )
        for (_, gold), row in zip(chunk, out[:, enc.input_ids.shape[1] :], strict=True):
            response = tok.decode(row, skip_special_tokens=True)
            correct += bool(verify(parse(f"${gold}$"), parse(response)))
    return correct / len(items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    items = problems(args.n, args.seed, default_expressions())
    for model_dir in args.models:
        acc = score(model_dir, items, args.max_new_tokens, args.batch)
        print(json.dumps({"model": model_dir, "problems": len(items), "accuracy": acc}))


if __name__ == "__main__":
    main()
