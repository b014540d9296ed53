#!/usr/bin/env bash
# Regenerate the committed CI baseline, reports/baselines/ci-suite, from configs/ci-suite.yaml on this machine's
# CPU: after an intended change of the shipped checkpoint (checkpoints/ramba-tiny) or of the suite. One command,
# from anywhere in the checkout, with ramba-eval installed (README):
#   bash benchmarks/ci/make_baseline.sh
# then commit reports/baselines/ci-suite. It takes about a minute on two idle cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

OUT=reports/baselines/ci-suite
TMP="$OUT.tmp$$"
rm -rf "$TMP"
ramba-eval run configs/ci-suite.yaml --out "$TMP" --no-progress
rm -rf "$OUT"
mv "$TMP" "$OUT"
rm -f "$OUT/suite.yaml.tmp"*
# The gate's own check, against itself: must pass (and shows the summary the gate will compare against).
CHECK=$(mktemp -d)
ramba-eval compare "$OUT" "$OUT" --out "$CHECK" | head -1
rm -rf "$CHECK"
echo "baseline: $OUT ($(du -sh "$OUT" | cut -f1)); commit it"
