"""Plain-PyTorch reference for Hierarchical Sparse Attention (HSA): the oracle for the Triton kernels.

The method (hsa-spec.md §1.3-1.5), in three steps:
  1. select_chunks: every query token scores every *complete, past* chunk by <r_t, landmark_c> / sqrt(dr)
     and keeps the top-K, ordered most recent chunk first.
  2. chunk_weights: the K scores become fusion weights (stick-breaking by default, or softmax), in fp32.
  3. hsa_attend: attention of the token over each selected chunk's S keys, with its own softmax per chunk,
     and the K per-chunk outputs summed with the fusion weights.

All functions are differentiable where the method is (no gradient flows into indices). Work is blocked over
query tokens so memory stays bounded on long prefills.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Query tokens processed per block: bounds the [block, C] score and [block, K, S, d] gather tensors.
QUERY_BLOCK = 1024


def visible_chunk_count(positions: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Number of complete chunks a query at absolute `positions` may see: chunk c iff pos >= (c + 1) * S."""
    return torch.div(positions, chunk_size, rounding_mode="floor")


def topk_newest(s: torch.Tensor, k: int) -> torch.Tensor:
    """Positions of the k largest entries of s [..., n] along the last axis, an exact tie going to the LATER
    position (chunk ids grow along the axis, so the newer chunk wins: docs/contracts.md, "Ties and invalid
    ids"); torch.topk alone leaves the choice among equal values unspecified. Returns [..., k] int64 in
    descending position order; -1 only where a row holds NaN (never on finite or infinite scores)."""
    kth = s.topk(k, dim=-1).values[..., -1:]                            # [..., 1] k-th largest value
    above = s > kth
    tied = s == kth
    need = k - above.sum(-1, keepdim=True)                              # tied entries still to take
    cum = tied.cumsum(-1, dtype=torch.int32)                            # ties at or before each position
    later = cum[..., -1:] - cum + tied                                  # ties at or after each position
    take = above | (tied & (later <= need))                             # exactly k per row
    pos = torch.arange(s.shape[-1], device=s.device, dtype=torch.int32).expand_as(s)   # int32: half the memory
    return torch.where(take, pos, -1).topk(k, dim=-1).values.long()


def select_chunks(r: torch.Tensor, landmarks: torch.Tensor, topk: int, chunk_size: int, q_offset: int = 0):
    """Top-k visible chunks per query token and KV group, most recent first.

    r [B, T, Hkv, dr]; landmarks [B, C, Hkv, dr]; queries sit at absolute positions q_offset .. q_offset + T - 1.
    Returns indices [B, T, Hkv, K] int64 (descending chunk id, -1 = invalid) and scores [B, T, Hkv, K] fp32
    (-inf on invalid slots). K == topk always; slots beyond the number of visible chunks are invalid.
    Exact ties go to the newer chunk (larger id), as in the Triton kernel.
    """
    B, T, H, dr = r.shape
    C = landmarks.shape[1]
    scale = 1.0 / math.sqrt(dr)
    out_idx = torch.full((B, T, H, topk), -1, dtype=torch.int64, device=r.device)
    out_score = torch.full((B, T, H, topk), float("-inf"), dtype=torch.float32, device=r.device)
    if C == 0:
        return out_idx, out_score
    k_eff = min(topk, C)
    lmk = landmarks.float()
    chunk_ids = torch.arange(C, device=r.device)
    for t0 in range(0, T, QUERY_BLOCK):
        rb = r[:, t0:t0 + QUERY_BLOCK].float()                                   # [B, t, H, dr]
        pos = q_offset + t0 + torch.arange(rb.shape[1], device=r.device)         # [t]
        visible = chunk_ids[None, :] < visible_chunk_count(pos, chunk_size)[:, None]  # [t, C]
        s = torch.einsum("bthd,bchd->bthc", rb, lmk) * scale                    # [B, t, H, C]
        s = s.masked_fill(~visible[None, :, None, :], float("-inf"))
        top_i = topk_newest(s, k_eff)                                             # [B, t, H, k]
        top_s = s.gather(-1, top_i.clamp(min=0))
        valid = torch.isfinite(top_s) & (top_i >= 0)
        # Recency order: sort the selected chunk ids descending; invalid slots (-1) sink to the end.
        top_i = torch.where(valid, top_i, torch.full_like(top_i, -1))
        order = top_i.argsort(dim=-1, descending=True)
        top_i = top_i.gather(-1, order)
        top_s = top_s.gather(-1, order)
        out_idx[:, t0:t0 + rb.shape[1], :, :k_eff] = top_i
        out_score[:, t0:t0 + rb.shape[1], :, :k_eff] = top_s
    return out_idx, out_score


