"""Retrieval (token-to-chunk scores, top-k per KV group) and the HSA layer (hsa-spec.md §1.3-1.5).

The selection indices carry no gradient; the retrieval projection, the landmarks and the score bias are
trained only through the fusion weights, i.e. by how useful each chunk's attention output turned out to be.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ramba.config import RambaConfig
from ramba.layers import RMSNorm, SwiGLU
from ramba.kernels.hsa.reference import hsa_attend as _ref_attend
from ramba.kernels.hsa.reference import topk_newest, visible_chunk_count

# RMSNorm eps of the retrieval and HSA pre-norms (the authors' value, so converted weights behave the same)
HSA_NORM_EPS = 1e-6
# Upper bound on score-matrix elements per block (queries x landmarks x groups x batch): 16M fp32 = 64 MiB.
MAX_SCORE_ELEMS = 1 << 24


def select_chunks_bounded(r: torch.Tensor, landmarks: torch.Tensor, topk: int, chunk_size: int,
                          q_offset: int = 0):
    """Same contract and results as ramba.kernels.hsa.reference.select_chunks, but blocked over queries AND
    landmarks with a running top-k, so memory stays bounded against millions of landmarks.

    r [B, T, Hkv, dr]; landmarks [B, C, Hkv, dr] -> indices [B, T, Hkv, K] int64 (descending, -1 invalid),
    scores [B, T, Hkv, K] fp32 (-inf invalid).
    """
    B, T, H, dr = r.shape
    C = landmarks.shape[1]
    dev = r.device
    out_idx = torch.full((B, T, H, topk), -1, dtype=torch.int64, device=dev)
    out_score = torch.full((B, T, H, topk), float("-inf"), dtype=torch.float32, device=dev)
    if C == 0 or T == 0:
        return out_idx, out_score
    k_eff = min(topk, C)
    scale = 1.0 / math.sqrt(dr)
    qb = max(1, min(T, 1024))
    cb = max(k_eff, MAX_SCORE_ELEMS // max(1, B * H * qb))
    blocks = []
    for t0 in range(0, T, qb):
        rb = r[:, t0:t0 + qb].float()                                            # [B, t, H, dr]
        t = rb.shape[1]
        pos = q_offset + t0 + torch.arange(t, device=dev, dtype=torch.int64)     # [t] int64 absolute
        n_vis = visible_chunk_count(pos, chunk_size)                              # [t]
        c_stop = min(C, (q_offset + t0 + t - 1) // chunk_size)                    # no later chunk is visible
        best_s = torch.full((B, t, H, 0), float("-inf"), device=dev)             # running top-k, ids ascending
        best_i = torch.zeros((B, t, H, 0), dtype=torch.int64, device=dev)
        for c0 in range(0, c_stop, cb):
            lm = landmarks[:, c0:min(c0 + cb, c_stop)].float()                    # [B, c, H, dr]
            ids = c0 + torch.arange(lm.shape[1], device=dev, dtype=torch.int64)   # [c]
            with torch.autocast(dev.type, enabled=False):                         # fp32 scores
                s = torch.einsum("bthd,bchd->bthc", rb, lm) * scale               # [B, t, H, c]
            s = s.masked_fill(~(ids[None, :] < n_vis[:, None])[None, :, None, :], float("-inf"))
            # earlier blocks hold smaller ids, so candidate ids ascend along the axis and topk_newest's
            # "later position wins a tie" is "newer chunk wins" (docs/contracts.md)
            cand_s = torch.cat([best_s, s], dim=-1)
            cand_i = torch.cat([best_i, ids.expand(B, t, H, -1)], dim=-1)
            k = min(k_eff, cand_s.shape[-1])
            pick = topk_newest(cand_s, k).flip(-1).clamp(min=0)                  # ascending positions
            best_s, best_i = cand_s.gather(-1, pick), cand_i.gather(-1, pick)
        valid = torch.isfinite(best_s)
        best_i = torch.where(valid, best_i, torch.full_like(best_i, -1))
        order = best_i.argsort(dim=-1, descending=True)                           # recency: newest chunk first
        blocks.append((t0, t, best_i.gather(-1, order), best_s.gather(-1, order)))
    for t0, t, bi, bs in blocks:
        out_idx[:, t0:t0 + t, :, :bi.shape[-1]] = bi
        out_score[:, t0:t0 + t, :, :bs.shape[-1]] = bs
    return out_idx, out_score


def hsa_attend_gathered(q, k, v, indices, weights, chunk_size: int, sm_n: float = 0.0, sm_scale=None):
    """ramba.kernels.hsa.reference.hsa_attend on only the chunks some query selected (same contract, same
    result): the reference converts and permutes the whole K/V memory per call, which would be O(memory) per
    decode step at millions of tokens; here the selected chunks are gathered first and re-indexed.
    """
    B, Tkv, Hkv, d = k.shape
    S = chunk_size
    C = Tkv // S
    valid = (indices >= 0) & (indices < C)                                        # other ids: invalid slots
    if Tkv == 0 or not bool(valid.any()):
        return torch.zeros_like(q)
    uniq = torch.unique(indices[valid])                                           # [n] sorted chunk ids
    local = torch.searchsorted(uniq, torch.where(valid, indices, 0))             # [B, T, Hkv, K]
    local = torch.where(valid, local, torch.full_like(local, -1))
    k_sel = k.view(B, C, S, Hkv, d).index_select(1, uniq).reshape(B, -1, Hkv, d)  # [B, n*S, Hkv, d]
    v_sel = v.view(B, C, S, Hkv, d).index_select(1, uniq).reshape(B, -1, Hkv, d)
    return _ref_attend(q, k_sel, v_sel, local, weights, S, sm_n=sm_n, sm_scale=sm_scale)


def select_chunks_noisy(r: torch.Tensor, landmarks: torch.Tensor, topk: int, chunk_size: int, q_offset: int,
                        noise: float) -> torch.Tensor:
    """Training-time exploration (training-notes item 3): top-k of score + noise * Gumbel over the visible
    chunks. Returns indices [B, T, Hkv, K] (recency order, -1 invalid); the weights still use clean scores.
    Dense over [B, T, Hkv, C]: meant for training rows (T*C small), not for long inference."""
    B, T, H, dr = r.shape
    C = landmarks.shape[1]
    out = torch.full((B, T, H, topk), -1, dtype=torch.int64, device=r.device)
    if C == 0:
        return out
    with torch.no_grad(), torch.autocast(r.device.type, enabled=False):
        s = torch.einsum("bthd,bchd->bthc", r.float(), landmarks.float()) / math.sqrt(dr)   # [B, T, H, C]
        pos = q_offset + torch.arange(T, device=r.device, dtype=torch.int64)
        vis = torch.arange(C, device=r.device)[None, :] < visible_chunk_count(pos, chunk_size)[:, None]  # [T, C]
        u = torch.rand(s.shape, device=s.device).clamp_(1e-20, 1.0)
        s = (s - noise * torch.log(-torch.log(u))).masked_fill(~vis[None, :, None, :], float("-inf"))
        k = min(topk, C)
        top_i = topk_newest(s, k)                                                 # ties: newer chunk
        top_s = s.gather(-1, top_i.clamp(min=0))
        top_i = torch.where(torch.isfinite(top_s) & (top_i >= 0), top_i, torch.full_like(top_i, -1))
        out[..., :k] = top_i.sort(dim=-1, descending=True).values
    return out


def rescore(r: torch.Tensor, landmarks: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Differentiable scores <r_t, l_c> / sqrt(dr) of the selected chunks, -inf on invalid (-1) slots.

    r [B, T, Hkv, dr]; landmarks [B, C, Hkv, dr]; indices [B, T, Hkv, K] -> [B, T, Hkv, K] fp32. Used in
    training so the gradient to W_r / landmarks never depends on whether the select op is differentiable.
    The gather goes through a flat [B*Hkv*C, dr] table so its backward stays O(C), not O(T*C).
    """
    B, T, H, dr = r.shape
    C = landmarks.shape[1]
    valid = (indices >= 0) & (indices < C)                                        # other ids: invalid slots
    if C == 0:
        return torch.full(indices.shape, float("-inf"), device=r.device)
    table = landmarks.float().permute(0, 2, 1, 3).reshape(B * H * C, dr)           # [B*H*C, dr]
    base = (torch.arange(B, device=r.device)[:, None] * H + torch.arange(H, device=r.device)[None, :]) * C
    flat = base[:, None, :, None] + torch.where(valid, indices, 0)               # [B, T, H, K] int64
    g = table[flat]                                                               # [B, T, H, K, dr]
    with torch.autocast(r.device.type, enabled=False):                            # scores stay fp32
        s = torch.einsum("bthd,bthkd->bthk", r.float(), g) / math.sqrt(dr)
    return s.masked_fill(~valid, float("-inf"))


