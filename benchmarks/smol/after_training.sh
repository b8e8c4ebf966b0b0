#!/usr/bin/env bash
# The evaluation chain of a CancerLLM-Smol v2 run, in order (one heavy job at a time on a 2-core machine):
# learning curve on 50 validation reports, install the stacked adapter as the default, the full validation
# benchmark (398 reports, every baseline), then the counterfactual-label testbed at a CPU budget.
#   bash benchmarks/smol/after_training.sh    (after python benchmarks/smol/train_smol.py --version v2)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
DATA=../shared/data/tcga/tcga_reports_dev.jsonl
STACKED=benchmarks/out/smol-v2/cancerllm-smol-adapter
test -f "$STACKED/adapter_model.safetensors" || { echo "no stacked v2 adapter: train first" >&2; exit 1; }
echo "== learning curve $(date -u +%H:%M)"
$PY benchmarks/smol/learning_curve.py --steps 0 150 300 450 --limit 50
echo "== install $(date -u +%H:%M)"
rm -rf cancerllm/_resources/cancerllm-smol-adapter
cp -r "$STACKED" cancerllm/_resources/cancerllm-smol-adapter
cp docs/cancerllm-smol.md cancerllm/_resources/cancerllm-smol-adapter/README.md
echo "== validation benchmark $(date -u +%H:%M)"
.venv/bin/cancerllm benchmark --data "$DATA" --model cancerllm-smol --misspelling none \
    --out benchmarks/results/cancerllm-smol-v2-validation --quiet
echo "== counterfactual $(date -u +%H:%M)"
.venv/bin/cancerllm robustness --data "$DATA" --config benchmarks/smol/counterfactual.yaml \
    --rates 0.2,0.4,0.6,0.8 --train-limit 200 --limit 25 --out benchmarks/results/counterfactual-smol
echo "== done $(date -u +%H:%M)"
