#!/usr/bin/env bash
# The clipping ablation (raft, raft++, raft++_no_clip) with 4 epochs per iteration, one seed.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/minimalrl compare --algos raft,raft++,raft++_no_clip --config experiments/compare_cpu_clip.yaml \
  --set threads=1 --eval-benchmarks "arithmetic:digits=2,num_ops=1,ops=+,n=64,split=test" --eval-k 4 \
  --output experiments/compare_cpu_clip --no-progress
