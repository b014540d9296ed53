#!/bin/bash
# A CPU pilot of a fine-tune recipe (2-core CPU, fp32): trains $CONFIG (optionally for $BUDGET s instead of the
# config's train.time_budget_s), then held-out and RULER at 4K (strict) on the result; compare with the shipped
# model's records in benchmarks/records/generalization/cpu/.
#   CONFIG=benchmarks/train/side_rows/pilot-cpu-part2.yaml bash benchmarks/train/cpu_pilot.sh OUT_DIR
# HELDOUT_SAMPLES (default 10) sets the held-out rows' n; ABLATION=1 adds the wording ablation
# (benchmarks/generalization/wording_ablation.py, strict, n = 20) before them.
set -euo pipefail
OUT=${1:?usage: CONFIG=... cpu_pilot.sh OUT_DIR}
CONFIG=${CONFIG:?set CONFIG to the recipe to train}
mkdir -p "$OUT"
python -P - "$CONFIG" "$OUT" <<'PY' > "$OUT/train.log" 2>&1
import os, sys
from ramba.train.config import config_from_dict, read_config_dict
from ramba.train.run import train_config
path, out = sys.argv[1], sys.argv[2]
raw = read_config_dict(path)
if os.environ.get("BUDGET"):
    raw.setdefault("train", {})["time_budget_s"] = float(os.environ["BUDGET"])
train_config(config_from_dict(raw, source=path), out + "/run", resume=True)
PY
CK="$OUT/$(basename "$CONFIG" .yaml)"
rm -rf "$CK" && cp -r "$OUT/run/model" "$CK"
cp checkpoints/ramba-tiny/tokenizer*.json "$CK/"
if [ -n "${ABLATION:-}" ]; then
  python -P benchmarks/generalization/wording_ablation.py "$CK" --samples 20 --out "$OUT/wording-ablation.json"
fi
python -P benchmarks/generalization/ruler_gpu.py "$CK" --device cpu --tasks heldout --lengths 4K \
  --samples "${HELDOUT_SAMPLES:-10}" --out "$OUT/heldout"
python -P benchmarks/generalization/ruler_gpu.py "$CK" --device cpu --tasks ruler --lengths 4K --samples 10 --out "$OUT/ruler"
