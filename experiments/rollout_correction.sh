#!/usr/bin/env bash
# Issue 17, item 5: the sampler/trainer mismatch under bf16 rollouts, and what truncated importance
# sampling does about it. Three short runs of the default config (GRPO, default model and task,
# float32 update), 4 iterations, same seed: float32 rollouts, bfloat16 rollouts, bfloat16 rollouts
# with rollout_correction=tis (C = 2). One torch thread (the 2-core machine was shared with another
# job: two threads on one free core ran 9x slower); no held-out evaluation (4 iterations move
# it by less than its noise). Each run's metrics.jsonl goes to experiments/rollout_correction/NAME/;
# checkpoints are deleted. Then a table of the numbers (experiments/rollout_correction/summary.txt).
# Resumable at run granularity: a run whose metrics are there is skipped.
# Issue 29: the same with `BACKEND=vllm` (rollouts from a vLLM engine, its own processed log-probs;
# needs the vllm extra, e.g. PYTHON=/path/to/venv-with-vllm/bin/python), into
# experiments/rollout_correction_vllm/, with the masks (MIS) beside tis:
#   BACKEND=vllm bash experiments/rollout_correction.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BACKEND=${BACKEND:-hf}
COMMON=(--set iterations=4 --set eval_every=0 --set save_every=0 --set seed=0 --set threads=1
        --set rollout_backend="$BACKEND")
declare -A RUNS=(
  [fp32_none]="--set rollout_precision=fp32"
  [bf16_none]="--set rollout_precision=bf16"
  [bf16_tis]="--set rollout_precision=bf16 --set rollout_correction=tis"
  [bf16_token_mask]="--set rollout_precision=bf16 --set rollout_correction=token_mask"
  [bf16_seq_mask]="--set rollout_precision=bf16 --set rollout_correction=seq_mask"
)
NAMES=(fp32_none bf16_none bf16_tis)
ROOT=experiments/rollout_correction
if [ "$BACKEND" != hf ]; then
  ROOT=experiments/rollout_correction_$BACKEND
  NAMES+=(bf16_token_mask bf16_seq_mask)
fi
mkdir -p runs
for name in "${NAMES[@]}"; do
  dest=$ROOT/$name
  [ -f "$dest/metrics.jsonl" ] && continue
  out=runs/rollout_correction_${BACKEND}_$name
  rm -rf "$out"
  start=$(date +%s)
  # shellcheck disable=SC2086
  $PY -m minimalrl train "${COMMON[@]}" ${RUNS[$name]} --output "$out" --no-progress \
    > "$out.log" 2>&1
  mkdir -p "$dest"
  cp "$out/metrics.jsonl" "$dest/"
  echo "wall clock: $(( $(date +%s) - start )) s" > "$dest/wall_clock.txt"
  rm -rf "$out"
done
$PY experiments/rollout_correction.py "$ROOT" | tee "$ROOT/summary.txt"
