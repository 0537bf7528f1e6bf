#!/usr/bin/env bash
# Issue "Scale out": LoRA runs of the default model on the default toy task (two-digit sums).
# A: the default GRPO config except LoRA rank 16 (alpha 32) and a 10x learning rate (LoRA wants a
#    larger step than full fine-tuning); compare with experiments/default_run (full fine-tuning).
# B (`long`): 16 prompts x 4 samples per iteration, 20 iterations, lr 4e-4, eval every 5.
# Resumable: run it again after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/lora_default
LOG=experiments/lora_default
ARGS=(--set lora_rank=16 --set lora_alpha=32 --set lr=2e-4)
if [ "${1:-}" = long ]; then
  OUT=runs/lora_long; LOG=experiments/lora_long
  ARGS=(--set lora_rank=16 --set lora_alpha=32 --set lr=4e-4 --set prompts_per_iteration=16
        --set iterations=20 --set eval_every=5 --set save_every=5)
fi
mkdir -p $LOG
RESUME=(--resume auto)  # continue a checkpoint if there is one, else start
/usr/bin/time -v -o $LOG/time.txt .venv/bin/minimalrl train "${ARGS[@]}" --output $OUT \
  --no-progress "${RESUME[@]}" >> $LOG/train.log 2>&1
cp $OUT/metrics.jsonl $LOG/
.venv/bin/minimalrl plot $OUT --output $LOG >> $LOG/train.log 2>&1 || true
