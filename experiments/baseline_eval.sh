#!/usr/bin/env bash
# The default model's accuracy (issue "Foundation"): each eval writes experiments/baseline/NAME/;
# a finished one (summary.json present) is skipped, so the script resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
run() {
  local name=$1; shift
  local out=experiments/baseline/$name
  [ -f "$out/summary.json" ] && { echo "skip $name"; return; }
  echo "== $name: minimalrl eval $*"
  .venv/bin/minimalrl eval --no-progress --output "$out" "$@" | tee "experiments/baseline/$name.txt"
}
run arith_add_greedy --benchmark "arithmetic:digits=2,num_ops=1,ops=+,n=100,split=test" --max-new-tokens 128
run arith_add_k8 --benchmark "arithmetic:digits=2,num_ops=1,ops=+,n=100,split=test" --k 8 --temperature 1.0 --max-new-tokens 128 --limit 50
run gsm8k200_greedy --benchmark gsm8k --limit 200 --max-new-tokens 256
run math500_100_greedy --benchmark math500 --limit 100 --max-new-tokens 256
