#!/usr/bin/env bash
# Issue 29's speed measurements: rollout_backend vllm against hf on the default model, side by
# side in each run (the two alternate), on a quiet machine. Needs the vllm extra
# (`bash scripts/setup.sh --vllm`). About 45 minutes on 2 cores; each result is its own file, and a
# file already there is not made again (delete it to remeasure).
#   bash benchmarks/vllm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
R=benchmarks/results
run() { local out=$1; shift; [ -f "$out" ] || "$PY" "$@" --output "$out"; }
# Generation alone: tokens/s at the benchmark's shape (16 prompts x 4, <= 64 tokens), float32 and
# bfloat16, and at long responses (4 x 4, <= 512 and <= 1,024 tokens), float32; engine start,
# sync, RSS. bf16 at long lengths: BF16=1 (on a CPU without bf16 instructions, AVX2 only as
# 2026-12-07's AMD EPYC, bf16 ran ~5x slower than fp32 in both backends: ~20 minutes more).
for precision in fp32 bf16; do
  run "$R/vllm_speed_${precision}_64.json" benchmarks/vllm_speed.py --precision "$precision" \
    --max-new-tokens 64 --repeats 2
done
for precision in fp32 ${BF16:+bf16}; do
  run "$R/vllm_speed_${precision}_long.json" benchmarks/vllm_speed.py --precision "$precision" \
    --prompts 4 --max-new-tokens 512 1024 --repeats 1
done
# The whole GRPO step (generate, score, update, sync), each framework in a fresh process.
# --matmul-size 1024: the FLOP/s ceiling's bf16 matmul at 2048 took minutes on a CPU without bf16.
run "$R/grpo_step_vllm.json" benchmarks/grpo_step.py --vllm --skip-trl --repeats 1 --warmup 1 \
  --matmul-size 1024
for tokens in 512 1024; do
  run "$R/grpo_step_vllm_$tokens.json" benchmarks/grpo_step.py --vllm --skip-trl --repeats 1 \
    --warmup 0 --prompts 4 --max-new-tokens "$tokens" --matmul-size 1024
done
