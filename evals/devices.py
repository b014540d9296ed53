"""`--device`: its spelling is checked without torch (config, dry run); whether it exists, with torch (run).

A device that is spelled right but absent (`cuda` on a CPU-only torch, `cuda:3` on a one-GPU machine) fails here
with one line, before any model is loaded, instead of as torch's AssertionError deep inside `.to(device)`.
"""
from __future__ import annotations

import re

from ramba.errors import BadInputError

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DEVICES_HELP = "auto, cpu, cuda, cuda:N or mps"


def check_device_spec(device: object) -> str:
    """The device string, or BadInputError for a name torch would reject (`tpu`, `gpu`, `cuda:x`)."""
    if not isinstance(device, str) or not _DEVICE_RE.match(device.strip()):
        raise BadInputError(f"unknown device {device!r}; use {DEVICES_HELP}")
    return device.strip()


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; an explicit device must exist. Imports torch."""
    device = check_device_spec(device)
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise BadInputError(f"device {device!r} is not available ({why}, torch {torch.__version__}); "
                                "use --device cpu or --device auto")
        index = int(device.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise BadInputError(f"device {device!r} does not exist: this machine has {count} CUDA device(s) "
                                f"(cuda:0..cuda:{count - 1})")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BadInputError("device 'mps' is not available on this machine; use --device cpu or --device auto")
    return device
