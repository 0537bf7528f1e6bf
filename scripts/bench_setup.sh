#!/usr/bin/env bash
# Install the benchmark-only extra (TRL, for benchmarks/grpo_step.py) into .venv.
# Run scripts/setup.sh first. torch stays pinned to 2.13.0 (the CPU wheel on disk): the extra pins
# it too, and we check afterwards that installing TRL did not swap it for another build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    echo "no .venv: run scripts/setup.sh first" >&2
    exit 1
fi
.venv/bin/pip install -q -e '.[bench]'
.venv/bin/python - <<'PY'
import sys

import torch
import trl

if torch.__version__ != "2.13.0+cpu":
    sys.exit(f"torch is {torch.__version__}, expected 2.13.0+cpu: the bench extra changed it")
print(f"trl {trl.__version__}, torch {torch.__version__}")
PY
