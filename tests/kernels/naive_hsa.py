"""A second, independent HSA oracle: float64, plain loops, written straight from hsa-spec.md §1.3-1.5.

It shares nothing with `ramba.kernels.hsa.reference` (and imports nothing from kernels/), so a slip made in
the reference and copied into the Triton kernels (both are checked against the reference elsewhere) still
shows up here. Every function loops over tokens, heads and chunks one at a time; it is slow and only meant
for the small shapes of the tests. All arithmetic is float64 torch ops, so `torch.autograd` of these loops
gives the exact gradients of the spec's formulas.

Contract points (docs/contracts.md, "Ties and invalid ids"):
  * selection: the K largest scores among the visible chunks; an exact tie goes to the larger chunk id
    (the newer chunk); the chosen ids are listed in descending order, -1 / -inf fill the missing slots;
  * a slot whose chunk id is < 0 or >= C is invalid: it contributes nothing, whatever its weight.
"""
from __future__ import annotations

import math

import torch

NEG_INF = float("-inf")


def naive_select(r: torch.Tensor, landmarks: torch.Tensor, topk: int, chunk_size: int, q_offset: int = 0):
    """§1.3: s_{t,c} = <r_t, l_c> / sqrt(dr) for every chunk c with q_offset + t >= (c + 1) * S; keep the top-K.

    r [B, T, H, dr]; landmarks [B, C, H, dr] -> (indices [B, T, H, K] int64, scores [B, T, H, K] float64).
    The scores are differentiable float64 tensors (autograd reaches r and landmarks).
    """
    B, T, H, dr = r.shape
    C = landmarks.shape[1]
    r64, l64 = r.double(), landmarks.double()
    idx = torch.full((B, T, H, topk), -1, dtype=torch.int64)
    scores = [[[[None] * topk for _ in range(H)] for _ in range(T)] for _ in range(B)]
    for b in range(B):
        for t in range(T):
            pos = q_offset + t
            for h in range(H):
                cands = []                                           # (score value, chunk id, score tensor)
                for c in range(C):
                    if pos >= (c + 1) * chunk_size:                  # complete and in the past
                        s = (r64[b, t, h] * l64[b, c, h]).sum() / math.sqrt(dr)
                        cands.append((s.item(), c, s))
                # larger score first; on an exact tie the larger (newer) chunk id first
                cands.sort(key=lambda x: (x[0], x[1]), reverse=True)
                chosen = sorted(cands[:topk], key=lambda x: x[1], reverse=True)   # recency order
                for k, (_, c, s) in enumerate(chosen):
                    idx[b, t, h, k] = c
                    scores[b][t][h][k] = s
    ninf = torch.tensor(NEG_INF, dtype=torch.float64)
    flat = [s if s is not None else ninf for b in scores for t in b for h in t for s in h]
    return idx, torch.stack(flat).reshape(B, T, H, topk)


def naive_weights(scores: torch.Tensor, fusion: str = "stick_breaking") -> torch.Tensor:
    """§1.4 on recency-ordered scores [..., K] (-inf = invalid slot) -> float64 weights [..., K].

    stick_breaking: w_k = sigma(s_k) * prod_{j<k, valid} (1 - sigma(s_j)); an invalid slot gets 0 and leaves
    the stick unbroken (softplus(-inf) = 0). softmax: exp(s_k) / sum_{valid j} exp(s_j); invalid -> 0, a row
    with no valid slot -> all 0.
    """
    s64 = scores.double()
    K = s64.shape[-1]
    rows = s64.reshape(-1, K)
    zero = torch.zeros((), dtype=torch.float64)
    out = []
    for row in rows:
        valid = [bool(torch.isfinite(row[k])) for k in range(K)]
        if fusion == "stick_breaking":
            rest = torch.ones((), dtype=torch.float64)               # the part of the stick still unbroken
            for k in range(K):
                if not valid[k]:
                    out.append(zero)
                    continue
                sig = 1.0 / (1.0 + torch.exp(-row[k]))
                out.append(sig * rest)
                rest = rest * (1.0 - sig)
        elif fusion == "softmax":
            ex = [torch.exp(row[k]) if valid[k] else None for k in range(K)]
            z = sum(e for e in ex if e is not None) if any(valid) else None
            out.extend(e / z if e is not None else zero for e in ex)
        else:
            raise ValueError(fusion)
    return torch.stack(out).reshape(s64.shape) if out else s64.clone()


def naive_attend(q, k, v, indices, weights, chunk_size: int, sm_n: float = 0.0, sm_scale: float | None = None):
    """§1.5: per valid slot, p_j = exp(q.K_j * scale) / (sm_n + sum_j' exp(q.K_j' * scale)) over the chunk's S keys,
    o_k = sum_j p_j V_j, and O = sum_k w_k o_k. Query head i reads KV head i // (Hq / Hkv).

    q [B, T, Hq, d]; k, v [B, C*S, Hkv, d]; indices/weights [B, T, Hkv, K] -> o [B, T, Hq, d] float64.
    Inputs are used as given (no max subtraction): the tests feed O(1) logits, far from float64 overflow.
    """
    B, T, Hq, d = q.shape
    Hkv = k.shape[2]
    G = Hq // Hkv
    S = chunk_size
    C = k.shape[1] // S
    K = indices.shape[-1]
    scale = sm_scale if sm_scale is not None else 1.0 / math.sqrt(d)
    q64, k64, v64, w64 = q.double(), k.double(), v.double(), weights.double()
    out = []
    for b in range(B):
        for t in range(T):
            for i in range(Hq):
                g = i // G
                o = torch.zeros(d, dtype=torch.float64)
                for slot in range(K):
                    c = int(indices[b, t, g, slot])
                    if not 0 <= c < C:                               # invalid slot: contributes nothing
                        continue
                    keys = k64[b, c * S:(c + 1) * S, g]              # [S, d]
                    vals = v64[b, c * S:(c + 1) * S, g]              # [S, d]
                    e = torch.exp((keys @ q64[b, t, i]) * scale)     # [S]
                    p = e / (sm_n + e.sum())
                    o = o + w64[b, t, g, slot] * (p @ vals)
                out.append(o)
    return torch.stack(out).reshape(B, T, Hq, d) if out else q64 * 0
