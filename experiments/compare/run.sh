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
# The initial model: the README's main command, seed 0, its rollouts replayed from the record
# committed beside this script (made on 2026-12-07 by that command with rollout_record, on an AMD
# EPYC with AVX512-BF16). There it remakes the weights bitwise; on a CPU whose kernels round
# otherwise, to rounding (a sampled warm start would part at the first flipped token):
# initial_eval.json keeps the weights' sha256 and a sketch of them, and compare refuses weights
# further than REMADE_TOLERANCE from it.
bash experiments/compare/warm_start.sh
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
