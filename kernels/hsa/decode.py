"""Decode (T == 1) variants of the HSA ops, usable under CUDA graphs.

Same signatures as the prefill ops. Neither function synchronises with the host or allocates data-dependent
shapes, so both can be captured in a CUDA graph. For a graph that is replayed at every new position,
`q_offset` may be a 1-element int64 device tensor that the caller updates in place: the scan reads it at run
time, and landmark buffers may be preallocated to capacity (chunks past the visible count are never read).
"""
from __future__ import annotations

import math

import torch

from ramba.errors import BadInputError
from ramba.kernels.hsa.attend import hsa_forward
from ramba.kernels.hsa.select import select_launch

# Landmarks per program in the decode scan: 1M chunks -> 1024 programs per (batch, KV group), enough to keep
# every SM streaming, and a merge over 1024 x K candidate keys that costs a few microseconds.
DECODE_CHUNKS_PER_PROGRAM = 1024


def select_chunks_decode(r: torch.Tensor, landmarks: torch.Tensor, topk: int, chunk_size: int,
                         q_offset: int | torch.Tensor = 0):
    """One query token against all landmarks: r [B, 1, Hkv, dr] -> (indices, scores) [B, 1, Hkv, K].

    Like `select_chunks` with T == 1; landmarks are split into ranges scanned in parallel, then merged.
    """
    if r.dim() != 4 or r.shape[1] != 1:
        raise BadInputError(f"select_chunks_decode: r must be [B, 1, Hkv, dr], got {tuple(r.shape)}")
    C = landmarks.shape[1] if landmarks.dim() == 4 else 0
    n_split = max(1, math.ceil(C / DECODE_CHUNKS_PER_PROGRAM)) if r.device.type == "cuda" else None
    return select_launch(r, landmarks, topk, chunk_size, q_offset, n_split=n_split)


def hsa_attend_decode(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, indices: torch.Tensor,
                      weights: torch.Tensor, chunk_size: int, sm_n: float = 0.0, sm_scale: float | None = None):
    """Single-token HSA over the gathered chunks: q [B, 1, Hq, d] -> o [B, 1, Hq, d] (no autograd)."""
    if q.dim() != 4 or q.shape[1] != 1:
        raise BadInputError(f"hsa_attend_decode: q must be [B, 1, Hq, d], got {tuple(q.shape)}")
    return hsa_forward(q, k, v, indices, weights, chunk_size, sm_n, sm_scale, store_lse=False)[0]
