#!/bin/bash
# CPU pilot of side rows (pilot-cpu-part2.yaml beside this file; ~20 min of training on 2 cores, then ~5 min of
# evaluation): trains $CONFIG, then held-out and RULER at 4K (strict, n = 10) on the result; compare with the
# shipped model's records in benchmarks/records/generalization/cpu/sel03-averages/.
#   CONFIG=benchmarks/train/side_rows/pilot-cpu-part2.yaml bash benchmarks/train/side_rows/run_cpu.sh OUT_DIR
set -euo pipefail
OUT=${1:?usage: run_cpu.sh OUT_DIR}
CONFIG=${CONFIG:-benchmarks/train/side_rows/pilot-cpu-part2.yaml}
mkdir -p "$OUT"
python -P -c "import sys; from ramba.evals.cli import main; main(sys.argv[1:])" train "$CONFIG" --out "$OUT/run" \
  > "$OUT/train.log" 2>&1
CK="$OUT/$(basename "$CONFIG" .yaml)"
rm -rf "$CK" && cp -r "$OUT/run/model" "$CK"
cp checkpoints/ramba-tiny/tokenizer*.json "$CK/"
python -P benchmarks/generalization/ruler_gpu.py "$CK" --device cpu --tasks heldout --lengths 4K --samples 10 --out "$OUT/heldout"
python -P benchmarks/generalization/ruler_gpu.py "$CK" --device cpu --tasks ruler --lengths 4K --samples 10 --out "$OUT/ruler"
