#!/usr/bin/env bash
# Issue "A first run that visibly learns": the README's main command, timed, with seeds 0, 1, 2,
# one after another; each run's small result files go to experiments/default_run/seedN/. Then the
# three-seed plots, and the independent re-score of the initial model and the three final
# checkpoints (experiments/rescore.py) into experiments/default_run/rescore.txt.
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
.venv/bin/minimalrl plot runs/default_seed0 runs/default_seed1 runs/default_seed2 \
  --output experiments/default_run/plots
if [ ! -f experiments/default_run/rescore.txt ]; then
  initial=$(.venv/bin/python -c "from minimalrl.model.loading import resolve_model_path as r; print(r('smollm2-135m-instruct'))")
  finals=$(for s in 0 1 2; do ls -d runs/default_seed$s/checkpoints/iter_*/policy | tail -1; done)
  {
    echo "# python experiments/rescore.py INITIAL SEED0 SEED1 SEED2 --n 200 --seed 7 --max-new-tokens 64 --batch 32"
    echo "# $(date -u +%F): plain transformers greedy decoding + math-verify on 200 fresh two-digit problems"
    .venv/bin/python experiments/rescore.py "$initial" $finals --n 200 --seed 7 --max-new-tokens 64 --batch 32
  } > experiments/default_run/rescore.txt.tmp
  mv experiments/default_run/rescore.txt.tmp experiments/default_run/rescore.txt
fi
