#!/usr/bin/env bash
# Issue 29's speed measurements: rollout_backend vllm against hf on the default model, side by
# side in each run (the two alternate), on a quiet machine, and how often its seeded samples
# differ. Needs the vllm extra (`bash scripts/setup.sh --vllm`). About 90 minutes on 2 cores;
# each result is its own file, and a file already there is not made again (delete it to remeasure).
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
# T 0.7: TrainConfig's default, at which these files were made (grpo_step.py's default: TRL's 1).
run "$R/grpo_step_vllm.json" benchmarks/grpo_step.py --vllm --skip-trl --temperature 0.7 \
  --repeats 1 --warmup 1 --matmul-size 1024
# At long responses: MATH500's first 4 problems (the default model's answers to arithmetic end
# within ~100 tokens whatever the limit: 2026-12-07's first try at 512/1024 generated 1,065-1,543
# tokens for 16 responses), no warm-up step (a long step is its own warm-up's worth of work).
# At 1,024 in micro-batches of 4: 16 rows of ~1,100 tokens at once took the hf worker past 18 GiB
# (killed for memory; activations of the whole micro-batch are kept for the backward).
LONG=(--vllm --skip-trl --temperature 0.7 --repeats 1 --warmup 0 --prompts 4 --train-data math500)
run "$R/grpo_step_vllm_math500_512.json" benchmarks/grpo_step.py "${LONG[@]}" \
  --max-new-tokens 512 --matmul-size 1024
run "$R/grpo_step_vllm_math500_1024.json" benchmarks/grpo_step.py "${LONG[@]}" \
  --max-new-tokens 1024 --micro-batch 4 --matmul-size 1024
# Seeds: how often the same (seed, prompt key, sample index) samples something else (the same
# batch again, split in two, a fresh engine), and under preemption (a 1 GiB KV cache that cannot
# hold 48 x 4 rows of up to ~200 tokens, against 3 GiB).
run "$R/vllm_determinism_fp32.json" benchmarks/vllm_determinism.py --precision fp32
run "$R/vllm_determinism_bf16.json" benchmarks/vllm_determinism.py --precision bf16 --prompts 8
run "$R/vllm_preemption_fp32.json" benchmarks/vllm_determinism.py --precision fp32 --prompts 48 \
  --max-new-tokens 128 --preemption 1 3
