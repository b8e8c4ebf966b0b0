#!/usr/bin/env bash
# The floor job: a second venv with the lowest supported transformers / peft / accelerate / bitsandbytes
# (.ci/floor-constraints.txt, the floors of pyproject.toml) and the fast tests of the code that uses them.
#   bash .ci/floor.sh [PYTHON] [TORCH_SPEC]        (make test-floor)
# The venv is build/floor-venv, rebuilt when the constraints or pyproject.toml change.
set -euo pipefail
PYTHON="${1:-python3}"
TORCH_SPEC="${2:-torch==2.13.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CONSTRAINTS=.ci/floor-constraints.txt
VENV="${FLOOR_VENV:-build/floor-venv}"
PY="$VENV/bin/python"
STAMP="$VENV/.floor-stamp"
KEY="$("$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(b"".join(open(f, "rb").read() for f in sys.argv[1:])).hexdigest())' "$CONSTRAINTS" pyproject.toml) $TORCH_SPEC"
start=$(date +%s)

if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$KEY" ]]; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
  # torch first and pinned in every command, so that no resolver swaps it for a CUDA build
  "$PY" -m pip install -q "$TORCH_SPEC"
  "$PY" -m pip install -q -c "$CONSTRAINTS" -e ".[dev,pandas,train,quant]" "$TORCH_SPEC"
  echo "$KEY" > "$STAMP"
fi

# the pins really are what is installed (a constraint that pip could not honour fails here, not silently)
"$PY" - "$CONSTRAINTS" "$TORCH_SPEC" <<'PY'
import sys
from importlib.metadata import version

pins = [p for p in (ln.split("#")[0].strip() for ln in open(sys.argv[1])) if "==" in p]
pins += [sys.argv[2]] if "==" in sys.argv[2] else []
bad = []
for pin in pins:
    name, want = pin.split("==")
    got = version(name)
    if got.split("+")[0] != want:
        bad.append(f"{name}: pinned {want}, installed {got}")
if bad:
    sys.exit("floor venv does not hold the floor pins:\n  " + "\n  ".join(bad))
print("floor pins:", ", ".join(f"{p.split('==')[0]} {version(p.split('==')[0])}" for p in pins))
PY

"$PY" -m pytest -q -m "not slow and not gpu" -p no:cacheprovider \
  tests/test_engine.py tests/test_engine_shared_prefix.py tests/test_prompts.py tests/test_model.py tests/training \
  tests/test_task_adapters.py
echo "floor job done in $(( $(date +%s) - start )) s"
