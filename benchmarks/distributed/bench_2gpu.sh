#!/usr/bin/env bash
# Issue 14's Done-when record: the same passkey + RULER sweep with the shipped checkpoint on 1 GPU (one process),
# then on 2 GPUs under torchrun (NCCL), timed end to end; the JSON record states the speed-up (target >= 1.8x).
# On a 2-GPU machine, from the checkout (carry .whl, as for every GPU run):
#   bash benchmarks/distributed/bench_2gpu.sh $OUT/dist-2gpu-h200.json
# then commit the record as benchmarks/records/dist-2gpu-h200.json. CPU smoke of the same path (gloo, oracle):
#   bash benchmarks/distributed/bench_2gpu.sh /tmp/dist-smoke.json --smoke
# Extra arguments go to bench_sweep.py (--passkey-lengths 4K..16M --ruler-lengths 4K,64K,1M --depths 4 ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
RECORD=${1:?usage: bench_2gpu.sh RECORD.json [--smoke] [bench_sweep.py options]}
shift
if command -v nvidia-smi >/dev/null 2>&1 && [ -d .whl ]; then
  set +u; source benchmarks/gpu_setup.sh; set -euo pipefail
fi
python3 benchmarks/distributed/bench_sweep.py --nproc 2 --record "$RECORD" "$@"
