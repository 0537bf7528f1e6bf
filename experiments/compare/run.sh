#!/usr/bin/env bash
# Issue 19's grid, resumable: every finished run is skipped, an unfinished one resumes from its
# checkpoint, so kill it at any time and run it again. Small result files land in
# experiments/compare/results/ (commit them as runs finish); checkpoints are deleted once scored.
#   bash experiments/compare/run.sh            # the whole grid (hours on two cores)
# One run of the grid, from nothing, into another folder (its numbers must match the committed ones):
#   .venv/bin/minimalrl compare --config experiments/compare/config.yaml --algos grpo --seeds 0 \
#     --eval-n 4 --output /tmp/rerun
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/minimalrl ] || bash scripts/setup.sh
# The initial model: the README's main command, seed 0 (deterministic kernels: the same weights on
# this machine every time; initial_eval.json keeps their sha256 and compare refuses another).
if [ ! -f runs/warm_start/checkpoints/iter_000018/policy/config.json ]; then
  .venv/bin/minimalrl train --set seed=0 --output runs/warm_start --no-progress --resume auto
fi
OUT=experiments/compare/results
CORE="grpo,raft,raft++,reinforce,reinforce_rej,reinforce_drop_all_wrong,grpo:random_reward"
EXTRA="raft++_no_clip,reinforce_rej_std,ppo,iterative_dpo:filtered=drop,dr_grpo"
# The drop-vs-zero ablation (seed 0): filtered responses dropped, as the grid ran first.
DROP="raft:filtered=drop,raft++:filtered=drop,reinforce_rej:filtered=drop"
DROP="$DROP,reinforce_drop_all_wrong:filtered=drop,grpo:filtered=drop,reinforce:filtered=drop"
compare() { .venv/bin/minimalrl compare --config experiments/compare/config.yaml --eval-n 4 \
  --output "$OUT" --no-progress "$@"; }
for seed in 0 1 2; do
  compare --algos "$CORE" --seeds "$seed"
done
compare --algos "$EXTRA,$DROP" --seeds 0
compare --algos "$CORE,$EXTRA,$DROP" --seeds 0,1,2 --report-only
