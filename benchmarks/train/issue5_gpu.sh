#!/bin/bash
# The remaining issue-5 GPU runs, one job per `run` call (each fits one 10-minute call):
#   seed1        the ramba-tiny recipe again with seed 1 (reproducibility), then passkey 1K..4M on it
#   mamba2       the mamba2-tiny baseline (same recipe and wall-clock budget), then passkey vs length
#   transformer  the transformer-tiny baseline, then passkey to 64K; then the shipped ramba-tiny at 4M..64M
#   swa-hsa      the swa-hsa-tiny baseline, then passkey vs length
# Each training runs alone on the GPU with the recipe's own budget (380 s), as a user re-running it would.
# Usage (run tool, carry [".whl"]): source benchmarks/gpu_setup.sh && bash benchmarks/train/issue5_gpu.sh seed1
set -o pipefail
JOB=$1
T0=$(date +%s)
END=${END:-545}   # seconds after T0 by which everything must have finished (the call's limit is 600, setup ~40)
now() { echo $(( $(date +%s) - T0 )); }

train() {  # name config [--set ...]: the training gets the time it needs; evaluations share what is left
  local name=$1 config=$2; shift 2
  timeout $((END - $(now))) python benchmarks/train/train_gpu.py "$config" --out /tmp/runs/$name --set name=$name "$@" 2>&1 \
    | grep -E "passkey 4K|trained in|Error|error|Traceback" | tail -8
  tar czf $OUT/$name.tgz -C /tmp/runs/$name . && echo "packed $name at $(now) s"
}

evaluate() {  # checkpoint lengths samples-per-depth samples-per-depth-at->=16M [extra args]
  local ck=$1 lengths=$2 n=$3 nl=$4; shift 4
  local hard=$((END - $(now)))
  # no new length after hard-70 s: the longest (64M x 5 samples) takes about a minute
  [ "$hard" -gt 30 ] || { echo "no time left to evaluate $ck at $lengths"; return; }
  timeout $hard python benchmarks/train/eval_long.py "$ck" --lengths "$lengths" --samples "$n" \
    --long-samples "$nl" --out $OUT/gen --deadline $((hard - 70)) "$@" 2>&1 | grep -E '^\{|Error|error' | tail -12
}

mkdir -p $OUT/gen
SHIPPED_LONG="evaluate checkpoints/ramba-tiny 4M,16M,64M 4 1"   # 20 at 4M, 5 at 16M and 64M
case "$JOB" in
  seed1)
    train ramba-tiny-seed1 configs/ramba-tiny.yaml --set seed=1
    evaluate /tmp/runs/ramba-tiny-seed1 1K,4K,16K,64K,256K,1M 4 1    # 4 x 5 depths = 20 per length
    $SHIPPED_LONG
    ;;
  mamba2)
    train mamba2-tiny configs/mamba2-tiny-v1.yaml
    evaluate /tmp/runs/mamba2-tiny 1K,4K,16K,64K,256K,1M,4M 4 1
    ;;
  transformer)
    train transformer-tiny configs/transformer-tiny.yaml
    evaluate /tmp/runs/transformer-tiny 1K,4K,16K,64K 4 1
    ;;
  swa-hsa)
    train swa-hsa-tiny configs/swa-hsa-tiny-v1.yaml
    evaluate /tmp/runs/swa-hsa-tiny 1K,4K,16K,64K,256K,1M,4M,16M,64M 4 1
    ;;
  shipped)   # evaluation only
    $SHIPPED_LONG
    ;;
  final)     # evaluation only, of the checkpoints the jobs above brought back (carried as .runs/eval)
    $SHIPPED_LONG
    evaluate .runs/eval/ramba-tiny-seed1 1K,4K,16K,64K,256K,1M,4M,16M,64M 4 1
    evaluate .runs/eval/swa-hsa-tiny 16M 4 1
    evaluate .runs/eval/mamba2-tiny 16M,64M 4 1
    evaluate .runs/eval/swa-hsa-tiny 64M 4 1
    ;;
  *) echo "unknown job $JOB (seed1 | mamba2 | transformer | swa-hsa | shipped | final)"; exit 2 ;;
esac
echo "job $JOB done in $(now) s"
