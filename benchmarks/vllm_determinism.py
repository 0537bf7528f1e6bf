"""How often `rollout_backend: vllm` samples something else for the same (seed, prompt key,
sample index): the same batch again, the batch split in two (what a resumed or re-sharded run
sees: other neighbours in the engine's batch), and a fresh engine (a restarted process). With
`--preemption SMALL LARGE`: the same batch from an engine whose KV cache (SMALL GiB) cannot hold it,
so vLLM preempts requests and recomputes them, against one whose cache (LARGE GiB) can.

    .venv/bin/python benchmarks/vllm_determinism.py \
        --output benchmarks/results/vllm_determinism.json
    .venv/bin/python benchmarks/vllm_determinism.py --precision fp32 --prompts 48 \
        --max-new-tokens 128 --preemption 1 3 --output benchmarks/results/vllm_preemption.json

Each request carries its own seed, so the sampler's random numbers do not depend on the batch;
what can differ is the distribution they are applied to: kernels whose reduction order changes
with the batch's shape round differently, and a token whose cumulative probability sits within
that rounding of a random draw flips, and the rest of its response with it. In float32 the
rounding is ~1e-7 relative and a flip needs a draw that close; in bfloat16 it is ~4e-3, and flips
are expected. Counted per response (any token different) with the first differing position.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from minimalrl.data import build_prompts, load_problems
from minimalrl.model.loading import load_policy
from minimalrl.rollout import SamplingParams, make_backend
from minimalrl.rollout.vllm_engine import EngineSettings

DTYPES = {"fp32": None, "bf16": torch.bfloat16}
"""Engine dtype per precision (None: the model's own, float32)."""


def _rows(ro) -> list[tuple[int, ...]]:
    valid = ro.response_mask_BR.bool()
    return [tuple(ids[keep].tolist()) for ids, keep in zip(ro.response_ids_BR, valid)]


def _compare(a: list[tuple[int, ...]], b: list[tuple[int, ...]]) -> dict:
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    first = [next((t for t, (u, v) in enumerate(zip(a[i], b[i])) if u != v),
                  min(len(a[i]), len(b[i]))) for i in differ]  # fmt: skip
    return {"responses": len(a), "differ": len(differ), "first_difference_at": first}


def measure(model, tok, ids, keys, precision: str, params: SamplingParams) -> dict:
    dtype = DTYPES[precision]
    engine = make_backend("vllm", model, tok, dtype)
    base = _rows(engine.generate(ids, params, keys))
    again = _rows(engine.generate(ids, params, keys))
    half = len(ids) // 2
    split = _rows(engine.generate(ids[:half], params, keys[:half])) + _rows(
        engine.generate(ids[half:], params, keys[half:])
    )
    engine.close()
    fresh_engine = make_backend("vllm", model, tok, dtype)
    fresh = _rows(fresh_engine.generate(ids, params, keys))
    fresh_engine.close()
    tokens = sum(len(r) for r in base)
    return {
        "precision": precision,
        "generated_tokens": tokens,
        "same_batch_again": _compare(base, again),
        "batch_split_in_two": _compare(base, split),
        "fresh_engine": _compare(base, fresh),
    }


def _counting_preemptions(engine) -> list[int]:
    """A one-cell counter of the requests the engine's scheduler preempts (vLLM 0.32's V1
    scheduler, in process: `VLLM_ENABLE_V1_MULTIPROCESSING=0`, as the backend builds it)."""
    scheduler = engine.llm.llm_engine.engine_core.engine_core.scheduler
    count, preempt = [0], scheduler._preempt_request

    def counted(*args, **kwargs):
        count[0] += 1
        return preempt(*args, **kwargs)

    scheduler._preempt_request = counted
    return count


def measure_preemption(model, tok, ids, keys, precision, params, small: int, large: int) -> dict:
    """The batch from an engine with `large` GiB of KV cache against one with `small`."""
    dtype = DTYPES[precision]
    rows, preempted = {}, {}
    for gib in (large, small):
        engine = make_backend("vllm", model, tok, dtype, EngineSettings(kv_cache_gib=gib))
        count = _counting_preemptions(engine)
        rows[gib] = _rows(engine.generate(ids, params, keys))
        preempted[gib] = count[0]
        engine.close()
    return {
        "precision": precision,
        "generated_tokens": sum(len(r) for r in rows[large]),
        "preemptions": {f"{gib}_gib": preempted[gib] for gib in (large, small)},
        "preempted_against_not": _compare(rows[large], rows[small]),
    }


def _line(result: dict) -> str:
    if "preemptions" in result:
        c = result["preempted_against_not"]
        return f"preemptions {result['preemptions']}, {c['differ']}/{c['responses']} differ"
    return ", ".join(
        f"{k}: {result[k]['differ']}/{result[k]['responses']} differ"
        for k in ("same_batch_again", "batch_split_in_two", "fresh_engine")
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    p.add_argument(
        "--preemption",
        type=int,
        nargs=2,
        metavar=("SMALL", "LARGE"),
        help="compare a SMALL-GiB KV cache (preempting) with a LARGE one instead",
    )
    p.add_argument("--output", type=Path)
    args = p.parse_args()
    model, tok = load_policy()
    model.eval()
    problems = load_problems(f"arithmetic:digits=2,n={args.prompts},split=test")
    ids = [tok(x, add_special_tokens=False).input_ids for x in build_prompts(tok, problems)]
    keys = list(range(1000, 1000 + len(ids)))
    params = SamplingParams(n=args.samples, max_new_tokens=args.max_new_tokens,
                            temperature=args.temperature, seed=0)  # fmt: skip
    start = time.perf_counter()
    if args.preemption:
        results = [measure_preemption(model, tok, ids, keys, prec, params, *args.preemption)
                   for prec in args.precision]  # fmt: skip
    else:
        results = [measure(model, tok, ids, keys, prec, params) for prec in args.precision]
    for r in results:
        print(f"{r['precision']}: {_line(r)} ({r['generated_tokens']} tokens)")
    out = dict(
        prompts=args.prompts, samples=args.samples, max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, seconds=time.perf_counter() - start, results=results,
    )  # fmt: skip
    if args.output:
        args.output.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
