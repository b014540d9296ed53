"""Fused token-to-chunk scoring and top-k selection in Triton (same signature as `reference.select_chunks`).

One program owns a tile of BLOCK_Q query tokens of one (batch, KV group) and a range of landmarks. It streams
landmark blocks (BLOCK_C chunks x dr) through a tensor-core GEMM and merges each block's scores into a running
top-k kept in registers, so the L x L/S score matrix never exists. Blocks past the last chunk visible to the tile
are never loaded (causality cuts the work in half on a prefill).

Running top-k: a score and its chunk id are packed into one int64 key (a monotone int32 image of the fp32 score
in the high word, the id in the low word), so one max-reduction yields both the best value and its argmax, and
ties break towards the more recent chunk. Merging a block repeats "take the block's best key if it beats the
row's current worst" until no row improves (at most K rounds, usually one or two).

When the query tiles alone cannot fill the GPU (a short prefill or decode against a long memory), landmarks are
split into ranges handled by separate programs, and a small torch top-k merges the partial results.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ramba.kernels.autotune import choose, run_fitting
from ramba.kernels.hsa._common import check_select_args, dot_precision, next_pow2
from ramba.kernels.testing import new_output

INT64_MIN = tl.constexpr(-(2 ** 63))       # empty/removed key (below every real key)
INT64_MAX = tl.constexpr(2 ** 63 - 1)      # padding slot past TOPK (never the worst, never replaced)
INT32_MIN = -(2 ** 31)


@triton.jit
def _pack_key(score, cid):
    """fp32 score + chunk id -> int64 key whose signed order is (score, id) lexicographic."""
    bits = score.to(tl.int32, bitcast=True)
    k32 = bits ^ ((bits >> 31) & 0x7FFFFFFF)          # flip magnitude bits of negatives: int order == float order
    return (k32.to(tl.int64) << 32) | cid.to(tl.int64)


@triton.jit
def _select_kernel(
    # pointers
    r_ptr, l_ptr, qoff_ptr, out_ptr, idx_ptr, score_ptr,
    # dims and scalars
    T, C, Hkv, chunk_size, q_offset, n_per_split, scale,
    # strides (r [B, T, Hkv, dr], landmarks [B, C, Hkv, dr], out keys [B*Hkv, NSPLIT, T, TOPK] contiguous,
    # final idx/score [B, T, Hkv, TOPK] contiguous)
    srb, srt, srh, slb, slc, slh,
    # meta
    DR: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_DR: tl.constexpr,
    KP: tl.constexpr, TOPK: tl.constexpr, QOFF_FROM_PTR: tl.constexpr, DOT_PREC: tl.constexpr,
    FINAL: tl.constexpr, MERGE_F32: tl.constexpr,
):
    pid_q = tl.program_id(0)
    pid_s = tl.program_id(1)
    pid_bh = tl.program_id(2)
    nsplit = tl.num_programs(1)
    b = (pid_bh // Hkv).to(tl.int64)
    h = (pid_bh % Hkv).to(tl.int64)
    if QOFF_FROM_PTR:
        qoff = tl.load(qoff_ptr).to(tl.int64)          # decode under CUDA graphs: position read at run time
    else:
        qoff = tl.zeros([], dtype=tl.int64) + q_offset
    rows = pid_q.to(tl.int64) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    row_ok = rows < T
    nvis = tl.where(row_ok, (qoff + rows) // chunk_size, 0)          # [BQ] chunks each query may see
    c_lo = pid_s.to(tl.int64) * n_per_split
    c_hi = tl.minimum(tl.minimum(c_lo + n_per_split, C), tl.max(nvis, 0))   # skip blocks nobody in the tile sees

    slots = tl.arange(0, KP)
    neg = tl.full([BLOCK_Q, KP], INT64_MIN, tl.int64)
    # distinct sentinels (so exactly one slot is "the worst"); padding slots past TOPK hold +max and never move
    run = tl.where(slots[None, :] < TOPK, neg + slots[None, :], tl.full([BLOCK_Q, KP], INT64_MAX, tl.int64))
    dk = tl.arange(0, BLOCK_DR)
    for c0 in range(c_lo, c_hi, BLOCK_C):
        cc = c0 + tl.arange(0, BLOCK_C)
        c_ok = cc < c_hi
        acc = tl.zeros([BLOCK_Q, BLOCK_C], dtype=tl.float32)
        for d0 in range(0, DR, BLOCK_DR):
            d_ok = (d0 + dk) < DR
            rt = tl.load(r_ptr + b * srb + rows[:, None] * srt + h * srh + (d0 + dk)[None, :],
                         mask=row_ok[:, None] & d_ok[None, :], other=0.0)          # [BQ, BDR]
            lt = tl.load(l_ptr + b * slb + cc[:, None] * slc + h * slh + (d0 + dk)[None, :],
                         mask=c_ok[:, None] & d_ok[None, :], other=0.0)            # [BC, BDR]
            acc = tl.dot(rt, tl.trans(lt), acc, input_precision=DOT_PREC)
        vis = (cc[None, :] < nvis[:, None]) & c_ok[None, :]
        worst = tl.min(run, 1)
        if MERGE_F32:
            # merge on the fp32 tile itself (max, then the largest id among equal maxima), packing only the
            # per-row winner: no [BQ, BC] int64 tile, so far fewer registers than the packed-key tile below
            sc = tl.where(vis, acc * scale, float("-inf"))                  # [BQ, BC]
            lid = tl.arange(0, BLOCK_C)
            bs = tl.max(sc, 1)
            bi = tl.max(tl.where(sc == bs[:, None], lid[None, :], -1), 1)
            best = tl.where(bs == float("-inf"), INT64_MIN, _pack_key(bs, c0 + bi))
            n_take = tl.sum((best > worst).to(tl.int32), 0)
            while n_take > 0:
                take = best > worst
                run = tl.where((run == worst[:, None]) & take[:, None], best[:, None], run)
                sc = tl.where(lid[None, :] == bi[:, None], float("-inf"), sc)
                bs = tl.max(sc, 1)
                bi = tl.max(tl.where(sc == bs[:, None], lid[None, :], -1), 1)
                best = tl.where(bs == float("-inf"), INT64_MIN, _pack_key(bs, c0 + bi))
                worst = tl.min(run, 1)
                n_take = tl.sum((best > worst).to(tl.int32), 0)
        else:
            key = tl.where(vis, _pack_key(acc * scale, cc[None, :]), INT64_MIN)
            best = tl.max(key, 1)
            n_take = tl.sum((best > worst).to(tl.int32), 0)
            while n_take > 0:
                take = best > worst
                run = tl.where((run == worst[:, None]) & take[:, None], best[:, None], run)
                key = tl.where(key == best[:, None], INT64_MIN, key)
                best = tl.max(key, 1)
                worst = tl.min(run, 1)
                n_take = tl.sum((best > worst).to(tl.int32), 0)
    out_mask = row_ok[:, None] & (slots[None, :] < TOPK)
    if FINAL:
        # one landmark range: finish here (recency order, unpacked), saving the host ~15 small torch launches
        k32 = (run >> 32).to(tl.int32)
        valid = (k32 != -2147483648) & (slots[None, :] < TOPK)
        bits = k32 ^ ((k32 >> 31) & 0x7FFFFFFF)
        cid = run & 0xFFFFFFFF
        # re-key by chunk id (high word) with the raw score bits below it; invalid -> -2^32, padding -> min
        key2 = tl.where(valid, (cid << 32) | (bits.to(tl.int64) & 0xFFFFFFFF), -4294967296)
        key2 = tl.where(slots[None, :] < TOPK, key2, INT64_MIN)
        if KP > 1:
            key2 = tl.sort(key2, dim=1, descending=True)
        out_id = key2 >> 32
        out_sc = (key2 & 0xFFFFFFFF).to(tl.int32).to(tl.float32, bitcast=True)
        out_sc = tl.where(out_id >= 0, out_sc, float("-inf"))
        fin_off = ((b * T + rows[:, None]) * Hkv + h) * TOPK + slots[None, :]
        tl.store(idx_ptr + fin_off, tl.where(out_id >= 0, out_id, -1), mask=out_mask)
        tl.store(score_ptr + fin_off, out_sc, mask=out_mask)
    else:
        out_off = ((pid_bh * nsplit + pid_s).to(tl.int64) * T + rows[:, None]) * TOPK + slots[None, :]
        tl.store(out_ptr + out_off, run, mask=out_mask)


def unpack_keys(keys: torch.Tensor):
    """int64 keys -> (chunk ids with -1 for empty slots, fp32 scores with -inf there)."""
    k32 = (keys >> 32).to(torch.int32)
    bits = k32 ^ ((k32 >> 31) & 0x7FFFFFFF)
    score = bits.view(torch.float32)
    valid = k32 != INT32_MIN                          # sentinels carry INT32_MIN in the high word
    ids = torch.where(valid, keys & 0xFFFFFFFF, torch.full_like(keys, -1))
    score = torch.where(valid, score, torch.full_like(score, float("-inf")))
    return ids, score


def num_splits(device: torch.device, programs: int, C: int, block_c: int, min_blocks: int = 4) -> int:
    """Landmark ranges per query tile: enough programs for ~2 waves on the GPU, >= min_blocks blocks each."""
    if device.type != "cuda" or C == 0:
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    want = math.ceil(2 * sms / max(programs, 1))
    most = max(1, math.ceil(C / (min_blocks * block_c)))
    return max(1, min(want, most))


def select_launch(r, landmarks, topk, chunk_size, q_offset=0, n_split=None):
    """Shared launcher for prefill and decode; q_offset may be an int or a 1-element int64 device tensor."""
    B, T, H, dr, C = check_select_args(r, landmarks, topk, chunk_size)
    K = int(topk)
    dev = r.device
    if C == 0 or T == 0 or B == 0:
        return (torch.full((B, T, H, K), -1, dtype=torch.int64, device=dev),
                torch.full((B, T, H, K), float("-inf"), dtype=torch.float32, device=dev))
    from_ptr = isinstance(q_offset, torch.Tensor)
    qoff_t = q_offset.reshape(-1)[:1].to(device=dev, dtype=torch.int64) if from_ptr else r   # r: unused dummy
    cfgs = choose("select", (dr, K, T), r.element_size(), dev)           # tuned config, or smaller ones that fit

    def launch(cfg):
        # the split into landmark ranges depends on the tile sizes, so outputs are sized per candidate
        n_q = triton.cdiv(T, cfg.block_q)
        ns = n_split if n_split is not None else num_splits(dev, n_q * B * H, C, cfg.block_c)
        per = triton.cdiv(triton.cdiv(C, ns), cfg.block_c) * cfg.block_c    # landmarks per range, whole blocks
        ns = triton.cdiv(C, per)
        final = ns == 1
        keys = new_output((B * H, ns, T, K), torch.int64, dev) if not final else r   # r: unused dummy
        ids = new_output((B, T, H, K), torch.int64, dev) if final else r
        score = new_output((B, T, H, K), torch.float32, dev) if final else r
        _select_kernel[(n_q, ns, B * H)](
            r, landmarks, qoff_t, keys, ids, score,
            T, C, H, int(chunk_size), 0 if from_ptr else int(q_offset), per, 1.0 / math.sqrt(dr),
            r.stride(0), r.stride(1), r.stride(2), landmarks.stride(0), landmarks.stride(1), landmarks.stride(2),
            DR=dr, BLOCK_Q=cfg.block_q, BLOCK_C=cfg.block_c, BLOCK_DR=cfg.block_dr, KP=next_pow2(K), TOPK=K,
            QOFF_FROM_PTR=from_ptr, DOT_PREC=dot_precision(r.dtype), FINAL=final, MERGE_F32=bool(cfg.merge_f32),
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
        return final, ns, keys, ids, score

    final, ns, keys, ids, score = run_fitting(("hsa_select", dr, K, T <= 16, r.dtype, dev, from_ptr), cfgs,
                                              launch, "select_chunks")
    if final:
        return ids, score
    # several landmark ranges: merge their partial top-k (small torch ops; graph-capturable, no host sync)
    keys = keys.permute(0, 2, 1, 3).reshape(B * H, T, ns * K).topk(K, dim=-1).values
    ids, score = unpack_keys(keys)
    ids, order = ids.sort(dim=-1, descending=True)    # recency order; -1 (invalid) sinks to the end
    score = score.gather(-1, order)
    ids = ids.reshape(B, H, T, K).permute(0, 2, 1, 3).contiguous()
    score = score.reshape(B, H, T, K).permute(0, 2, 1, 3).contiguous()
    return ids, score


def select_chunks(r: torch.Tensor, landmarks: torch.Tensor, topk: int, chunk_size: int, q_offset: int = 0):
    """Top-k visible chunks per query token and KV group, most recent first (Triton; see reference.select_chunks).

    r [B, T, Hkv, dr]; landmarks [B, C, Hkv, dr]; query t (position q_offset + t) sees chunk c iff
    q_offset + t >= (c + 1) * chunk_size. Returns indices [B, T, Hkv, K] int64 (-1 invalid) and scores fp32
    (-inf invalid). Example: idx, s = select_chunks(r, lmk, 8, 64)
    """
    return select_launch(r, landmarks, topk, chunk_size, q_offset)
