#!/bin/bash
# CPU probe of varied wordings (finetune-cpu.yaml beside this file), ~50 min on 2 cores:
#   bash benchmarks/train/cue_variety/run_cpu.sh OUT_DIR
# trains $CONFIG (default finetune-cpu.yaml beside this file) for $BUDGET s (default the config's 2400), then the wording ablation (strict) and RULER + held-out at 4K
# (strict) on the result; compare with the shipped model's records in benchmarks/records/generalization/cpu/.
set -euo pipefail
OUT=${1:?usage: run_cpu.sh OUT_DIR}
mkdir -p "$OUT"
python - "$OUT" <<'PY' > "$OUT/train.log" 2>&1
import os, sys
from ramba.train.config import config_from_dict, read_config_dict
from ramba.train.run import train_config
path = os.environ.get("CONFIG", "benchmarks/train/cue_variety/finetune-cpu.yaml")
raw = read_config_dict(path)
if os.environ.get("BUDGET"):
    raw["train"]["time_budget_s"] = float(os.environ["BUDGET"])
train_config(config_from_dict(raw, source=path), sys.argv[1] + "/run", resume=True)
PY
CK="$OUT/$(basename "${CONFIG:-finetune-cpu.yaml}" .yaml)"
rm -rf "$CK" && cp -r "$OUT/run/model" "$CK"
cp checkpoints/ramba-tiny/tokenizer*.json "$CK/" 2>/dev/null || true
python benchmarks/generalization/wording_ablation.py "$CK" --samples 20 --out "$OUT/wording-ablation.json"
python benchmarks/generalization/ruler_gpu.py "$CK" --device cpu --tasks heldout --lengths 4K --samples 20 --out "$OUT/heldout"
python benchmarks/generalization/ruler_gpu.py "$CK" --device cpu --tasks ruler --lengths 4K --samples 10 --out "$OUT/ruler"
