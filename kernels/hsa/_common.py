"""Argument checks and small helpers shared by the HSA Triton wrappers (select, attend, decode)."""
from __future__ import annotations

import math

import torch

from ramba.errors import BadInputError

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def dot_precision(dtype: torch.dtype):
    """fp32 inputs use exact fp32 products (tl.dot would silently use TF32); fp16/bf16 keep tl.dot's default."""
    return "ieee" if dtype == torch.float32 else None


def check_attend_args(q, k, v, indices, weights, chunk_size):
    """Validate hsa_attend's arguments (shapes per docs/contracts.md); returns (B, T, Hq, Hkv, d, K, C)."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if x.dim() != 4:
            raise BadInputError(f"hsa_attend: {name} must be 4-D [B, T, H, d], got shape {tuple(x.shape)}")
        if x.dtype not in FLOAT_DTYPES:
            raise BadInputError(f"hsa_attend: {name} dtype {x.dtype} unsupported; use fp16, bf16 or fp32")
    if not (q.dtype == k.dtype == v.dtype):
        raise BadInputError(f"hsa_attend: q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device == indices.device == weights.device):
        raise BadInputError("hsa_attend: all tensors must be on one device")
    B, T, Hq, d = q.shape
    if k.shape != v.shape or k.shape[0] != B or k.shape[3] != d:
        raise BadInputError(f"hsa_attend: k {tuple(k.shape)} / v {tuple(v.shape)} do not match q {tuple(q.shape)}")
    Hkv = k.shape[2]
    if Hq % Hkv != 0:
        raise BadInputError(f"hsa_attend: query heads {Hq} must be a multiple of KV heads {Hkv}")
    if not 16 <= d <= 256 or d % 8 != 0:
        raise BadInputError(f"hsa_attend: head dim {d} unsupported; use a multiple of 8 in 16..256")
    S = int(chunk_size)
    if S < 16 or S % 16 != 0 or S > 256:
        raise BadInputError(f"hsa_attend: chunk_size {S} must be a multiple of 16 in 16..256")
    if k.shape[1] % S != 0:
        raise BadInputError(f"hsa_attend: K/V length {k.shape[1]} is not a multiple of chunk_size {S}")
    if indices.dim() != 4 or indices.shape[:3] != (B, T, Hkv):
        raise BadInputError(f"hsa_attend: indices must be [B, T, Hkv, K] = [{B}, {T}, {Hkv}, K], "
                            f"got {tuple(indices.shape)}")
    if indices.dtype not in (torch.int64, torch.int32):
        raise BadInputError(f"hsa_attend: indices must be int64 (or int32), got {indices.dtype}")
    if weights.shape != indices.shape:
        raise BadInputError(f"hsa_attend: weights {tuple(weights.shape)} must match indices {tuple(indices.shape)}")
    for name, x in (("q", q), ("k", k), ("v", v)):
        if x.stride(-1) != 1:
            raise BadInputError(f"hsa_attend: {name} must be contiguous in its last dim (call .contiguous())")
    return B, T, Hq, Hkv, d, indices.shape[-1], k.shape[1] // S


def default_scale(sm_scale, d: int) -> float:
    return float(sm_scale) if sm_scale is not None else 1.0 / math.sqrt(d)


def check_select_args(r, landmarks, topk, chunk_size):
    """Validate select_chunks' arguments; returns (B, T, Hkv, dr, C)."""
    if r.dim() != 4 or landmarks.dim() != 4:
        raise BadInputError(f"select_chunks: r and landmarks must be 4-D, got {tuple(r.shape)}, "
                            f"{tuple(landmarks.shape)}")
    B, T, H, dr = r.shape
    if landmarks.shape[0] != B or landmarks.shape[2] != H or landmarks.shape[3] != dr:
        raise BadInputError(f"select_chunks: landmarks {tuple(landmarks.shape)} do not match r {tuple(r.shape)} "
                            "([B, C, Hkv, dr] vs [B, T, Hkv, dr])")
    if r.dtype not in FLOAT_DTYPES or landmarks.dtype != r.dtype:
        raise BadInputError(f"select_chunks: r/landmarks must share a float dtype, got {r.dtype}, {landmarks.dtype}")
    if r.device != landmarks.device:
        raise BadInputError("select_chunks: r and landmarks must be on one device")
    if dr < 16:
        raise BadInputError(f"select_chunks: retrieval dim {dr} too small; need >= 16")
    if not 1 <= int(topk) <= 64:
        raise BadInputError(f"select_chunks: topk {topk} unsupported; use 1..64")
    if int(chunk_size) < 1:
        raise BadInputError(f"select_chunks: chunk_size {chunk_size} must be positive")
    if landmarks.shape[1] >= 2 ** 31:
        raise BadInputError("select_chunks: more than 2^31 chunks is unsupported (ids are packed in 32 bits)")
    for name, x in (("r", r), ("landmarks", landmarks)):
        if x.stride(-1) != 1:
            raise BadInputError(f"select_chunks: {name} must be contiguous in its last dim")
    return B, T, H, dr, landmarks.shape[1]
