#!/usr/bin/env bash
# The GRPO-step benchmark against TRL in one command on a fresh machine: makes .venv when there
# is none (scripts/setup.sh), installs the `bench` extra (scripts/bench_setup.sh: TRL 1.16, torch
# kept at 2.13.0+cpu), then runs benchmarks/grpo_step.py with the arguments given, e.g.
#   bash benchmarks/run.sh                                # float32, 3 repeats, prints the ratio
#   bash benchmarks/run.sh --precision bf16 --output benchmarks/results/grpo_step_bf16.json
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    bash scripts/setup.sh
fi
bash scripts/bench_setup.sh
exec .venv/bin/python benchmarks/grpo_step.py "$@"
