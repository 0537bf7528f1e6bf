"""Generation with `rollout_backend: vllm` against `hf`, side by side in one process, on the
default model (needs the vllm extra: `bash scripts/setup.sh --vllm`).

    .venv/bin/python benchmarks/vllm_speed.py --max-new-tokens 64 512 1024 \
        --output benchmarks/results/vllm_speed.json

For each length: tokens/s of each backend on the same prompts (EOS disabled by sampling at
T = 1 from the arithmetic prompts, which rarely end before the cap at long lengths: the tokens
generated are counted, not assumed), alternating hf / vllm `--repeats` times; the engine's start
and one weight sync; peak RSS of the process. Timings on a machine whose speed drifts: compare
the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from minimalrl.data import build_prompts, load_problems
from minimalrl.model.loading import end_of_turn_ids, load_policy
from minimalrl.rollout import SamplingParams, make_backend
from minimalrl.rollout.vllm_engine import EngineSettings


def _tokens_per_second(backend, ids, params) -> tuple[float, int]:
    start = time.perf_counter()
    out = backend.generate(ids, params)
    seconds = time.perf_counter() - start
    tokens = int(out.response_mask_BR.sum())
    return tokens / seconds, tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, nargs="+", default=[64])
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--kv-cache-gib",
        type=int,
        default=2,
        help="vllm_kv_cache_gib (1 GiB holds "
        "23,296 tokens of the default model: 8 x 4 rows of 1,084 need 2)",
    )
    p.add_argument("--output", type=Path)
    args = p.parse_args()
    model, tok = load_policy()
    model.eval()
    problems = load_problems(f"arithmetic:digits=2,num_ops=1,ops=+,n={args.prompts},split=test")
    ids = [tok(x, add_special_tokens=False).input_ids for x in build_prompts(tok, problems)]
    dtype = {"fp32": None, "bf16": torch.bfloat16}[args.precision]
    start = time.perf_counter()
    backends = {"hf": make_backend("hf", model, tok, dtype)}
    engine = EngineSettings(kv_cache_gib=args.kv_cache_gib)
    backends["vllm"] = make_backend("vllm", model, tok, dtype, engine)
    engine_start = time.perf_counter() - start
    start = time.perf_counter()
    backends["vllm"].sync_weights(model)
    sync = time.perf_counter() - start
    rows = []
    for length in args.max_new_tokens:
        params = SamplingParams(n=args.samples, max_new_tokens=length,
                                temperature=args.temperature, seed=0)  # fmt: skip
        for name in backends:  # warm-up, untimed
            backends[name].generate(ids[:2], SamplingParams(n=1, max_new_tokens=4))
        for repeat in range(args.repeats):
            for name, backend in backends.items():
                tps, tokens = _tokens_per_second(backend, ids, params)
                rows.append(dict(backend=name, max_new_tokens=length, repeat=repeat,
                                 tokens=tokens, tokens_per_second=tps))  # fmt: skip
                print(f"{name:5s} {length:5d} tokens max: {tokens} tokens, {tps:.1f} tok/s")
    result = dict(
        precision=args.precision, prompts=args.prompts, samples=args.samples,
        temperature=args.temperature, kv_cache_gib=args.kv_cache_gib,
        engine_start_seconds=engine_start, sync_seconds=sync,
        peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        eos_ids=end_of_turn_ids(model, tok), rows=rows,
    )  # fmt: skip
    print(f"engine start {engine_start:.1f} s, sync {sync:.2f} s, "
          f"peak RSS {result['peak_rss_gib']:.2f} GiB")  # fmt: skip
    if args.output:
        args.output.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
