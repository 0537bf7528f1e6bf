#!/usr/bin/env bash
# Issue "Scale out": on the default model, one GRPO iteration (8 prompts x 4 samples, 48 tokens,
# the default config) as (a) full fine-tuning, 1 process x 2 threads, (b) LoRA rank 16, and
# (c) full fine-tuning on 2 processes x 1 thread (torchrun, gloo), (d) the same with FSDP2.
# Peak RSS from /usr/bin/time (for torchrun: the largest rank, the launcher excluded); times from
# each run's metrics.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/results/scale
mkdir -p $OUT
COMMON=(--set iterations=1 --set eval_every=0 --set save_every=0 --no-progress)
measure() {  # name, command...
  local name=$1; shift
  rm -rf "$OUT/$name"
  /usr/bin/time -v -o "$OUT/$name.time" "$@" --output "$OUT/$name" "${COMMON[@]}" > "$OUT/$name.log" 2>&1
  python3 - "$OUT/$name" <<'PY'
import json, re, sys
run = sys.argv[1]
rec = [json.loads(l) for l in open(f"{run}/metrics.jsonl")][-1]
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{run}.time").read())
print(f"{run.split('/')[-1]:>6}: rollout {rec['rollout_seconds']:.1f} s, update {rec['update_seconds']:.1f} s, "
      f"generated {rec['tokens_per_second']:.1f} tok/s, peak RSS {int(rss.group(1)) / 2**20:.2f} GiB")
PY
}
measure full .venv/bin/minimalrl train --set threads=2
measure lora .venv/bin/minimalrl train --set threads=2 --set lora_rank=16 --set lora_alpha=32
measure ddp2 .venv/bin/torchrun --nproc-per-node 2 -m minimalrl train --set threads=1
measure fsdp2 .venv/bin/torchrun --nproc-per-node 2 -m minimalrl train --set threads=1 --set fsdp=true
