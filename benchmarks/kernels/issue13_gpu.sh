#!/bin/bash
# Issue 13 benchmark records in one GPU call (one H200, <= 270 s including gpu_setup):
#
#   source benchmarks/gpu_setup.sh && bash benchmarks/kernels/issue13_gpu.sh $OUT
#
# Runs benchmarks/kernels/issue13.py once per section, most important first, each under its own `timeout`, all
# inside a budget counted from this script's start (ISSUE13_BUDGET seconds, default 240; or from ISSUE13_T0 =
# epoch seconds taken before gpu_setup). After every section the record is marked (a killed section keeps what
# it measured and reads "timeout") and the summary re-rendered, so a cut-short call still returns both.
# Writes into $OUT (4 files): issue13-kernels.json, kernels-h200-summary.md, issue13-log.txt,
# ramba-tiny-indices-64k.npy (the shipped model's selected chunk ids, int16 [65536, 8]).
# Env: ISSUE13_SECTIONS (comma list and order), GIT_SHA (recorded; the device copy has no .git), PYTHON,
# ISSUE13_REP (do_bench ms, default 60), ISSUE13_SMOKE=1 (CPU, tiny shapes, Triton interpreter; give it
# ISSUE13_CAP_SCALE=20 ISSUE13_BUDGET=3000: the interpreter is slow).
set -u
OUT=${1:?usage: bash benchmarks/kernels/issue13_gpu.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE/../.."
PY=${PYTHON:-python3}
T0=${ISSUE13_T0:-$(date +%s)}
BUDGET=${ISSUE13_BUDGET:-240}
SECTIONS=${ISSUE13_SECTIONS:-select,locality,fb4k,configs,decode,model370m}
export GIT_SHA=${GIT_SHA:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
export PYTHONUNBUFFERED=1
REC="$OUT/issue13-kernels.json"
MD="$OUT/kernels-h200-summary.md"
LOG="$OUT/issue13-log.txt"
EXTRA=(--rep "${ISSUE13_REP:-60}")
[ "${ISSUE13_SMOKE:-0}" = 1 ] && EXTRA+=(--smoke)
# per-section caps in seconds (expected: select ~25, locality ~25, fb4k ~18, configs ~20, decode ~12, model ~35)
declare -A CAP=([select]=35 [locality]=45 [fb4k]=30 [configs]=30 [decode]=20 [model370m]=60)
RESERVE=6          # kept for the kill grace (-k 3) and the last render
: > "$LOG"
echo "issue13: budget ${BUDGET}s from $(date -u -d @"$T0" +%H:%M:%S 2>/dev/null || echo "$T0"), sections $SECTIONS, git $GIT_SHA" | tee -a "$LOG"
for s in ${SECTIONS//,/ }; do
  now=$(date +%s)
  left=$(( T0 + BUDGET - now - RESERVE ))
  cap=$(( ${CAP[$s]:-30} * ${ISSUE13_CAP_SCALE:-1} ))
  t=$(( cap < left ? cap : left ))
  if [ "$t" -lt 8 ]; then
    echo "== $s: skipped (${left}s left)" | tee -a "$LOG"
    $PY "$HERE/render_summary.py" "$REC" --mark "$s=skipped" --out "$MD" 2>&1 | tee -a "$LOG"
    continue
  fi
  echo "== $s: timeout ${t}s, elapsed $(( now - T0 ))s" | tee -a "$LOG"
  timeout -k 3 "$t" $PY "$HERE/issue13.py" --section "$s" --out "$OUT" "${EXTRA[@]}" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  echo "== $s: rc $rc, elapsed $(( $(date +%s) - T0 ))s" | tee -a "$LOG"
  $PY "$HERE/render_summary.py" "$REC" --mark "$s=$rc" --out "$MD" 2>&1 | tee -a "$LOG"
done
echo "== issue13 done in $(( $(date +%s) - T0 ))s" | tee -a "$LOG"
cat "$MD"
