#!/bin/bash
# The shipped ramba-tiny: train the recipe (configs/ramba-tiny.yaml, its own wall-clock budget), evaluate at 4K,
# then passkey vs length on the new checkpoint: 1M..64M first (the headline), then 1K..256K.
# Usage (run tool): source benchmarks/gpu_setup.sh && bash benchmarks/train/final_gpu.sh
python benchmarks/train/train_gpu.py configs/ramba-tiny.yaml --out $OUT/ramba-tiny 2>&1 \
  | grep -E "^kind=eval|passkey 4K|trained in|Error|error" | tail -8
python benchmarks/train/eval_long.py $OUT/ramba-tiny --lengths 1M,4M,16M,64M --samples 4 --long-samples 1 \
  --out $OUT/gen 2>&1 | tail -6
python benchmarks/train/eval_long.py $OUT/ramba-tiny --lengths 1K,4K,16K,64K,256K --samples 4 \
  --out $OUT/gen 2>&1 | tail -6
