#!/bin/bash
# Issue 10's GPU records in ONE call on a warm H200 (mamba-ssm Triton kernels already in the cache), under a
# hard wall-clock limit of ~280 s for setup + this script:
#   source benchmarks/gpu_setup.sh && bash benchmarks/offload/issue10_gpu.sh $OUT [STEPS]
# STEPS (default p64,disk,370m,256m, run in that order; also gputests: the placements' GPU tests; hostab: the host placement's pinned and pageable blocks against gpu,
# two samples each, in one process) runs a subset, e.g. `... $OUT 256m` for a call of its own.
# Knobs (environment): ISSUE10_BUDGET_S (seconds from this script's start, default 250: setup ~15-25 s of the
# 280 s is already spent), SEG256 (256M segment, default 65536), MEM256 (256M memory dtype, default bfloat16),
# SAMPLES256 (default 3), PLACE370 (370m placements, default gpu,host,disk), HOST_MODES (hostab: default pageable,pinned), ISSUE10_GIT_SHA (recorded when the copy has no .git). CPU smoke test of the script:
#   ISSUE10_DEVICE=cpu L64=8K SWEEP=2K,4K PROBE=2K DISKL=4K,8K L370=2K MODEL370=ramba:tiny L256=8K \
#     bash benchmarks/offload/issue10_gpu.sh /tmp/o10-out
#
# Every step runs in its own process under its own `timeout`, capped by what is left of the budget, and also
# gets --deadline so it does not start a sub-run projected to end past it. Results are built in a scratch
# folder and packed after every step into $OUT (3 files, < 1 MiB):
#   $OUT/issue10.json  every record + meta (device, versions, git sha) + summaries + step status
#   $OUT/issue10.md    the Done-when table (render_issue10.py: target | measured | met?)
#   $OUT/issue10.log   the steps' output
#
# Estimates (no GPU measurement of these paths yet; T = tiny fp32 64M prefill at batch 1, guessed ~25 s from
# 3.3M tok/s of the tiny forward at 64K on the H100 and 9.6 s/sample for 5 batched bf16 rows on the H200):
#   process start (torch, CUDA context, model, cached Triton) ~8 s per step
#   p64   probe gpu 1M (~1 s) -> segment; host 64M ~T + ~10 s pinning 17 GiB (0.6 s/GiB); gpu 64M ~T;
#         host 1M+4M+16M ~0.33 T; then host 64M and gpu 64M again (pinned blocks reused) only if time is left
#         -> ~70 s without the second pair, ~120 s with it (limit 150 s)
#   disk  16M ~0.3 T (~8 s), 64M (~T + page-cache writes, ~30 s) only if projected to fit  -> 15-45 s (limit 60)
#   370m  bf16, 1M x gpu,host,disk: ~9 s each at ~120K tok/s + model init/warm-up         -> ~45 s (limit 70)
#   256m  1G budget line (no allocation), then 256M host bf16 (34 GiB pinned, ~20 s): ~4 T + 20 s per first
#         sample, ~4 T later: needs ~120 s for one sample, ~320 s for three -> gets whatever is left; run it
#         alone (`... $OUT 256m`) for >= 2-3 samples in a call
# With T ~25 s the default call records p64 (first pair + sweep, perhaps the second pair), disk 16M, 370m 1M,
# and skips 256M (not enough left) -- the table says which targets are still open.
set -u
OUT=${1:?usage: issue10_gpu.sh OUT [STEPS]}
STEPS=${2:-p64,disk,370m,256m}
T0=$(date +%s)
BUDGET=${ISSUE10_BUDGET_S:-250}
DEADLINE=$((T0 + BUDGET))
RUN=${ISSUE10_RUN_DIR:-/tmp/issue10-run}
export RAMBA_EVAL_CACHE=${RAMBA_EVAL_CACHE:-/tmp/ramba-eval-cache}
export ISSUE10_GIT_SHA=${ISSUE10_GIT_SHA:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
PY=${PYTHON:-python3}
B=benchmarks/offload/bench_offload.py
R=benchmarks/offload/render_issue10.py
mkdir -p "$OUT" "$RUN"
LOG=$OUT/issue10.log
: >"$RUN/steps.jsonl"
rm -rf "$RUN/memory"      # a warm machine may keep an earlier run's folder (finished runs resume, are not redone)
echo "issue10_gpu: steps=$STEPS budget=${BUDGET}s run=$RUN sha=$ISSUE10_GIT_SHA" | tee -a "$LOG"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader 2>&1 | tee -a "$LOG"
grep -E 'MemTotal|MemAvailable' /proc/meminfo | tee -a "$LOG"; df -h /tmp | tail -1 | tee -a "$LOG"

pack() {
  $PY $R pack "$RUN" "$OUT/issue10.json" --steps "$RUN/steps.jsonl" --log "$LOG" >>"$LOG" 2>&1
  $PY $R render "$OUT/issue10.json" --md "$OUT/issue10.md" >/dev/null 2>>"$LOG"
}

# step NAME MAX_S MIN_S ARGS...: run bench_offload.py NAME under timeout min(MAX_S, left - 8); skip below MIN_S
step() {
  local name=$1 max=$2 min=$3; shift 3
  local now left lim t rc
  now=$(date +%s); left=$((DEADLINE - now - 8))
  lim=$(( left < max ? left : max ))
  if [ "$lim" -lt "$min" ]; then
    echo "== $name skipped: ${left}s left < ${min}s" | tee -a "$LOG"
    echo "{\"step\":\"$name\",\"rc\":null,\"wall_s\":0,\"limit_s\":$lim,\"skipped\":true}" >>"$RUN/steps.jsonl"
    return
  fi
  echo "== $name (limit ${lim}s, t+$((now - T0))s)" | tee -a "$LOG"
  t=$(date +%s)
  # SIGTERM first (the runner marks the run interrupted), SIGKILL 5 s later
  timeout -k 5 "$lim" $PY $B "$name" --out "$RUN" --device "${ISSUE10_DEVICE:-cuda}" --deadline $((now + lim - 3)) "$@" >>"$LOG" 2>&1
  rc=$?
  echo "{\"step\":\"$name\",\"rc\":$rc,\"wall_s\":$(( $(date +%s) - t )),\"limit_s\":$lim}" >>"$RUN/steps.jsonl"
  echo "== $name rc=$rc in $(( $(date +%s) - t ))s" | tee -a "$LOG"
  pack
}

# gputests: the GPU tests of the placements (outputs equal to gpu; compiles mamba-ssm's kernels, ~100 s on a fresh
# machine), full output in $OUT/offload-gpu-tests.txt
gputests() {
  local now left lim
  now=$(date +%s); left=$((DEADLINE - now - 8)); lim=$(( left < 300 ? left : 300 ))
  echo "== gputests (limit ${lim}s)" | tee -a "$LOG"
  timeout -k 5 "$lim" $PY -P -m pytest -m gpu tests/model/test_model_offload_gpu.py -q -rs >"$OUT/offload-gpu-tests.txt" 2>&1
  echo "== gputests rc=$? in $(( $(date +%s) - now ))s: $(tail -1 "$OUT/offload-gpu-tests.txt")" | tee -a "$LOG"
}

# the steps run in the order STEPS names them
for name in ${STEPS//,/ }; do
  case "$name" in
    gputests) gputests ;;
    p64) step p64 150 40 --lengths "${L64:-64M}" --sweep "${SWEEP:-1M,4M,16M}" --probe "${PROBE:-1M}" ;;
    hostab) step hostab 330 60 --lengths "${L64:-64M}" --probe "${PROBE:-1M}" --modes "${HOST_MODES:-pageable,pinned}" ;;
    disk) step disk 100 15 --lengths "${DISKL:-16M,64M}" ;;
    370m) step 370m 400 30 --lengths "${L370:-1M}" --model "${MODEL370:-ramba:370m}" \
            --placements "${PLACE370:-gpu,host,disk}" ;;
    256m) step 256m 600 60 --lengths "${L256:-256M}" --samples "${SAMPLES256:-3}" --segment "${SEG256:-65536}" \
            --memory-dtype "${MEM256:-bfloat16}" ;;
    *) echo "issue10_gpu: unknown step $name (gputests, p64, hostab, disk, 370m, 256m)" | tee -a "$LOG"; exit 2 ;;
  esac
done
pack
rm -rf "$RUN/memory" 2>/dev/null
echo "issue10_gpu: done in $(( $(date +%s) - T0 ))s" | tee -a "$LOG"
cat "$OUT/issue10.md" 2>/dev/null | head -30
ls -la "$OUT"