def chunk_weights(scores: torch.Tensor, fusion: str = "stick_breaking") -> torch.Tensor:
    """Fusion weights from recency-ordered scores [..., K] (fp32, -inf = invalid) -> [..., K] fp32.

    stick_breaking: w_k = sigmoid(s_k) * prod_{j<k} (1 - sigmoid(s_j)); sums to <= 1, no renormalisation.
    softmax: softmax over the valid slots; a row with no valid slot gets all zeros.
    """
    s = scores.float()
    valid = torch.isfinite(s)
    if fusion == "stick_breaking":
        s0 = torch.where(valid, s, torch.zeros_like(s))
        log_sig = F.logsigmoid(s0)
        log_one_minus = F.logsigmoid(-s0)                  # log(1 - sigmoid(s))
        log_one_minus = torch.where(valid, log_one_minus, torch.zeros_like(s))
        # exclusive cumulative sum: sum over j < k
        prefix = torch.cumsum(log_one_minus, dim=-1) - log_one_minus
        w = torch.exp(log_sig + prefix)
        return torch.where(valid, w, torch.zeros_like(w))
    if fusion == "softmax":
        s0 = torch.where(valid, s, torch.full_like(s, -1e30))
        w = torch.softmax(s0, dim=-1)
        return torch.where(valid, w, torch.zeros_like(w))
    raise ValueError(f"unknown fusion {fusion!r}: use 'stick_breaking' or 'softmax'")


def hsa_attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor,
               chunk_size: int, sm_n: float = 0.0, sm_scale: float | None = None) -> torch.Tensor:
    """Sparse chunk attention: per selected chunk a softmax over its S keys, outputs summed with `weights`.

    q [B, T, Hq, d]; k, v [B, Tkv, Hkv, d] with Tkv = C * S; indices [B, T, Hkv, K] (ids < 0 or >= C invalid);
    weights [B, T, Hkv, K] fp32. Returns o [B, T, Hq, d] in q's dtype (computed in fp32).
    sm_n adds a constant to every per-chunk softmax denominator ("softmax off by one" when 1).
    """
    B, T, Hq, d = q.shape
    Hkv = k.shape[2]
    G = Hq // Hkv
    K = indices.shape[-1]
    S = chunk_size
    scale = sm_scale if sm_scale is not None else 1.0 / math.sqrt(d)
    C = k.shape[1] // S
    if C == 0:
        return torch.zeros_like(q)
    if C <= GROUPED_MAX_CHUNKS:
        return _attend_grouped(q, k, v, indices, weights, S, sm_n, scale)
    # whole chunks as rows of one table, so selecting them copies S*d contiguous values per slot (an element-wise
    # gather over an expanded index was half of a CPU forward)
    kc = k.float().reshape(B, C, S, Hkv, d).permute(0, 3, 1, 2, 4).reshape(B * Hkv * C, S, d)   # [B*Hkv*C, S, d]
    vc = v.float().reshape(B, C, S, Hkv, d).permute(0, 3, 1, 2, 4).reshape(B * Hkv * C, S, d)
    base = (torch.arange(B * Hkv, device=k.device) * C).reshape(B, Hkv, 1)     # row of chunk 0 per (b, h)
    outs = []
    for t0 in range(0, T, QUERY_BLOCK):
        idx = indices[:, t0:t0 + QUERY_BLOCK]                                   # [B, t, Hkv, K]
        t = idx.shape[1]
        valid = (idx >= 0) & (idx < C)                                          # ids outside [0, C): invalid
        safe = torch.where(valid, idx, 0).permute(0, 2, 1, 3).reshape(B, Hkv, t * K)     # [B, Hkv, t*K]
        rows = (safe.long() + base).reshape(-1)                                 # [B*Hkv*t*K]
        kg = kc.index_select(0, rows).reshape(B, Hkv, t, K, S, d)               # [B, Hkv, t, K, S, d]
        vg = vc.index_select(0, rows).reshape(B, Hkv, t, K, S, d)
        qb = q[:, t0:t0 + t].float().reshape(B, t, Hkv, G, d).permute(0, 2, 1, 3, 4)  # [B, Hkv, t, G, d]
        logits = torch.einsum("bhtgd,bhtksd->bhtgks", qb, kg) * scale           # [B, Hkv, t, G, K, S]
        m = logits.amax(dim=-1, keepdim=True).detach()
        if sm_n:
            m = m.clamp(min=0.0)  # keeps exp(-m) * sm_n finite; the softmax is unchanged by the shift
        p = torch.exp(logits - m)
        denom = p.sum(dim=-1, keepdim=True) + sm_n * torch.exp(-m)
        o_k = torch.einsum("bhtgks,bhtksd->bhtgkd", p / denom, vg)              # [B, Hkv, t, G, K, d]
        w = (weights[:, t0:t0 + t].float() * valid).permute(0, 2, 1, 3)        # [B, Hkv, t, K]
        o = torch.einsum("bhtgkd,bhtk->bhtgd", o_k, w)                          # [B, Hkv, t, G, d]
        outs.append(o.permute(0, 2, 1, 3, 4).reshape(B, t, Hq, d))
    return torch.cat(outs, dim=1).to(q.dtype)


