"""The table of sparse-attention ops the model calls, per backend ("reference" or "triton").

Every entry has the signature of ramba.kernels.hsa.reference (documented there and in docs/contracts.md), so
the kernel backend is swapped in without touching the model. "triton" entries import lazily and fall back to
the reference one by one when a kernel module is missing. Choice: RAMBA_OPS env var, else the model's
`ops_backend` attribute, else "triton" on CUDA and "reference" on CPU.
"""
from __future__ import annotations

import functools
import importlib
import os
import warnings
from dataclasses import dataclass
from typing import Callable

from ramba.errors import BadInputError
from ramba.kernels.hsa import reference as ref

BACKENDS = ("reference", "triton")

_TRITON = {
    "select_chunks": "ramba.kernels.hsa.select:select_chunks",
    "hsa_attend": "ramba.kernels.hsa.attend:hsa_attend",
    "select_chunks_decode": "ramba.kernels.hsa.decode:select_chunks_decode",
    "hsa_attend_decode": "ramba.kernels.hsa.decode:hsa_attend_decode",
}


@dataclass(frozen=True)
class OpTable:
    name: str
    select_chunks: Callable          # (r, landmarks, topk, chunk_size, q_offset=0) -> (indices, scores)
    chunk_weights: Callable          # (scores, fusion) -> weights
    hsa_attend: Callable             # (q, k, v, indices, weights, chunk_size, sm_n=0.0, sm_scale=None) -> o
    select_chunks_decode: Callable   # same signature as select_chunks, T == 1
    hsa_attend_decode: Callable      # same signature as hsa_attend, T == 1


def _reference_table() -> OpTable:
    # memory-bounded forms of the reference ops (same results, tested against them)
    from ramba.hsa import hsa_attend_gathered, select_chunks_bounded
    return OpTable("reference", select_chunks_bounded, ref.chunk_weights, hsa_attend_gathered,
                   select_chunks_bounded, hsa_attend_gathered)


def _load(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


@functools.lru_cache(maxsize=None)
def get_ops(name: str) -> OpTable:
    if name not in BACKENDS:
        raise BadInputError(f"unknown ops backend {name!r}; use one of {', '.join(BACKENDS)}")
    table = _reference_table()
    if name == "reference":
        return table
    entries, missing = {}, []
    for key, target in _TRITON.items():
        try:
            entries[key] = _load(target)
        except (ImportError, AttributeError):
            entries[key] = getattr(table, key)
            missing.append(key)
    if missing:
        warnings.warn(f"triton HSA ops not available ({', '.join(missing)}): using the reference for them")
    return OpTable("triton" if len(missing) < len(_TRITON) else "reference", entries["select_chunks"],
                   table.chunk_weights, entries["hsa_attend"], entries["select_chunks_decode"],
                   entries["hsa_attend_decode"])


def resolve_backend(preferred: str | None, device_type: str) -> str:
    """RAMBA_OPS env var > the model's setting > device default."""
    name = os.environ.get("RAMBA_OPS") or preferred or ("triton" if device_type == "cuda" else "reference")
    if name not in BACKENDS:
        raise BadInputError(f"unknown ops backend {name!r} (RAMBA_OPS or ops_backend); use one of "
                            f"{', '.join(BACKENDS)}")
    return name
