#!/usr/bin/env bash
# Build the wheel, install it (no editable install, no source tree on the path) into a fresh venv, import it.
set -euo pipefail
PYTHON="${1:-python3}"
TORCH_SPEC="${2:-torch==2.13.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
.venv/bin/python -m build --wheel --outdir "$WORK/dist" "$ROOT" >/dev/null
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q "$TORCH_SPEC"
"$WORK/venv/bin/python" -m pip install -q "$WORK"/dist/cancerllm-*.whl "$TORCH_SPEC"
cd "$WORK"
"$WORK/venv/bin/python" - <<'PY'
import sys
import cancerllm
from cancerllm import Phenotype, PromptBuilder, parse_answer
from cancerllm.metrics import exact_match
assert "site-packages" in cancerllm.__file__, cancerllm.__file__
assert parse_answer("{pr, her2, er}") == ["pr", "her2", "er"]
assert Phenotype.TUMOR_SIZE.question == "What is the tumor size in the given context?"
import importlib.resources as r
assert (r.files("cancerllm") / "py.typed").is_file()
print("wheel smoke OK:", cancerllm.__version__, cancerllm.__file__)
PY
