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
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
python3 -c "import torch, triton, ramba; print('gpu_setup:', torch.__version__, triton.__version__, torch.cuda.get_device_name(0))"
set +e