def scores_for_indices(r: torch.Tensor, landmarks: torch.Tensor, indices: torch.Tensor, chunk_size: int,
                       q_offset: int = 0):
    """Forced selection (oracle control): scores of given chunk ids, invisible/-1 slots made invalid and the
    slots re-sorted most recent first. r [B, T, Hkv, dr]; indices [B, T, Hkv, K] -> (indices, scores)."""
    T = r.shape[1]
    C = landmarks.shape[1]
    pos = q_offset + torch.arange(T, device=r.device, dtype=torch.int64)
    n_vis = visible_chunk_count(pos, chunk_size)[None, :, None, None]
    idx = indices.to(device=r.device, dtype=torch.int64)
    valid = (idx >= 0) & (idx < n_vis) & (idx < C)
    idx = torch.where(valid, idx, torch.full_like(idx, -1))
    idx = idx.sort(dim=-1, descending=True).values                                # recency order
    return idx, rescore(r, landmarks, idx)


class Retrieval(nn.Module):
    """r_t = W_r RMSNorm(h_t), one retrieval head per KV group, plus a learnable per-group score bias."""

    def __init__(self, cfg: RambaConfig):
        super().__init__()
        self.cfg = cfg
        self.norm = RMSNorm(cfg.d_model, HSA_NORM_EPS)
        self.r_proj = nn.Linear(cfg.d_model, cfg.retrieval_dim, bias=False)
        # training-notes item 3: with stick-breaking a positive start keeps sigmoid(s) away from 0
        self.score_bias = nn.Parameter(torch.full((cfg.hsa_kv_heads,), float(cfg.score_bias)))

    def queries(self, h: torch.Tensor) -> torch.Tensor:
        B, T, _ = h.shape
        H = self.cfg.hsa_kv_heads
        return self.r_proj(self.norm(h)).view(B, T, H, self.cfg.retrieval_dim // H)   # [B, T, Hkv, dr]

    def biased(self, scores: torch.Tensor) -> torch.Tensor:
        # a per-group constant does not change the top-k, so it is added after selection; -inf stays -inf
        return scores + self.score_bias.float()[None, None, :, None]


class HSALayer(nn.Module):
    """x + W_O HSA(W_Q RMSNorm(x)) over the shared chunk memory; `swa-hsa` adds a SwiGLU MLP sublayer."""

    def __init__(self, cfg: RambaConfig, with_mlp: bool = False):
        super().__init__()
        self.cfg = cfg
        self.norm = RMSNorm(cfg.d_model, HSA_NORM_EPS)
        self.q_proj = nn.Linear(cfg.d_model, cfg.hsa_heads * cfg.hsa_head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.hsa_heads * cfg.hsa_head_dim, cfg.d_model, bias=False)
        if with_mlp:
            self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
            self.mlp = SwiGLU(cfg.d_model, cfg.mlp_width)
        else:
            self.mlp = None

    def forward(self, x, mem_k, mem_v, indices, weights, attend) -> torch.Tensor:
        """x [B, T, d]; mem_k/mem_v [B, C*S, Hkv, dh]; indices/weights [B, T, Hkv, K]; attend = ops.hsa_attend."""
        B, T, _ = x.shape
        q = self.q_proj(self.norm(x)).view(B, T, self.cfg.hsa_heads, self.cfg.hsa_head_dim)
        if mem_k.shape[1] == 0:
            o = torch.zeros_like(q)                                               # no complete chunk yet
        else:
            # one dtype for the kernels (autocast may give bf16 q against an fp32 state memory)
            o = attend(q.to(mem_k.dtype), mem_k, mem_v.to(mem_k.dtype), indices, weights, self.cfg.chunk_size,
                       sm_n=self.cfg.sm_n)
        x = x + self.o_proj(o.reshape(B, T, -1).to(x.dtype))
        if self.mlp is not None:
            x = x + self.mlp(self.mlp_norm(x))
        return x
