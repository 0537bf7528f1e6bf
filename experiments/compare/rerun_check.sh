#!/usr/bin/env bash
# Issue 30's reproduction check: one committed run of the grid made again from nothing (a fresh
# clone of this commit: its own setup, warm start, initial scoring and run) and compared with the
# committed files by check_rerun.py: every logged number but timings, every held-out outcome, and
# the initial scoring. Writes experiments/compare/rerun_check/ (check.txt, and the rerun's
# initial_eval.json, final_eval.json and metrics.jsonl to commit); skipped once check.txt says
# nothing differed. Equal bits need a CPU whose kernels round as the committed run's did (the CPU
# is recorded in the committed initial_eval.json and in check.txt).
#   bash experiments/compare/rerun_check.sh [RUN] [SEED]     # default: grpo 0
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${1:-grpo}
SEED=${2:-0}
HERE=$PWD
COMMITTED=experiments/compare/results/runs/${RUN}_seed$SEED
RERUN=experiments/compare/rerun_check
if grep -q " 0 differ$" "$RERUN/check.txt" 2>/dev/null; then
  echo "rerun check done: $RERUN/check.txt"
  exit 0
fi
[ -f "$COMMITTED/final_eval.json" ] || { echo "no finished $COMMITTED to check" >&2; exit 1; }
CLONE=${RERUN_CLONE:-$HERE/runs/rerun_clone}  # resumable: a killed check goes on where it stopped
if [ ! -d "$CLONE/.git" ]; then
  rm -rf "$CLONE"
  git clone -q "$HERE" "$CLONE"
  git -C "$CLONE" -c advice.detachedHead=false checkout -q --detach "$(git rev-parse HEAD)"
fi
(
  cd "$CLONE"
  [ -x .venv/bin/minimalrl ] || bash scripts/setup.sh
  bash experiments/compare/warm_start.sh
  nice -n 19 .venv/bin/minimalrl compare --config experiments/compare/config.yaml --eval-n 4 \
    --output "$RERUN" --no-progress --algos "$RUN" --seeds "$SEED"
)
mkdir -p "$RERUN/runs/${RUN}_seed$SEED"
cp "$CLONE/$RERUN/initial_eval.json" "$RERUN/"
cp "$CLONE/$RERUN/runs/${RUN}_seed$SEED"/{final_eval.json,metrics.jsonl} "$RERUN/runs/${RUN}_seed$SEED/"
{
  echo "$(date -u '+%F %H:%M') UTC, commit $(git -C "$CLONE" rev-parse --short HEAD), CPU:" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "$COMMITTED against the same run made again from nothing in a fresh clone:"
  .venv/bin/python experiments/compare/check_rerun.py "$COMMITTED" "$RERUN/runs/${RUN}_seed$SEED"
} | tee "$RERUN/check.txt"
