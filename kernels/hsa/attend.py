"""HSA attention in Triton: forward, backward (dq/dw per query, dk/dv per chunk) and the autograd Function.

Same math and signature as `reference.hsa_attend` (docs/contracts.md). Layout of the work:
  * forward and dq/dw: one program per (block of query tokens, batch, KV head). Its tile rows are the G query
    heads of the KV group (hardware alignment: the GQA heads fill the tensor-core M dimension); when G < 16
    several tokens share a program and the score tile is block-diagonal (a row only sees its own token's chunk).
    Per slot k: gather the chunk's S keys, one-shot softmax (no online rescaling: chunks combine linearly by w),
    o += w_k * softmax(q K^T) V. The log-sum-exp (log2 units) is kept per (token, head, slot).
  * dk/dv: the list of (query, slot) entries that selected each chunk, built by sorting the flat indices (CSR),
    one program per segment of a chunk's list, so the cost grows linearly in L (no L x L/S mask).
Invalid slots (-1, or an id >= C) contribute nothing and get no gradient; duplicate slots each count with their
own weight, as in the reference.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ramba.kernels.autotune import choose, run_fitting
from ramba.kernels.hsa._common import check_attend_args, default_scale, dot_precision, next_pow2
from ramba.kernels.testing import new_output

LOG2E = 1.4426950408889634


@triton.jit
def _hsa_fwd_kernel(
    # pointers
    q_ptr, k_ptr, v_ptr, idx_ptr, w_ptr, o_ptr, lse_ptr,
    # dims and scalars
    T, C, Hkv, sm_n, qk_scale,
    # strides (q/o/lse [B, T, Hq, *], k/v [B, Tkv, Hkv, d], idx/w [B, T, Hkv, K]; last dims contiguous)
    sqb, sqt, sqh, skb, skt, skh, svb, svt, svh, sib, sit, sih, swb, swt, swh, sob, sot, soh, slb, slt, slh,
    # meta
    G: tl.constexpr, G_ROWS: tl.constexpr, BLOCK_T: tl.constexpr, S: tl.constexpr, S_PAD: tl.constexpr,
    D: tl.constexpr, D_PAD: tl.constexpr, KSLOTS: tl.constexpr, SPI: tl.constexpr, HAS_SM_N: tl.constexpr,
    STORE_LSE: tl.constexpr, DOT_PREC: tl.constexpr, UNROLL: tl.constexpr,
):
    # Tile: M rows = BLOCK_T tokens x G_ROWS heads; N columns = NG groups of S_PAD keys, one group per
    # (token, slot of this step): SPI slots are gathered per step, so their chunk loads are in flight together.
    M: tl.constexpr = BLOCK_T * G_ROWS
    NG: tl.constexpr = BLOCK_T * SPI
    N: tl.constexpr = NG * S_PAD
    pid_bh = tl.program_id(1)
    b = (pid_bh // Hkv).to(tl.int64)
    h = (pid_bh % Hkv).to(tl.int64)
    t0 = tl.program_id(0).to(tl.int64) * BLOCK_T

    rows = tl.arange(0, M)
    row_tl = rows // G_ROWS                           # [M] token of each row, local to the tile
    row_t = t0 + row_tl
    row_g = rows % G_ROWS
    row_ok = (row_t < T) & (row_g < G)
    row_head = h * G + row_g
    cols = tl.arange(0, N)
    col_grp = cols // S_PAD                           # [N] column group
    col_t = t0 + col_grp // SPI                       # token whose chunk fills this column
    col_sub = col_grp % SPI                           # which of the step's slots
    col_j = cols % S_PAD                              # key position inside the chunk
    same_tok = row_tl[:, None] == (col_grp // SPI)[None, :]            # [M, N] block-diagonal
    grp = tl.arange(0, NG)
    own = row_tl[:, None] == (grp // SPI)[None, :]                      # [M, NG] groups of the row's token
    dd = tl.arange(0, D_PAD)
    d_ok = dd < D

    q = tl.load(q_ptr + b * sqb + row_t[:, None] * sqt + row_head[:, None] * sqh + dd[None, :],
                mask=row_ok[:, None] & d_ok[None, :], other=0.0)          # [M, D]
    acc = tl.zeros([M, D_PAD], dtype=tl.float32)
    for k0 in tl.range(0, KSLOTS, SPI, loop_unroll_factor=UNROLL):
        col_k = k0 + col_sub
        cidx = tl.load(idx_ptr + b * sib + col_t * sit + h * sih + col_k, mask=(col_t < T) & (col_k < KSLOTS),
                       other=-1).to(tl.int64)
        col_ok = (cidx >= 0) & (cidx < C) & (col_j < S)
        krow = cidx * S + col_j                                            # [N] int64 key row in K/V
        kt = tl.load(k_ptr + b * skb + krow[:, None] * skt + h * skh + dd[None, :],
                     mask=col_ok[:, None] & d_ok[None, :], other=0.0)     # [N, D]
        vt = tl.load(v_ptr + b * svb + krow[:, None] * svt + h * svh + dd[None, :],
                     mask=col_ok[:, None] & d_ok[None, :], other=0.0)     # [N, D]
        s = tl.dot(q, tl.trans(kt), input_precision=DOT_PREC) * qk_scale  # [M, N] log2 units
        s = tl.where(same_tok & col_ok[None, :], s, float("-inf"))
        s3 = tl.reshape(s, (M, NG, S_PAD))
        m = tl.max(s3, 2)                                                  # [M, NG] per-chunk max
        if HAS_SM_N:
            m = tl.maximum(m, 0.0)                    # keeps sm_n * exp2(-m) finite; softmax unchanged
        m = tl.where(m == float("-inf"), 0.0, m)      # invalid slot: every score masked
        p3 = tl.exp2(s3 - m[:, :, None])
        l = tl.sum(p3, 2)                                                  # [M, NG]
        if HAS_SM_N:
            l += sm_n * tl.exp2(-m)
        grp_k = k0 + grp % SPI
        rmask = row_ok[:, None] & own & (grp_k < KSLOTS)[None, :]
        roff = b * sib + row_t[:, None] * sit + h * sih + grp_k[None, :]
        ridx = tl.load(idx_ptr + roff, mask=rmask, other=-1)               # [M, NG] the row's own slots
        rw = tl.load(w_ptr + b * swb + row_t[:, None] * swt + h * swh + grp_k[None, :], mask=rmask, other=0.0)
        rvalid = rmask & (ridx >= 0) & (ridx < C)
        l_safe = tl.where(l > 0, l, 1.0)
        coef = tl.where(rvalid, rw / l_safe, 0.0)     # w_k / softmax denominator, per (row, chunk)
        p = tl.reshape(p3 * coef[:, :, None], (M, N))
        acc = tl.dot(p.to(vt.dtype), vt, acc, input_precision=DOT_PREC)
        if STORE_LSE:
            lse = tl.where(rvalid, m + tl.log2(l_safe), 0.0)
            tl.store(lse_ptr + b * slb + row_t[:, None] * slt + row_head[:, None] * slh + grp_k[None, :], lse,
                     mask=rmask)
    tl.store(o_ptr + b * sob + row_t[:, None] * sot + row_head[:, None] * soh + dd[None, :],
             acc.to(o_ptr.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])


@triton.jit
def _hsa_bwd_dq_kernel(
    # pointers
    q_ptr, k_ptr, v_ptr, idx_ptr, w_ptr, do_ptr, lse_ptr, dq_ptr, delta_ptr, dw_ptr,
    # dims and scalars
    T, C, Hkv, qk_scale, sm_scale,
    # strides (do/dq share q's layout, delta shares lse's, dw shares w's)
    sqb, sqt, sqh, skb, skt, skh, svb, svt, svh, sib, sit, sih, swb, swt, swh, slb, slt, slh,
    # meta
    G: tl.constexpr, G_ROWS: tl.constexpr, BLOCK_T: tl.constexpr, S: tl.constexpr, S_PAD: tl.constexpr,
    D: tl.constexpr, D_PAD: tl.constexpr, KSLOTS: tl.constexpr, DOT_PREC: tl.constexpr, UNROLL: tl.constexpr,
):
    M: tl.constexpr = BLOCK_T * G_ROWS
    N: tl.constexpr = BLOCK_T * S_PAD
    pid_bh = tl.program_id(1)
    b = (pid_bh // Hkv).to(tl.int64)
    h = (pid_bh % Hkv).to(tl.int64)
    t0 = tl.program_id(0).to(tl.int64) * BLOCK_T

    rows = tl.arange(0, M)
    row_t = t0 + rows // G_ROWS
    row_g = rows % G_ROWS
    row_ok = (row_t < T) & (row_g < G)
    row_head = h * G + row_g
    cols = tl.arange(0, N)
    col_t = t0 + cols // S_PAD
    col_j = cols % S_PAD
    same_tok = (rows // G_ROWS)[:, None] == (cols // S_PAD)[None, :]
    dd = tl.arange(0, D_PAD)
    d_ok = dd < D
    toks = t0 + tl.arange(0, BLOCK_T)

    qd_off = b * sqb + row_t[:, None] * sqt + row_head[:, None] * sqh + dd[None, :]
    qd_mask = row_ok[:, None] & d_ok[None, :]
    q = tl.load(q_ptr + qd_off, mask=qd_mask, other=0.0)       # [M, D]
    do = tl.load(do_ptr + qd_off, mask=qd_mask, other=0.0)     # [M, D]
    dq = tl.zeros([M, D_PAD], dtype=tl.float32)
    for kk in tl.range(0, KSLOTS, loop_unroll_factor=UNROLL):
        cidx = tl.load(idx_ptr + b * sib + col_t * sit + h * sih + kk, mask=col_t < T, other=-1).to(tl.int64)
        col_ok = (cidx >= 0) & (cidx < C) & (col_j < S)
        krow = cidx * S + col_j
        kt = tl.load(k_ptr + b * skb + krow[:, None] * skt + h * skh + dd[None, :],
                     mask=col_ok[:, None] & d_ok[None, :], other=0.0)
        vt = tl.load(v_ptr + b * svb + krow[:, None] * svt + h * svh + dd[None, :],
                     mask=col_ok[:, None] & d_ok[None, :], other=0.0)
        ridx = tl.load(idx_ptr + b * sib + row_t * sit + h * sih + kk, mask=row_ok, other=-1)
        rw = tl.load(w_ptr + b * swb + row_t * swt + h * swh + kk, mask=row_ok, other=0.0)
        rvalid = row_ok & (ridx >= 0) & (ridx < C)
        lse_off = b * slb + row_t * slt + row_head * slh + kk
        lse = tl.load(lse_ptr + lse_off, mask=row_ok, other=0.0)
        s = tl.dot(q, tl.trans(kt), input_precision=DOT_PREC) * qk_scale   # [M, N]
        keep = same_tok & col_ok[None, :] & rvalid[:, None]
        p = tl.where(keep, tl.exp2(s - lse[:, None]), 0.0)                  # per-chunk softmax, recomputed
        dpv = tl.dot(do, tl.trans(vt), input_precision=DOT_PREC)            # [M, N] = dO . V_j
        delta = tl.sum(p * dpv, 1)                                          # [M] = <o_k, dO> = dL/dw_k per head
        ds = p * (dpv - delta[:, None]) * rw[:, None]
        dq = tl.dot(ds.to(kt.dtype), kt, dq, input_precision=DOT_PREC)
        tl.store(delta_ptr + lse_off, delta, mask=row_ok)
        # dw_k = sum over the G heads of the token (rows of one token are contiguous in the tile)
        dw_t = tl.sum(tl.reshape(tl.where(rvalid, delta, 0.0), (BLOCK_T, G_ROWS)), 1)   # [BLOCK_T]
        tl.store(dw_ptr + b * swb + toks * swt + h * swh + kk, dw_t, mask=toks < T)
    tl.store(dq_ptr + qd_off, (dq * sm_scale).to(dq_ptr.dtype.element_ty), mask=qd_mask)


@triton.jit
def _hsa_bwd_dkdv_kernel(
    # pointers
    q_ptr, k_ptr, v_ptr, w_ptr, do_ptr, lse_ptr, delta_ptr, perm_ptr, offs_ptr, seg_key_ptr, seg_first_ptr,
    dk_ptr, dv_ptr,
    # dims and scalars
    T, C, Hkv, qk_scale, sm_scale,
    # strides (dk/dv fp32 buffers share k's layout contiguously: [B, Tkv, Hkv, d])
    sqb, sqt, sqh, skb, skt, skh, svb, svt, svh, swb, swt, swh, slb, slt, slh, sdb, sdt, sdh,
    # meta
    G: tl.constexpr, G_ROWS: tl.constexpr, BLOCK_E: tl.constexpr, S: tl.constexpr, S_PAD: tl.constexpr,
    D: tl.constexpr, D_PAD: tl.constexpr, KSLOTS: tl.constexpr, SEG: tl.constexpr, DOT_PREC: tl.constexpr,
):
    R: tl.constexpr = BLOCK_E * G_ROWS
    sid = tl.program_id(0)
    key = tl.load(seg_key_ptr + sid)                  # (b * Hkv + h) * C + chunk; -1 past the last segment
    live = key >= 0
    key = tl.maximum(key, 0)
    first = tl.load(seg_first_ptr + key)
    start = tl.load(offs_ptr + key) + (sid - first) * SEG
    end = tl.minimum(start + SEG, tl.load(offs_ptr + key + 1))
    end = tl.where(live, end, start)
    c = key % C
    bh = key // C
    b = bh // Hkv
    h = bh % Hkv

    jj = tl.arange(0, S_PAD)
    dd = tl.arange(0, D_PAD)
    kv_mask = (jj < S)[:, None] & (dd < D)[None, :]
    krow = c * S + jj
    kt = tl.load(k_ptr + b * skb + krow[:, None] * skt + h * skh + dd[None, :], mask=kv_mask, other=0.0)
    vt = tl.load(v_ptr + b * svb + krow[:, None] * svt + h * svh + dd[None, :], mask=kv_mask, other=0.0)
    dk = tl.zeros([S_PAD, D_PAD], dtype=tl.float32)
    dv = tl.zeros([S_PAD, D_PAD], dtype=tl.float32)
    rows = tl.arange(0, R)
    r_e = rows // G_ROWS
    r_g = rows % G_ROWS
    head = h * G + r_g
    for e0 in range(start, end, BLOCK_E):
        e = e0 + r_e
        e_ok = (e < end) & (r_g < G)
        flat = tl.load(perm_ptr + e, mask=e_ok, other=0)   # position in the contiguous [B, T, Hkv, K] indices
        kk = flat % KSLOTS
        t = (flat // (KSLOTS * Hkv)) % T
        qd_off = b * sqb + t[:, None] * sqt + head[:, None] * sqh + dd[None, :]
        qd_mask = e_ok[:, None] & (dd < D)[None, :]
        qr = tl.load(q_ptr + qd_off, mask=qd_mask, other=0.0)        # [R, D] gathered query rows
        dor = tl.load(do_ptr + qd_off, mask=qd_mask, other=0.0)
        lse_off = b * slb + t * slt + head * slh + kk
        lse = tl.load(lse_ptr + lse_off, mask=e_ok, other=0.0)
        delta = tl.load(delta_ptr + lse_off, mask=e_ok, other=0.0)
        rw = tl.load(w_ptr + b * swb + t * swt + h * swh + kk, mask=e_ok, other=0.0)
        s = tl.dot(qr, tl.trans(kt), input_precision=DOT_PREC) * qk_scale       # [R, S]
        p = tl.where(e_ok[:, None] & (jj < S)[None, :], tl.exp2(s - lse[:, None]), 0.0)
        pw = p * rw[:, None]
        dv = tl.dot(tl.trans(pw.to(dor.dtype)), dor, dv, input_precision=DOT_PREC)   # [S, D]
        dp = tl.dot(dor, tl.trans(vt), input_precision=DOT_PREC)                   # [R, S]
        ds = pw * (dp - delta[:, None])
        dk = tl.dot(tl.trans(ds.to(qr.dtype)), qr, dk, input_precision=DOT_PREC)   # [S, D]
    out_off = b * sdb + krow[:, None] * sdt + h * sdh + dd[None, :]
    # a hot chunk's list spans several programs: partial sums meet in fp32 buffers
    tl.atomic_add(dk_ptr + out_off, dk * sm_scale, mask=kv_mask & live)
    tl.atomic_add(dv_ptr + out_off, dv, mask=kv_mask & live)


def _strides(x: torch.Tensor):
    return x.stride(0), x.stride(1), x.stride(2)


def hsa_forward(q, k, v, indices, weights, chunk_size, sm_n=0.0, sm_scale=None, store_lse=True):
    """Launch the forward kernel; returns (o [B, T, Hq, d] in q's dtype, lse [B, T, Hq, K] fp32 log2 or None)."""
    B, T, Hq, Hkv, d, K, C = check_attend_args(q, k, v, indices, weights, chunk_size)
    G = Hq // Hkv
    S = int(chunk_size)
    scale = default_scale(sm_scale, d)
    idx = indices.contiguous()
    w = weights.float().contiguous()
    o = new_output((B, T, Hq, d), q.dtype, q.device)
    lse = new_output((B, T, Hq, K), torch.float32, q.device) if store_lse else o
    if T == 0 or B == 0 or C == 0:            # no chunk memory yet: every slot is invalid, o = 0
        o.zero_()
        if store_lse:
            lse.zero_()
        return o, (lse if store_lse else None)
    cfgs = choose("fwd", (G, S, d), q.element_size(), q.device)        # tuned config, or smaller ones that fit

    def launch(cfg):
        _hsa_fwd_kernel[(triton.cdiv(T, cfg.block_t), B * Hkv)](
            q, k, v, idx, w, o, lse,
            T, C, Hkv, float(sm_n), scale * LOG2E,
            *_strides(q), *_strides(k), *_strides(v), *_strides(idx), *_strides(w), *_strides(o),
            *(_strides(lse) if store_lse else (0, 0, 0)),
            G=G, G_ROWS=cfg.g_rows, BLOCK_T=cfg.block_t, S=S, S_PAD=next_pow2(S), D=d, D_PAD=next_pow2(d),
            KSLOTS=K, SPI=cfg.spi, HAS_SM_N=bool(sm_n), STORE_LSE=store_lse, DOT_PREC=dot_precision(q.dtype),
            UNROLL=cfg.unroll,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )

    run_fitting(("hsa_fwd", G, S, d, K, q.dtype, q.device, bool(sm_n), store_lse), cfgs, launch, "hsa_attend")
    return o, (lse if store_lse else None)


def build_chunk_lists(indices: torch.Tensor, num_chunks: int, seg: int):
    """CSR of (query, slot) entries per (batch, KV head, chunk), split into segments of <= seg entries.

    Returns perm (flat positions into the contiguous indices, grouped by chunk), offsets [NKEYS + 1], seg_key
    (key of each segment program, -1 for the spare tail of the launch grid) and seg_first (first segment of each
    key). No host synchronisation: the grid is an upper bound on the number of segments.
    """
    B, T, Hkv, K = indices.shape
    dev = indices.device
    nkeys = B * Hkv * num_chunks
    flat = indices.reshape(-1).to(torch.int64)
    n = flat.numel()
    pos = torch.arange(n, device=dev, dtype=torch.int64)
    bh = (pos // (T * Hkv * K)) * Hkv + (pos // K) % Hkv
    valid = (flat >= 0) & (flat < num_chunks)
    key = torch.where(valid, bh * num_chunks + flat, torch.full_like(flat, nkeys))   # invalid -> sentinel key
    perm = torch.argsort(key)
    counts = torch.bincount(key, minlength=nkeys + 1)[:nkeys]
    offsets = torch.zeros(nkeys + 1, dtype=torch.int64, device=dev)
    torch.cumsum(counts, 0, out=offsets[1:])
    nseg = (counts + seg - 1) // seg
    seg_incl = torch.cumsum(nseg, 0)
    seg_first = seg_incl - nseg
    max_segs = min(nkeys, n) + n // seg + 1           # >= sum(ceil(count / seg))
    sid = torch.arange(max_segs, device=dev, dtype=torch.int64)
    seg_key = torch.searchsorted(seg_incl, sid, right=True)
    seg_key = torch.where(sid < seg_incl[-1], seg_key, torch.full_like(seg_key, -1))
    return perm, offsets, seg_key, seg_first


def hsa_backward(do, q, k, v, indices, weights, lse, chunk_size, sm_scale=None):
    """Gradients (dq, dk, dv, dw) of hsa_attend; dw is fp32 [B, T, Hkv, K], zero on invalid slots."""
    B, T, Hq, Hkv, d, K, C = check_attend_args(q, k, v, indices, weights, chunk_size)
    G = Hq // Hkv
    S = int(chunk_size)
    scale = default_scale(sm_scale, d)
    idx = indices.contiguous()
    w = weights.float().contiguous()
    q, do = q.contiguous(), do.contiguous()          # dq and dO are addressed with q's strides
    dq = new_output(q.shape, q.dtype, q.device)
    delta = new_output((B, T, Hq, K), torch.float32, q.device)
    dw = new_output((B, T, Hkv, K), torch.float32, q.device)
    dk32 = torch.zeros(k.shape, dtype=torch.float32, device=k.device)
    dv32 = torch.zeros(v.shape, dtype=torch.float32, device=v.device)
    if T == 0 or B == 0 or C == 0:
        return dq.zero_(), dk32.to(k.dtype), dv32.to(v.dtype), dw.zero_()
    prec = dot_precision(q.dtype)
    cfgs = choose("dq", (G, S, d), q.element_size(), q.device)

    def launch_dq(cfg):
        _hsa_bwd_dq_kernel[(triton.cdiv(T, cfg.block_t), B * Hkv)](
            q, k, v, idx, w, do, lse, dq, delta, dw,
            T, C, Hkv, scale * LOG2E, scale,
            *_strides(q), *_strides(k), *_strides(v), *_strides(idx), *_strides(w), *_strides(lse),
            G=G, G_ROWS=cfg.g_rows, BLOCK_T=cfg.block_t, S=S, S_PAD=next_pow2(S), D=d, D_PAD=next_pow2(d),
            KSLOTS=K, DOT_PREC=prec, UNROLL=cfg.unroll, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )

    run_fitting(("hsa_dq", G, S, d, K, q.dtype, q.device), cfgs, launch_dq, "hsa_attend backward (dq)")
    kcfgs = choose("dkdv", (G, S, d), q.element_size(), q.device)
    perm, offsets, seg_key, seg_first = build_chunk_lists(idx, C, kcfgs[0].seg)   # seg is the same in all

    def launch_dkdv(kcfg):
        _hsa_bwd_dkdv_kernel[(seg_key.numel(),)](
            q, k, v, w, do, lse, delta, perm, offsets, seg_key, seg_first, dk32, dv32,
            T, C, Hkv, scale * LOG2E, scale,
            *_strides(q), *_strides(k), *_strides(v), *_strides(w), *_strides(lse), *_strides(dk32),
            G=G, G_ROWS=next_pow2(G), BLOCK_E=kcfg.block_e, S=S, S_PAD=next_pow2(S), D=d, D_PAD=next_pow2(d),
            KSLOTS=K, SEG=kcfg.seg, DOT_PREC=prec, num_warps=kcfg.num_warps, num_stages=kcfg.num_stages,
        )

    run_fitting(("hsa_dkdv", G, S, d, K, q.dtype, q.device), kcfgs, launch_dkdv, "hsa_attend backward (dk/dv)")
    return dq, dk32.to(k.dtype), dv32.to(v.dtype), dw


class HSAAttendFunction(torch.autograd.Function):
    """Autograd wrapper: forward keeps the per-(token, head, slot) log-sum-exp, backward recomputes p from it."""

    @staticmethod
    def forward(ctx, q, k, v, indices, weights, chunk_size, sm_n, sm_scale):
        o, lse = hsa_forward(q, k, v, indices, weights, chunk_size, sm_n, sm_scale, store_lse=True)
        ctx.save_for_backward(q, k, v, indices, weights, lse)
        ctx.chunk_size, ctx.sm_scale = chunk_size, sm_scale
        ctx.weights_dtype = weights.dtype
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, indices, weights, lse = ctx.saved_tensors
        dq, dk, dv, dw = hsa_backward(do, q, k, v, indices, weights, lse, ctx.chunk_size, ctx.sm_scale)
        return dq, dk, dv, None, dw.to(ctx.weights_dtype), None, None, None


def hsa_attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor,
               chunk_size: int, sm_n: float = 0.0, sm_scale: float | None = None) -> torch.Tensor:
    """Sparse chunk attention (Triton); same arguments and result as `reference.hsa_attend`, differentiable in
    q, k, v and weights.

    q [B, T, Hq, d]; k, v [B, C*S, Hkv, d]; indices [B, T, Hkv, K] int64 (-1 invalid); weights [B, T, Hkv, K].
    Returns o [B, T, Hq, d] in q's dtype. Example:
        o = hsa_attend(q, k, v, idx, w, chunk_size=64)       # o.sum().backward() fills q/k/v/w .grad
    """
    if torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v, weights)):
        return HSAAttendFunction.apply(q, k, v, indices, weights, chunk_size, sm_n, sm_scale)
    return hsa_forward(q, k, v, indices, weights, chunk_size, sm_n, sm_scale, store_lse=False)[0]
