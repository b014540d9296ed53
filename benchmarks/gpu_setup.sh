#!/bin/bash
# Source this first in every GPU run:  source benchmarks/gpu_setup.sh
# Installs the carried wheels (.whl: mamba-ssm, lm-eval, datasets, ...) and this checkout itself into a scratch
# site folder, never touching the image's torch/Triton. Carry [".whl"] with the run.
set -e
SITE=${SITE:-/tmp/site}
mkdir -p "$SITE"
# A machine that is still warm keeps the last run's copy of this checkout: drop it so this run uses the new code.
rm -rf "$SITE"/ramba "$SITE"/ramba_eval* build
wheels=$(ls .whl/*.whl | grep -v '/ramba_eval-' || true)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" $wheels
# This checkout: a real install when setuptools is there, else the namespace assembled from symlinks.
if ! python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$SITE" . >/dev/null 2>&1; then
  python3 - "$SITE" <<'PY'
import os, sys
site, repo = sys.argv[1], os.getcwd()
ns = os.path.join(site, "ramba"); os.makedirs(ns, exist_ok=True)
for name in os.listdir(os.path.join(repo, "ramba")):
    dst = os.path.join(ns, name)
    if not os.path.lexists(dst): os.symlink(os.path.join(repo, "ramba", name), dst)
for folder in ("kernels", "evals", "tasks", "reports"):
    dst = os.path.join(ns, folder)
    if not os.path.lexists(dst): os.symlink(os.path.join(repo, folder), dst)
PY
fi
# Triton's compile cache: a carried .triton-cache.tgz (made by an earlier call, `save_triton_cache` below) spares a
# cold machine the ~2 minutes mamba-ssm's kernels take to compile; the cache keys on source, Triton and GPU, so a
# stale one only misses.
export TRITON_CACHE_DIR=/tmp/triton-cache
mkdir -p "$TRITON_CACHE_DIR"
[ -f .triton-cache.tgz ] && { tar xzf .triton-cache.tgz -C "$TRITON_CACHE_DIR" --skip-old-files 2>/dev/null || echo "gpu_setup: .triton-cache.tgz unreadable, compiling afresh"; }
save_triton_cache() { tar czf "$OUT/triton-cache.tgz" -C "$TRITON_CACHE_DIR" . && du -h "$OUT/triton-cache.tgz"; }
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
python3 -c "import torch, triton, ramba; print('gpu_setup:', torch.__version__, triton.__version__, torch.cuda.get_device_name(0))"
set +e