# Up to this many chunks (short contexts: lm-eval documents, CPU tests) the slots are grouped by chunk and each
# chunk's keys are used in place, instead of copying K*S keys out per query (2-3x faster on CPU at 1.6K tokens).
GROUPED_MAX_CHUNKS = 256


def _attend_grouped(q, k, v, indices, weights, S: int, sm_n: float, scale: float) -> torch.Tensor:
    """hsa_attend with the (token, slot) pairs grouped by chunk: one [n_c*G, d] x [d, S] product per chunk over
    the queries that selected it, the same per-chunk softmax, outputs weighted and summed back per token."""
    B, T, Hq, d = q.shape
    Hkv = k.shape[2]
    G = Hq // Hkv
    K = indices.shape[-1]
    C = k.shape[1] // S
    kc = k.float().reshape(B, C, S, Hkv, d)
    vc = v.float().reshape(B, C, S, Hkv, d)
    qf = q.float().reshape(B, T, Hkv, G, d)
    valid = (indices >= 0) & (indices < C)
    w = weights.float() * valid                                                 # [B, T, Hkv, K]
    out = q.new_zeros((B * T * Hkv, G, d), dtype=torch.float32)
    for b in range(B):
        for h in range(Hkv):
            ids = torch.where(valid[b, :, h], indices[b, :, h], -1).reshape(-1)  # [T*K] slot -> chunk (-1 none)
            order = torch.argsort(ids, stable=True)                             # invalid slots (-1) first
            counts = torch.bincount(ids[ids >= 0], minlength=C).tolist()
            pos = ids.numel() - sum(counts)
            for c in range(C):
                n = counts[c]
                if n == 0:
                    continue
                slots = order[pos:pos + n]                                      # [n] flat (t * K + j)
                pos += n
                tok = torch.div(slots, K, rounding_mode="floor")               # [n] query token of each slot
                qs = qf[b, :, h].index_select(0, tok)                           # [n, G, d]
                logits = torch.matmul(qs, kc[b, c, :, h].transpose(0, 1)) * scale  # [n, G, S]
                m = logits.amax(dim=-1, keepdim=True).detach()
                if sm_n:
                    m = m.clamp(min=0.0)
                p = torch.exp(logits - m)
                denom = p.sum(dim=-1, keepdim=True) + sm_n * torch.exp(-m)
                o = torch.matmul(p / denom, vc[b, c, :, h])                    # [n, G, d]
                wt = w[b, :, h].reshape(-1).index_select(0, slots)             # [n]
                out.index_add_(0, (b * T + tok) * Hkv + h, o * wt[:, None, None])
    return out.reshape(B, T, Hq, d).to(q.dtype)
