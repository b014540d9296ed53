"""transformers >= 5.25 depends on the Hugging Face Hub's `kernels` package and imports it with transformers. Run
from this checkout's root (`python -m pytest`, `python -m ...`), the folder kernels/ (our Triton kernels, installed
as ramba.kernels) comes first on sys.path under the same top-level name and shadows it: transformers' `from kernels
import CUDAProperties` then fails. shield_hub_kernels() imports the installed package first, past the checkout, so
the name is taken by the right one; call it before importing transformers or lm-eval."""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys


def shield_hub_kernels() -> None:
    if "kernels" in sys.modules:
        return
    try:
        installed = os.path.realpath(str(importlib.metadata.distribution("kernels").locate_file("kernels")))
    except importlib.metadata.PackageNotFoundError:
        return                                              # no Hub package: nothing for ours to shadow
    def shadows(entry: str) -> bool:                        # a path entry whose kernels/ is not the installed one
        folder = os.path.join(entry or os.getcwd(), "kernels")
        return os.path.isdir(folder) and os.path.realpath(folder) != installed
    saved = sys.path[:]
    sys.path[:] = [p for p in saved if not shadows(p)]
    try:
        importlib.import_module("kernels")
    except Exception:  # noqa: BLE001 - a broken Hub package is transformers' concern, not ours
        sys.modules.pop("kernels", None)
    finally:
        sys.path[:] = saved
