#!/bin/bash
# Issue 9 GPU jobs, one per `run` call (each fits one 10-minute call), records under $OUT:
#   train   the ramba-tiny v2 recipe (configs/ramba-tiny.yaml), then RULER + held-out at 4K while time is left
#   eval    RULER (8 NIAH + vt + cwe/fwe) at 4K/64K/1M, held-out at 4K, passkey 1K..4M, baselines at 4K/64K
#   long    RULER (8 NIAH + vt) and passkey at 16M and 64M
#   baselines4  the baselines' part 4 + average (configs/<name>-p4.yaml from the shipped checkpoints), and the shipped
#           ramba-tiny's 4K cells on the GPU
#   baselines1, baselines2, baselines3   the baselines' recipes (configs/swa-hsa-tiny.yaml, mamba2-tiny.yaml:
#           the shipped RAMba's three parts with another architecture), part 1 side by side in one call, part 2 +
#           RULER 4K/64K + passkey in the next, part 3 + the same in a third (each needs the machine still warm:
#           the earlier part's weights stay in /tmp/train_runs)
#   check   a fresh-seed check (task seed 202) of the checkpoints in $CKS at 4K and 64K, side by side
#   both    finetune and baselines4 side by side (LONG64=<tasks> adds those RULER tasks at 64K to each fine-tune)
#   confirm   cells a deadline cut ($FILL_TASKS/$FILL_LENGTHS), then a seed-202 check at 1M and 16M of $CKS
#   candidate passkey 1K..64M and RULER 64K..64M of the checkpoint $CK (records named $NAME)
#   candidate_short  the part of candidate a short call affords (passkey 16M/64M, RULER 1M and 16M, 64K fill-ins)
#   finetune  configs/ramba-tiny-v4ft.yaml (v2 + the retrieval term) at 3 term weights side by side, evaluated
#   explore1, explore2   two candidate recipes (configs/ramba-tiny-v3.yaml, configs/ramba-deep.yaml) trained side by
#           side over two back-to-back calls (paused with a checkpoint at the first call's end, resumed in the
#           second, which needs the machine still warm), GPU correctness tests beside them in the first call;
#           the second call evaluates RULER + held-out at 4K for both and returns their weights
# The checkpoint under test is $CK (default checkpoints/ramba-tiny; after `train`, copy the result there and carry it).
# Usage (run tool, carry [".whl"]): source benchmarks/gpu_setup.sh && bash benchmarks/train/issue9_gpu.sh train
set -o pipefail
JOB=$1
T0=$(date +%s)
END=${END:-560}   # seconds after T0 by which everything must have finished (the call's limit is 600)
now() { echo $(( $(date +%s) - T0 )); }
left() { echo $(( END - $(now) )); }
R="python benchmarks/generalization/ruler_gpu.py"
CANDIDATES=${CANDIDATES:-"ramba-tiny-v3 ramba-deep"}
BASELINES=${BASELINES:-"swa-hsa-tiny mamba2-tiny"}
CK=${CK:-checkpoints/ramba-tiny}   # the checkpoint the eval and long jobs measure
REC=${REC:-/tmp/rec}   # where the candidate job writes its records
# RULER task lists: the 8 NIAH variants + vt, and the multi-needle variants + vt (the cells that move between models)
NIAH=niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multikey_2,niah_multikey_3,niah_multivalue,niah_multiquery,vt
M64=niah_multikey_1,niah_multikey_2,niah_multikey_3,niah_multivalue,niah_multiquery,vt
# the same 9 tasks, vt and the multi-needle variants first (a deadline at 16M/64M cuts the single needles, 100% so far)
NIAH_LAST=vt,niah_multivalue,niah_multiquery,niah_multikey_1,niah_multikey_2,niah_multikey_3,niah_single_1,niah_single_2,niah_single_3
mkdir -p /tmp/rec $REC
to_bf16() {   # SRC DST: a safetensors file's tensors in bf16 (weights travel back at half the size)
  python -c "import sys, torch; from safetensors.torch import load_file, save_file; \
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in load_file(sys.argv[1]).items()}, sys.argv[2])" "$1" "$2"
}
run_name() { [ "$2" = cfg ] && basename $1 .yaml || echo $(basename $1 .yaml)-rw$2; }   # CONFIG RW
rw_set() { [ "$1" = cfg ] || echo "--set data.retrieval_weight=$1"; }                    # RW: the override, if any
ramba_eval() { python -P -c "import sys; from ramba.evals.cli import main; main(sys.argv[1:])" "$@"; }   # the installed CLI
pack() { tar czf $OUT/$JOB-records.tgz -C /tmp/rec . ; echo "packed at $(now) s"; }
# a job that overruns END (a training budget leaves out the first step's compiles and the in-run evaluations:
# the wall is about BUDGET + 120 s) still returns what /tmp/rec holds by then
( sleep $(( END > 0 ? END : 1 )); pack ) > /dev/null 2>&1 &
WATCHDOG=$!
trap 'kill $WATCHDOG 2>/dev/null' EXIT
case "$JOB" in
  train)
    timeout $(( $(left) - 10 )) python benchmarks/train/train_gpu.py configs/ramba-tiny.yaml --out /tmp/rec/ramba-tiny \
      --budget ${BUDGET:-360} 2>&1 | grep -E "passkey 4K|trained in|Error|error|Traceback|eval_exact" | tail -12
    mkdir -p /tmp/ck && cp -r /tmp/train_runs/ramba-tiny/model /tmp/ck/ramba-tiny
    timeout $(( $(left) - 5 )) $R /tmp/ck/ramba-tiny --tasks ruler --lengths 4K --samples 10 --out /tmp/rec/ruler \
      --deadline $(( $(left) - 40 )) 2>&1 | grep -E '^\{|Error' | tail -14
    pack
    ;;
  eval)     # everything that fits one call, most important first; each step gets a deadline
    timeout $(( $(left) - 5 )) $R $CK --tasks passkey --lengths 1K..4M --samples 20 --long-batch 5 \
      --out /tmp/rec/passkey --deadline 60 2>&1 | grep -E '^\{|Error' | tail -14
    timeout $(( $(left) - 5 )) $R $CK --tasks passkey --lengths 16M,64M --long-samples 5 \
      --long-batch 5 --out /tmp/rec/passkey --deadline 60 2>&1 | grep -E '^\{|Error' | tail -4
    timeout $(( $(left) - 5 )) $R $CK --tasks $NIAH --lengths 64K,1M --samples 10 --long-batch 5 \
      --out /tmp/rec/ruler --deadline 100 2>&1 | grep -E '^\{|Error' | tail -20
    timeout $(( $(left) - 5 )) $R $CK --tasks heldout --lengths 4K --samples 20 \
      --out /tmp/rec/heldout --deadline 40 2>&1 | grep -E '^\{|Error' | tail -16
    timeout $(( $(left) - 5 )) $R $CK --tasks $NIAH --lengths 16M,64M --long-samples 3 --long-batch 3 \
      --out /tmp/rec/ruler --deadline $(( $(left) - 60 )) 2>&1 | grep -E '^\{|Error' | tail -20
    timeout $(( $(left) - 5 )) $R checkpoints/swa-hsa-tiny checkpoints/mamba2-tiny --tasks ruler --lengths 4K,64K \
      --samples 10 --out /tmp/rec/baselines --deadline $(( $(left) - 15 )) 2>&1 | grep -E '^\{|Error' | tail -44
    pack
    ;;
  long)     # what the eval call could not finish (batched long prefills crashed there), kernel GPU tests
    timeout $(( $(left) - 5 )) $R $CK --tasks passkey --lengths 16M,64M --long-samples 5 \
      --long-batch 5 --out /tmp/rec/passkey --deadline 60 2>&1 | grep -E '^\{|Error' | tail -4
    timeout 150 python -P -m pytest -m gpu tests/kernels -q -x 2>&1 | tail -5
    timeout $(( $(left) - 5 )) $R $CK --tasks passkey --lengths 512K..4M --samples 20 --long-batch 5 \
      --out /tmp/rec/passkey --deadline 40 2>&1 | grep -E '^\{|Error' | tail -4
    timeout $(( $(left) - 5 )) $R $CK --tasks $NIAH --lengths 1M --samples 10 --long-batch 5 \
      --out /tmp/rec/ruler --deadline 60 2>&1 | grep -E '^\{|Error' | tail -10
    timeout $(( $(left) - 5 )) $R $CK --tasks $NIAH --lengths 16M,64M --long-samples 3 --long-batch 3 \
      --out /tmp/rec/ruler --deadline $(( $(left) - 45 )) 2>&1 | grep -E '^\{|Error' | tail -20
    pack
    ;;
  train2)   # part 2 of the recipe, from the part-1 weights in checkpoints/ramba-tiny; RULER + held-out at 4K
    timeout $(( $(left) - 10 )) python benchmarks/train/train_gpu.py configs/ramba-tiny.yaml --out /tmp/rec/ramba-tiny \
      --budget ${BUDGET:-380} --set model.init_from=checkpoints/ramba-tiny --eval-samples 2 2>&1 \
      | grep -E "passkey 4K|trained in|Error|error|Traceback|eval_exact" | tail -8
    mkdir -p /tmp/ck && rm -rf /tmp/ck/ramba-tiny && cp -r /tmp/train_runs/ramba-tiny/model /tmp/ck/ramba-tiny
    timeout $(( $(left) - 5 )) $R /tmp/ck/ramba-tiny --tasks $NIAH --lengths 4K --samples 10 --out /tmp/rec/ruler \
      --deadline 25 2>&1 | grep -E '^\{|Error' | tail -10
    timeout $(( $(left) - 5 )) $R /tmp/ck/ramba-tiny --tasks heldout --lengths 4K --samples 10 --out /tmp/rec/heldout \
      --deadline $(( $(left) - 12 )) 2>&1 | grep -E '^\{|Error' | tail -14
    pack
    ;;
  explore1)
    for c in $CANDIDATES; do
      python benchmarks/train/train_gpu.py configs/$c.yaml --out /tmp/rec/$c --budget ${BUDGET:-700} \
        --stop-in $(( $(left) - 25 )) > /tmp/rec/$c-train1.log 2>&1 &
    done
    timeout 260 python -P -m pytest -m gpu tests/kernels -q -rs > /tmp/rec/kernels-gpu-tests.txt 2>&1
    tail -4 /tmp/rec/kernels-gpu-tests.txt
    timeout 150 python -P -m pytest tests/model/test_model_offload_gpu.py tests/model/test_model_offload.py -q -rs \
      > /tmp/rec/offload-gpu-tests.txt 2>&1
    tail -4 /tmp/rec/offload-gpu-tests.txt
    wait
    for c in $CANDIDATES; do grep -E "kind=eval|paused|Error|Traceback" /tmp/rec/$c-train1.log | tail -3; done
    pack
    ;;
  explore2)
    for c in $CANDIDATES; do
      ( python benchmarks/train/train_gpu.py configs/$c.yaml --out /tmp/rec/$c --budget ${BUDGET:-700} --resume \
          --stop-in $(( $(left) - 150 )) --eval-samples 2 > /tmp/rec/$c-train2.log 2>&1
        rm -f /tmp/rec/$c/model.safetensors        # weights travel back as bf16 files, not in the records
        mkdir -p /tmp/ck/$c && cp /tmp/train_runs/$c/model/config.json /tmp/train_runs/$c/model/model.safetensors /tmp/ck/$c/
        timeout $(( $(left) - 20 )) $R /tmp/ck/$c --tasks ruler --lengths 4K --samples 10 --out /tmp/rec/ruler-$c \
          --deadline 70 > /tmp/rec/$c-ruler.log 2>&1
        timeout $(( $(left) - 15 )) $R /tmp/ck/$c --tasks heldout --lengths 4K --samples 10 --out /tmp/rec/heldout-$c \
          --deadline $(( $(left) - 20 )) > /tmp/rec/$c-heldout.log 2>&1 ) &
    done
    wait
    for c in $CANDIDATES; do
      grep -E "trained in|paused|passkey 4K|Error|Traceback" /tmp/rec/$c-train2.log | tail -3
      grep -hE '^\{' /tmp/rec/$c-ruler.log /tmp/rec/$c-heldout.log | cut -c1-150
      to_bf16 /tmp/ck/$c/model.safetensors $OUT/$c-bf16.safetensors
    done
    pack
    ;;
  finetune)  # $CONFIG (default configs/ramba-tiny-v4ft.yaml; or several, space-separated, in $CONFIGS) with
             # retrieval_weight RWS (default "0 1 3"; "cfg": each config's own), every pair side by side,
             # from the weights in $INIT if set (else the config's model.init_from),
             # same seed and rows; each then RULER + held-out at 4K; the weights come back as bf16 files.
             # AVG=w averages each fine-tune with its start (${INIT:-checkpoints/ramba-tiny}; w on the fine-tune) and
             # evaluates the average (<name>-avg) instead, then the fine-tune itself at 64K while time is left
    CONFIGS=${CONFIGS:-${CONFIG:-configs/ramba-tiny-v4ft.yaml}}
    for cfg in $CONFIGS; do for rw in ${RWS:-0 1 3}; do
      n=$(run_name $cfg $rw)
      ( python benchmarks/train/train_gpu.py $cfg --out /tmp/rec/$n --budget ${BUDGET:-300} \
          --set name=$n $(rw_set $rw) ${INIT:+--set model.init_from=$INIT} --eval-samples 2 \
          > /tmp/rec/$n-train.log 2>&1
        rm -f /tmp/rec/$n/model.safetensors
        rm -rf /tmp/ck/$n-avg    # a warm machine's earlier average must not come back as this run's
        mkdir -p /tmp/ck/$n && cp /tmp/train_runs/$n/model/config.json /tmp/train_runs/$n/model/model.safetensors /tmp/ck/$n/
        to_bf16 /tmp/ck/$n/model.safetensors $OUT/$n-bf16.safetensors   # now: the evaluations below may meet the limit
        e=$n     # the checkpoint evaluated: the fine-tune, or with AVG its average with the start
        if [ -n "$AVG" ]; then
          ramba_eval average \
            ${INIT:-checkpoints/ramba-tiny} /tmp/ck/$n --weight $AVG --out /tmp/ck/$n-avg > /tmp/rec/$n-avg.log 2>&1 \
            && e=$n-avg && to_bf16 /tmp/ck/$e/model.safetensors $OUT/$e-bf16.safetensors
        fi
        timeout $(( $(left) - 20 )) $R /tmp/ck/$e --tasks ruler --lengths 4K --samples 10 --out /tmp/rec/ruler-$e \
          --deadline 60 > /tmp/rec/$e-ruler.log 2>&1
        [ -n "$LONG64" ] && timeout $(( $(left) - 15 )) $R /tmp/ck/$e --tasks $LONG64 --lengths 64K --samples 10 \
          --out /tmp/rec/ruler64k-$e --deadline 50 > /tmp/rec/$e-ruler64k.log 2>&1
        timeout $(( $(left) - 15 )) $R /tmp/ck/$e --tasks heldout --lengths 4K --samples 10 --out /tmp/rec/heldout-$e \
          --deadline $( [ -n "$AVG" ] && echo 40 || echo $(( $(left) - 20 )) ) > /tmp/rec/$e-heldout.log 2>&1
        # with AVG, the fine-tune itself at 64K while time is left (what the average keeps of its long-length change)
        [ -n "$AVG" ] && [ -n "$LONG64" ] && timeout $(( $(left) - 15 )) $R /tmp/ck/$n --tasks $LONG64 --lengths 64K \
          --samples 10 --out /tmp/rec/ruler64k-$n --deadline $(( $(left) - 20 )) > /tmp/rec/$n-ruler64k.log 2>&1 ) &
    done; done
    wait
    for cfg in $CONFIGS; do for rw in ${RWS:-0 1 3}; do
      n=$(run_name $cfg $rw)
      grep -E "trained in|passkey 4K|Error|Traceback" /tmp/rec/$n-train.log | tail -3
      for e in $n $n-avg; do
        grep -hE '^\{|rror' /tmp/rec/$e-ruler.log /tmp/rec/$e-heldout.log /tmp/rec/$e-ruler64k.log /tmp/rec/$e.log \
          2>/dev/null | cut -c1-150
      done
    done; done
    pack
    ;;
  candidate)  # a candidate beyond 4K, to decide whether it ships: $CK is copied to /tmp/ck/$NAME so its records carry
             # that name. Passkey 1K..4M, RULER (8 NIAH + vt) at 64K/1M/16M, passkey 16M/64M, RULER at 64M (vt and
             # the multi-needle variants first there, so a deadline cuts the single needles, 100% for every model
             # so far). REC=$OUT/rec writes the records straight into the returned folder, so a call stopped at its
             # limit still returns every finished cell (the default, /tmp/rec, is packed at the end).
    NAME=${NAME:-candidate}
    mkdir -p /tmp/ck && rm -rf /tmp/ck/$NAME && cp -r $CK /tmp/ck/$NAME
    timeout $(( $(left) - 5 )) $R /tmp/ck/$NAME --tasks passkey --lengths 1K..4M --samples 20 --long-batch 5 \
      --out $REC/passkey --deadline 200 2>&1 | grep -E '^\{|Error' | tail -14
    timeout $(( $(left) - 5 )) $R /tmp/ck/$NAME --tasks $NIAH --lengths 64K,1M,16M --samples 10 --long-samples 3 \
      --long-batch 3 --out $REC/ruler --deadline 150 2>&1 | grep -E '^\{|Error' | tail -30
    timeout $(( $(left) - 5 )) $R /tmp/ck/$NAME --tasks passkey --lengths 16M,64M --long-samples 5 \
      --long-batch 5 --out $REC/passkey --deadline 75 2>&1 | grep -E '^\{|Error' | tail -4
    timeout $(( $(left) - 5 )) $R /tmp/ck/$NAME --tasks $NIAH_LAST --lengths 64M --long-samples 3 --long-batch 3 \
      --out $REC/ruler --deadline $(( $(left) - 20 )) 2>&1 | grep -E '^\{|Error' | tail -10
    if [ "$REC" = /tmp/rec ]; then pack; fi   # (an && list would end the job with status 1)
    ;;
  candidate_short)  # what a call with ~4 minutes left affords of `candidate`: RULER (8 NIAH + vt) at 1M, passkey
             # at 16M and 64M (5 each, the shipping guards), the 64K cells a finetune call leaves out
             # ($FILL64, default the single needles, multikey_2 and vt), RULER at 16M (the multi-needle variants first)
    NAME=${NAME:-candidate}
    mkdir -p /tmp/ck && rm -rf /tmp/ck/$NAME && cp -r $CK /tmp/ck/$NAME
    timeout $(( $(left) - 5 )) $R /tmp/ck/$NAME --tasks $NIAH --lengths 1M --samples 10 --long-batch 5 \
      --out $REC/ruler --deadline 45 2>&1 | grep -E '^\{|Error' | tail -10
    timeout $(( $(left) - 5 )) $R /tmp/ck/$NAME --tasks passkey --lengths 16M,64M --long-samples 5 \
      --long-batch 5 --out $REC/passkey --deadline 90 2>&1 | grep -E '^\{|Error' | tail -4
    timeout $(( $(left) - 5 )) $R /tmp/ck/$NAME --tasks ${FILL64:-niah_single_1,niah_single_2,niah_single_3,niah_multikey_2,vt} \
      --lengths 64K --samples 10 --out $REC/ruler --deadline 30 2>&1 | grep -E '^\{|Error' | tail -6
    timeout $(( $(left) - 5 )) $R /tmp/ck/$NAME --tasks $NIAH_LAST --lengths 16M --long-samples 3 --long-batch 3 \
      --out $REC/ruler --deadline $(( $(left) - 15 )) 2>&1 | grep -E '^\{|Error' | tail -10
    if [ "$REC" = /tmp/rec ]; then pack; fi   # (an && list would end the job with status 1)
    ;;
  baselines1)  # part 1 of the baselines' recipes ($BASELINES: configs/<name>.yaml) side by side; weights back as bf16
    for c in $BASELINES; do
      python benchmarks/train/train_gpu.py configs/$c.yaml --out /tmp/rec/$c --budget ${BUDGET:-360} \
        --stop-in $(( $(left) - 30 )) --eval-samples 2 > /tmp/rec/$c-train.log 2>&1 &
    done
    wait
    for c in $BASELINES; do
      grep -E "trained in|paused|passkey 4K|Error|Traceback" /tmp/rec/$c-train.log | tail -3
      rm -f /tmp/rec/$c/model.safetensors
      to_bf16 /tmp/train_runs/$c/model/model.safetensors $OUT/$c-bf16.safetensors
    done
    pack
    ;;
  baselines4)  # (python -P: the checkout's ramba/ folder must not shadow the installed package, which holds evals)
               # part 4 of the baselines' recipes (configs/<name>-p4.yaml) from their shipped part 3 (checkpoints/<name>),
               # side by side, each averaged with part 3 as ramba-tiny is (0.7 x part 3 + 0.3 x part 4), then RULER (8
               # NIAH + vt + cwe/fwe) at 4K and 64K and passkey 1K..1M of the average; beside them, the shipped
               # ramba-tiny's RULER and held-out cells at 4K on the GPU (its card's 4K column is CPU so far).
               # Part 4 (unless NO_P4_WEIGHTS) and the averages come back as bf16 files; SKIP_SHIPPED leaves the shipped
               # model's cells out.
    [ -n "$SKIP_SHIPPED" ] || ( timeout $(( $(left) - 20 )) $R checkpoints/ramba-tiny --tasks ruler --lengths 4K --samples 10 \
        --out /tmp/rec/shipped-4k --deadline 200 > /tmp/rec/shipped-4k-ruler.log 2>&1
      timeout $(( $(left) - 20 )) $R checkpoints/ramba-tiny --tasks heldout --lengths 4K --samples 10 \
        --out /tmp/rec/shipped-4k --deadline 200 > /tmp/rec/shipped-4k-heldout.log 2>&1 ) &
    for c in $BASELINES; do
      ( python benchmarks/train/train_gpu.py configs/$c-p4.yaml --out /tmp/rec/$c-p4 --budget ${BUDGET:-300} \
          --set model.init_from=checkpoints/$c --eval-samples 2 > /tmp/rec/$c-p4-train.log 2>&1
        rm -f /tmp/rec/$c-p4/model.safetensors
        ramba_eval average checkpoints/$c \
          /tmp/train_runs/$c-p4/model --weight 0.3 --out /tmp/ck/$c-avg30 > /tmp/rec/$c-avg30.log 2>&1
        timeout $(( $(left) - 20 )) $R /tmp/ck/$c-avg30 --tasks ruler --lengths 4K,64K --samples 10 \
          --out /tmp/rec/ruler-$c-avg30 --deadline 90 > /tmp/rec/$c-avg30-ruler.log 2>&1
        timeout $(( $(left) - 15 )) $R /tmp/ck/$c-avg30 --tasks passkey --lengths 1K..1M --samples 10 \
          --out /tmp/rec/passkey-$c-avg30 --deadline $(( $(left) - 20 )) > /tmp/rec/$c-avg30-passkey.log 2>&1 ) &
    done
    wait
    grep -hE '^\{' /tmp/rec/shipped-4k-ruler.log /tmp/rec/shipped-4k-heldout.log | cut -c1-150
    for c in $BASELINES; do
      grep -E "trained in|passkey 4K|Error|Traceback" /tmp/rec/$c-p4-train.log | tail -3
      grep -hE '^\{|rror' /tmp/rec/$c-avg30.log /tmp/rec/$c-avg30-ruler.log /tmp/rec/$c-avg30-passkey.log | cut -c1-150
      [ -n "$NO_P4_WEIGHTS" ] || to_bf16 /tmp/train_runs/$c-p4/model/model.safetensors $OUT/$c-p4-bf16.safetensors
      cp /tmp/ck/$c-avg30/model.safetensors $OUT/$c-avg30-bf16.safetensors
    done
    pack
    ;;
  baselines2|baselines3)  # part 2 (configs/<name>-ft.yaml) from part 1's weights, or part 3 (<name>-ft2.yaml) from
               # part 2's, on the still-warm machine, side by side, then RULER (8 NIAH + vt + cwe/fwe) at 4K and 64K
               # and passkey 1K..1M; weights back as bf16 (a cold machine reads the earlier part from .ck/<name>)
    if [ "$JOB" = baselines2 ]; then sfx=-ft; prev_sfx=; else sfx=-ft2; prev_sfx=-ft; fi
    for c in $BASELINES; do
      part=$c$sfx; prev=$c$prev_sfx
      # the earlier part's weights: on this warm machine, else carried as a checkpoint folder .ck/<part> (bf16)
      init=/tmp/train_runs/$prev/model; [ -f $init/model.safetensors ] || init=.ck/$prev
      ( python benchmarks/train/train_gpu.py configs/$part.yaml --out /tmp/rec/$part --budget ${BUDGET:-300} \
          --set model.init_from=$init --eval-samples 2 > /tmp/rec/$part-train.log 2>&1
        rm -f /tmp/rec/$part/model.safetensors
        mkdir -p /tmp/ck/$part && cp /tmp/train_runs/$part/model/* /tmp/ck/$part/
        timeout $(( $(left) - 20 )) $R /tmp/ck/$part --tasks ruler --lengths 4K,64K --samples 10 \
          --out /tmp/rec/ruler-$part --deadline 90 > /tmp/rec/$part-ruler.log 2>&1
        timeout $(( $(left) - 15 )) $R /tmp/ck/$part --tasks passkey --lengths 1K..1M --samples 10 \
          --out /tmp/rec/passkey-$part --deadline $(( $(left) - 20 )) > /tmp/rec/$part-passkey.log 2>&1 ) &
    done
    wait
    for c in $BASELINES; do
      part=$c$sfx
      grep -E "trained in|passkey 4K|Error|Traceback" /tmp/rec/$part-train.log | tail -3
      grep -hE '^\{' /tmp/rec/$part-ruler.log /tmp/rec/$part-passkey.log | cut -c1-150
      to_bf16 /tmp/ck/$part/model.safetensors $OUT/$part-bf16.safetensors
    done
    pack
    ;;
  check)    # a fresh-seed check of the checkpoints in $CKS (space-separated folders), side by side: RULER (8 NIAH + vt)
            # at 4K (20 samples) and the multi-needle variants + vt at 64K (10), task seed 202; the same 64K cells and
            # the held-out wordings at 4K on seed 101. Records packed into one file (the call returns at most 8)
    for ck in $CKS; do
      n=$(basename $ck)
      ( timeout $(( $(left) - 10 )) $R $ck --tasks $NIAH --lengths 4K --samples 20 --seed 202 --out /tmp/rec/s202-4k \
          --deadline 60 > /tmp/rec/$n-s202-4k.log 2>&1
        timeout $(( $(left) - 10 )) $R $ck --tasks $M64 --lengths 64K --samples 10 --seed 202 --out /tmp/rec/s202-64k \
          --deadline 50 > /tmp/rec/$n-s202-64k.log 2>&1
        timeout $(( $(left) - 10 )) $R $ck --tasks heldout --lengths 4K --samples 10 --out /tmp/rec/s101-heldout \
          --deadline 40 > /tmp/rec/$n-s101-heldout.log 2>&1
        timeout $(( $(left) - 10 )) $R $ck --tasks $M64 --lengths 64K --samples 10 --out /tmp/rec/s101-64k \
          --deadline $(( $(left) - 15 )) > /tmp/rec/$n-s101-64k.log 2>&1 ) &
    done
    wait
    pack
    ;;
  confirm)  # before shipping $CK: its cells a deadline cut ($FILL_TASKS at $FILL_LENGTHS, task seed 101, n = 3 at
            # >= 16M), then a fresh-seed check (task seed 202) at 1M (10 samples) and 16M (3) of the checkpoints in $CKS
            # side by side (RULER: 8 NIAH + vt); records straight into $REC
    [ -n "$FILL_TASKS" ] && timeout $(( $(left) - 10 )) $R $CK --tasks $FILL_TASKS --lengths $FILL_LENGTHS \
      --samples 10 --long-samples 3 --long-batch 3 --out $REC/fill --deadline 90 2>&1 | grep -E '^\{|Error' | tail -9
    for ck in $CKS; do
      n=$(basename $ck)
      ( timeout $(( $(left) - 10 )) $R $ck --tasks $NIAH --lengths 1M --samples 10 --long-batch 5 --seed 202 \
          --out $REC/s202-1m --deadline 90 > /tmp/rec/$n-s202-1m.log 2>&1
        timeout $(( $(left) - 10 )) $R $ck --tasks $NIAH --lengths 16M --long-samples 3 --long-batch 3 --seed 202 \
          --out $REC/s202-16m --deadline $(( $(left) - 20 )) > /tmp/rec/$n-s202-16m.log 2>&1 ) &
    done
    wait
    grep -hE '^\{|Error' /tmp/rec/*-s202-*.log | cut -c1-160
    ;;
  both)     # finetune and baselines4 side by side in one call (their records share /tmp/rec; the baselines' part-4
            # weights stay behind, only their averages come back, so the call returns at most 8 files)
    NO_P4_WEIGHTS=1 bash $0 baselines4 > /tmp/rec/both-baselines4.log 2>&1 &
    bash $0 finetune > /tmp/rec/both-finetune.log 2>&1
    wait
    cat /tmp/rec/both-finetune.log /tmp/rec/both-baselines4.log
    rm -f $OUT/finetune-records.tgz $OUT/baselines4-records.tgz
    pack
    ;;
  *) echo "unknown job $JOB: train, train2, eval, long, finetune, candidate, explore1, explore2, baselines1, baselines2, baselines3, baselines4, both, check"; exit 2 ;;
esac
