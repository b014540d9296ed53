#!/bin/bash
# Train the three baselines with the ramba-tiny recipe at a reduced wall-clock budget (seconds, $1), evaluate
# each at 4K, pack each run as $OUT/<name>.tgz, then measure passkey vs length where each can run.
# Usage (run tool): source benchmarks/gpu_setup.sh && bash benchmarks/train/baselines_gpu.sh 100
BUDGET=${1:-100}
for name in mamba2-tiny transformer-tiny swa-hsa-tiny; do
  python benchmarks/train/train_gpu.py configs/$name.yaml --out /tmp/bl/$name --budget $BUDGET --eval-samples 2 \
    2>&1 | grep -E "^kind=eval|passkey 4K|trained in|Error|error" | tail -6
  tar czf $OUT/$name.tgz -C /tmp/bl/$name . && echo "packed $name"
done
python benchmarks/train/eval_long.py /tmp/bl/mamba2-tiny /tmp/bl/transformer-tiny /tmp/bl/swa-hsa-tiny \
  --lengths 1K,4K,16K,64K,256K,1M --samples 2 --max-length transformer=64K --out /tmp/bl/gen --deadline 100 \
  2>&1 | tail -20
tar czf $OUT/baselines-gen.tgz -C /tmp/bl/gen .
