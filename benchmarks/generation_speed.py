"""Generation throughput of minimalrl's sampler vs `model.generate` on the default model.

    .venv/bin/python benchmarks/generation_speed.py --prompts 16 --samples 4 --temperature 1.0

Prints tokens per second of each and the generation FLOP/s (2 x parameters x tokens / seconds).
`model.generate` keeps computing rows that finished, so its slots/s counts padding too.
"""

from __future__ import annotations

import argparse
import time

import torch

from minimalrl.data import build_prompts, load_problems
from minimalrl.model.loading import load_policy
from minimalrl.rollout import HFBackend, SamplingParams


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load_policy()
    model.eval()
    n_params = sum(q.numel() for q in model.parameters())
    problems = load_problems(f"arithmetic:digits=2,num_ops=1,ops=+,n={args.prompts},split=test")
    ids = [tok(x, add_special_tokens=False).input_ids for x in build_prompts(tok, problems)]
    backend = HFBackend(model, tok.pad_token_id, [tok.eos_token_id])
    params = SamplingParams(n=args.samples, max_new_tokens=args.max_new_tokens,
                            temperature=args.temperature)  # fmt: skip
    t0 = time.perf_counter()
    out = backend.generate(ids, params)
    dt = time.perf_counter() - t0
    toks = int(out.response_mask_BR.sum())
    print(f"minimalrl: {toks} tokens in {dt:.1f} s = {toks / dt:.1f} tok/s, "
          f"{2 * n_params * toks / dt / 1e9:.1f} GFLOP/s")  # fmt: skip
    enc = tok([tok.decode(x) for x in ids], return_tensors="pt", padding=True,
              add_special_tokens=False)  # fmt: skip
    sample = args.temperature > 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        gen = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=sample,
                             num_return_sequences=args.samples,
                             temperature=args.temperature if sample else None,
                             top_p=None, top_k=None)  # fmt: skip
    dt = time.perf_counter() - t0
    slots = gen[:, enc.input_ids.shape[1] :].numel()
    print(f"model.generate: {slots} slots in {dt:.1f} s = {slots / dt:.1f} slots/s")


if __name__ == "__main__":
    main()
