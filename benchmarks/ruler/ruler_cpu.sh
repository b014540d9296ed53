#!/bin/bash
# RULER-style tasks on CPU for every shipped checkpoint, through the harness itself (`ramba-eval run`): one run
# folder per (model, task) under $1 (default /tmp/ruler-runs), resumable. Then
#   python benchmarks/ruler/render_ruler.py /tmp/ruler-runs --out reports/generalization/ruler
# Usage: bash benchmarks/ruler/ruler_cpu.sh [RUNS_DIR] [LENGTHS] [SAMPLES_PER_DEPTH]
set -e
RUNS=${1:-/tmp/ruler-runs}
LENGTHS=${2:-1K,4K,16K}
SAMPLES=${3:-2}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TASKS="niah_single_1 niah_single_2 niah_single_3 niah_multikey_1 niah_multikey_2 niah_multikey_3 niah_multivalue niah_multiquery vt cwe fwe"
mkdir -p "$RUNS"
for model in ramba-tiny swa-hsa-tiny mamba2-tiny transformer-tiny; do
  for task in $TASKS; do
    cfg="$RUNS/$model-$task.yaml"
    cat > "$cfg" <<CFG
task: $task
lengths: [${LENGTHS}]
depths: [0, 0.25, 0.5, 0.75, 1]
samples: $SAMPLES
seed: 31
model: ramba:$REPO/checkpoints/$model
device: cpu
out: $RUNS/$model/$task
report: false
CFG
    start=$(date +%s)
    ramba-eval run "$cfg" >/dev/null 2>"$RUNS/$model-$task.err" || { echo "FAILED $model $task"; tail -3 "$RUNS/$model-$task.err"; }
    echo "$model $task $(( $(date +%s) - start )) s"
  done
done
