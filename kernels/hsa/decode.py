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

# Decode scan: landmark ranges of >= one 64-chunk block, at most 4 programs per SM. A short scan is latency
# bound (H100 run 2: 16K chunks in 16 ranges of 1024 took 0.16 ms), so it is spread as wide as possible; the
# merge over n_split x K candidate keys costs a few microseconds.
DECODE_BLOCK_C = 64
DECODE_PROGRAMS_PER_SM = 4


def select_chunks_decode(r: torch.Tensor, landmarks: torch.Tensor, topk: int, chunk_size: int,
                         q_offset: int | torch.Tensor = 0):
    """One query token against all landmarks: r [B, 1, Hkv, dr] -> (indices, scores) [B, 1, Hkv, K].

    Like `select_chunks` with T == 1; landmarks are split into ranges scanned in parallel, then merged.
    """
    if r.dim() != 4 or r.shape[1] != 1:
        raise BadInputError(f"select_chunks_decode: r must be [B, 1, Hkv, dr], got {tuple(r.shape)}")
    C = landmarks.shape[1] if landmarks.dim() == 4 else 0
    n_split = None
    if r.device.type == "cuda" and C > 0:
        sms = torch.cuda.get_device_properties(r.device).multi_processor_count
        n_split = max(1, min(math.ceil(C / DECODE_BLOCK_C), DECODE_PROGRAMS_PER_SM * sms // max(1, r.shape[0] * r.shape[2])))
    return select_launch(r, landmarks, topk, chunk_size, q_offset, n_split=n_split)


def hsa_attend_decode(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, indices: torch.Tensor,
                      weights: torch.Tensor, chunk_size: int, sm_n: float = 0.0, sm_scale: float | None = None):
    """Single-token HSA over the gathered chunks: q [B, 1, Hq, d] -> o [B, 1, Hq, d] (no autograd)."""
    if q.dim() != 4 or q.shape[1] != 1:
        raise BadInputError(f"hsa_attend_decode: q must be [B, 1, Hq, d], got {tuple(q.shape)}")
    return hsa_forward(q, k, v, indices, weights, chunk_size, sm_n, sm_scale, store_lse=False)[0]
