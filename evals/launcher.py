"""`ramba-eval run CONFIG --launcher torchrun --nproc N`: the same command, re-executed under torchrun.

The process replaces itself (exec) by `python -m torch.distributed.run --standalone --nproc-per-node N -m
ramba.evals.cli run CONFIG ...`, so signals and the exit code are torchrun's own. `--standalone` picks a free
local port: two runs on one machine do not collide. Multi-node runs call torchrun directly (README).
"""
from __future__ import annotations

import os
import sys

from ramba.errors import BadInputError, RambaEvalError

LAUNCHERS = ("torchrun",)


def check(launcher: str | None, nproc: int | None) -> int | None:
    """The number of processes to launch, None for no launcher; one-line errors for what cannot launch."""
    if launcher is None:
        if nproc is not None:
            raise BadInputError("--nproc needs --launcher torchrun")
        return None
    if launcher not in LAUNCHERS:
        raise BadInputError(f"unknown launcher {launcher!r}; use --launcher {' or '.join(LAUNCHERS)}")
    from ramba.evals.distributed import from_env
    if from_env() is not None:
        raise BadInputError("already running under torchrun (RANK/WORLD_SIZE are set); drop --launcher")
    if nproc is None:
        nproc = _gpu_count()
        if nproc < 1:
            raise BadInputError("--launcher torchrun needs --nproc N on a machine without GPUs")
    if nproc < 1:
        raise BadInputError(f"--nproc must be at least 1, got {nproc}")
    _check_torchrun()
    return nproc


def _gpu_count() -> int:
    try:
        import torch
        return torch.cuda.device_count()
    except ImportError:
        return 0


def _check_torchrun() -> None:
    import importlib.util
    try:
        import torch.distributed as dist
        ok = dist.is_available() and importlib.util.find_spec("torch.distributed.run") is not None
    except ImportError:
        ok = False
    if not ok:
        raise RambaEvalError("torchrun is not available (this torch has no torch.distributed); install a torch "
                             "built with it, or run without --launcher")


def torchrun_argv(nproc: int, cli_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
            "-m", "ramba.evals.cli", *cli_args]


def relaunch(nproc: int, cli_args: list[str]) -> None:
    argv = torchrun_argv(nproc, cli_args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
