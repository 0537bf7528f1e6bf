#!/usr/bin/env bash
# The paper's comparison on this CPU: all seven algorithms plus both ablation sets, one seed.
# Two single-threaded halves run side by side (two cores), then a last call writes the report
# from all finished runs. Resumable: run it again after an interruption and finished runs are
# skipped, unfinished ones resume from their last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=experiments/compare_cpu
EVAL=(--eval-benchmarks "arithmetic:digits=2,num_ops=1,ops=+,n=64,split=test" --eval-k 4)
half() {
  .venv/bin/minimalrl compare --algos "$1" --config experiments/compare_cpu.yaml --set threads=1 \
    "${EVAL[@]}" --output $OUT --no-progress
}
half raft,raft++,raft++_no_clip,reinforce,reinforce_drop_all_wrong,ppo > $OUT.a.log 2>&1 &
A=$!
sleep 30  # let the first half write the initial evaluation
half grpo,reinforce_rej,reinforce_rej_std,reinforce_drop_all_correct,iterative_dpo > $OUT.b.log 2>&1
wait $A
.venv/bin/minimalrl compare --config experiments/compare_cpu.yaml "${EVAL[@]}" --output $OUT \
  --algos raft,raft++,raft++_no_clip,reinforce,reinforce_drop_all_wrong,reinforce_drop_all_correct,reinforce_rej,reinforce_rej_std,grpo,ppo,iterative_dpo
