#!/usr/bin/env bash
# The grid's initial model, into runs/warm_start: the README's main command (GRPO, seed 0, 18
# iterations) with its rollouts replayed from warm_start_rollouts.jsonl.gz (the tokens that
# command sampled on 2026-12-07, recorded with rollout_record), so any machine makes the same
# weights to rounding (bitwise on the kind that recorded it). Resumable; skipped when made.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/minimalrl ] || bash scripts/setup.sh
if [ ! -f runs/warm_start/checkpoints/iter_000018/policy/config.json ]; then
  nice -n 19 .venv/bin/minimalrl train --set seed=0 --output runs/warm_start --no-progress \
    --set rollout_replay=experiments/compare/warm_start_rollouts.jsonl.gz --resume auto
fi
