#!/bin/bash
# Source this first in every GPU run:  source benchmarks/gpu_setup.sh
# Installs the carried wheels (.whl: mamba-ssm, lm-eval, datasets, ...) and this checkout itself into a scratch
# site folder, never touching the image's torch/Triton. Carry [".whl"] with the run.
set -e
SITE=${SITE:-/tmp/site}
mkdir -p "$SITE"
wheels=$(ls .whl/*.whl | grep -v '/ramba_eval-' || true)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" $wheels
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$SITE" . >/dev/null
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
python3 -c "import torch, triton, ramba; print('gpu_setup:', torch.__version__, triton.__version__, torch.cuda.get_device_name(0))"
set +e
