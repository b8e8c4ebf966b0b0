#!/usr/bin/env bash
# The evaluation chain of a CancerLLM-Smol run, in order (one heavy job at a time on a 2-core machine):
# learning curve on 50 validation reports, install the stacked adapter as the default, the full validation
# benchmark (398 reports, every baseline, the previous release side by side in the same run).
#   bash benchmarks/smol/after_training.sh [v4]    (after python benchmarks/smol/train_smol.py --version v4)
# ALONE=1 benchmarks the new release without the previous one (half the time); compare the two afterwards,
# paired by report, with benchmarks/smol/compare_releases.py against the previous release's stored results.
# The chain installs the new release as the default; when the comparison does not support it (v4: better
# diagnoses, worse phenotypes), restore the default (git checkout cancerllm/_resources/cancerllm-smol-adapter)
# and ship the new one by name (cancerllm-smol-<version>-adapter, SMOL_RELEASES in cancerllm/_constants.py).
# v2's chain also ran the counterfactual-label testbed; run it alone with:
#   cancerllm robustness --data ../shared/data/tcga/tcga_reports_dev.jsonl --config benchmarks/smol/counterfactual.yaml \
#       --rates 0.2,0.4,0.6,0.8 --train-limit 200 --limit 25 --out benchmarks/results/counterfactual-smol
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=${1:-v4}
case "$VERSION" in v4) PREVIOUS=cancerllm-smol-v3 ;; v3) PREVIOUS=cancerllm-smol-v2 ;; *) PREVIOUS=cancerllm-smol-v1 ;; esac
PY=.venv/bin/python
DATA=../shared/data/tcga/tcga_reports_dev.jsonl
STACKED=benchmarks/out/smol-$VERSION/cancerllm-smol-adapter
test -f "$STACKED/adapter_model.safetensors" || { echo "no stacked $VERSION adapter: train first" >&2; exit 1; }
echo "== learning curve $(date -u +%H:%M)"
$PY benchmarks/smol/learning_curve.py --version "$VERSION" --limit 50
echo "== install $(date -u +%H:%M)"
rm -rf cancerllm/_resources/cancerllm-smol-adapter
cp -r "$STACKED" cancerllm/_resources/cancerllm-smol-adapter
cp docs/cancerllm-smol.md cancerllm/_resources/cancerllm-smol-adapter/README.md
echo "== validation benchmark $(date -u +%H:%M)"
MODELS=(--model "$PREVIOUS" --model cancerllm-smol)
[ "${ALONE:-0}" = 1 ] && MODELS=(--model cancerllm-smol)
.venv/bin/cancerllm benchmark --data "$DATA" "${MODELS[@]}" --misspelling none \
    --out "benchmarks/results/cancerllm-smol-$VERSION-validation" --quiet
echo "== done $(date -u +%H:%M)"
