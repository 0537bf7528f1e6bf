#!/usr/bin/env bash
# Issue "Scale out": a LoRA run of the default model on the default toy task (two-digit sums),
# the default GRPO config except LoRA rank 16 (alpha 32) and a 10x learning rate (LoRA wants a
# larger step than full fine-tuning). Compare with experiments/default_run (full fine-tuning, same
# seed, data and config otherwise). Resumable: run it again after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/lora_default
RESUME=()
[ -e "$OUT/checkpoints/latest" ] && RESUME=(--resume)
/usr/bin/time -v -o experiments/lora_default/time.txt .venv/bin/minimalrl train \
  --set lora_rank=16 --set lora_alpha=32 --set lr=2e-4 --output $OUT --no-progress "${RESUME[@]}" \
  > experiments/lora_default/train.log 2>&1
cp $OUT/metrics.jsonl experiments/lora_default/
.venv/bin/minimalrl plot runs/default $OUT --output experiments/lora_default >> experiments/lora_default/train.log 2>&1 || true
