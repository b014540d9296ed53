#!/bin/bash
# CPU A/B of the retrieval term (data.retrieval_weight) on the shipped v2 weights, ~30 min on 2 cores:
#   bash benchmarks/train/retrieval_term/run_cpu.sh OUT_DIR
# trains finetune-cpu.yaml for $BUDGET s (default 540) with retrieval_weight 1.0 and 0.0 (same seed and rows), then runs the needle
# diagnostics (benchmarks/generalization/needle_diagnostics.py) and the key-swap probe (key_swap.py) at 4K on both.
# POSITIONS=first puts the term on the first byte of each copied value only (data.retrieval_positions).
set -euo pipefail
OUT=${1:?usage: run_cpu.sh OUT_DIR}
mkdir -p "$OUT"
for rw in 1.0 0.0; do
  python - "$rw" "$OUT" <<'PY'
import os, sys, yaml
from ramba.train.config import config_from_dict
from ramba.train.run import train_config
rw, out = float(sys.argv[1]), sys.argv[2]
raw = yaml.safe_load(open("benchmarks/train/retrieval_term/finetune-cpu.yaml"))
raw["data"]["retrieval_weight"] = rw
raw["data"]["retrieval_positions"] = os.environ.get("POSITIONS", "all")
raw["train"]["time_budget_s"] = float(os.environ.get("BUDGET", "540"))
raw["name"] = f"rx-rw{rw}"
train_config(config_from_dict(raw, source="benchmarks/train/retrieval_term/finetune-cpu.yaml"), f"{out}/rw{rw}",
             resume=False)
PY
done
for rw in 1.0 0.0; do
  python benchmarks/generalization/needle_diagnostics.py "$OUT/rw$rw/model" --samples 20 \
    --tasks niah_single_2,niah_multikey_1,niah_multiquery --out "$OUT/diag-rw$rw.json" | tee "$OUT/diag-rw$rw.md"
  python benchmarks/generalization/key_swap.py "$OUT/rw$rw/model" --samples 20 --out "$OUT/key-swap-rw$rw.json"
done
