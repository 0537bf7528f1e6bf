#!/usr/bin/env bash
# Issue "A first run that visibly learns": the README's main command, timed, with seeds 0, 1, 2,
# one after another; each run's small result files go to experiments/default_run/seedN/.
# Resumable at run granularity: a seed whose results are there is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
for seed in 0 1 2; do
  dest=experiments/default_run/seed$seed
  [ -f "$dest/summary.txt" ] && continue
  out=runs/default_seed$seed
  rm -rf "$out"
  start=$(date +%s)
  .venv/bin/minimalrl train --output "$out" --set seed=$seed 2> "$out.progress.log" | tee "$out.summary.txt"
  mkdir -p "$dest"
  cp -r "$out/metrics.jsonl" "$out/plots" "$dest/"
  { cat "$out.summary.txt"; echo "wall clock: $(( $(date +%s) - start )) s"; } > "$dest/summary.txt"
done
