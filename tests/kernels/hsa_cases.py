"""Random inputs for the HSA kernel tests (fresh random data, never zeros)."""
from __future__ import annotations

import torch


def random_indices(B, T, Hkv, K, C, device="cpu", p_invalid=0.25, dup=True, gen=None):
    """Slot lists like the selector's (descending ids, -1 padding at the end), plus forced duplicates.

    Every (b, t, h) gets K draws from [0, C); a random suffix of slots becomes -1; when `dup`, slot 1 repeats
    slot 0 for a third of the rows (duplicates only reach the op through callers, but must still be handled).
    The first row is all invalid (a token that sees no chunk).
    """
    idx = torch.randint(0, C, (B, T, Hkv, K), generator=gen).sort(dim=-1, descending=True).values
    n_valid = torch.randint(0, K + 1, (B, T, Hkv, 1), generator=gen)
    n_valid = torch.where(torch.rand(B, T, Hkv, 1, generator=gen) < p_invalid, n_valid, torch.full_like(n_valid, K))
    slot = torch.arange(K).view(1, 1, 1, K)
    idx = torch.where(slot < n_valid, idx, torch.full_like(idx, -1))
    if dup and K > 1:
        rows = (torch.rand(B, T, Hkv, generator=gen) < 0.33) & (idx[..., 1] >= 0)
        idx[..., 1] = torch.where(rows, idx[..., 0], idx[..., 1])
    idx[:, 0] = -1
    return idx.to(device)


def attend_inputs(B, T, Hq, Hkv, d, S, K, C, dtype, device="cpu", seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, T, Hq, d, generator=gen).to(device, dtype)
    k = torch.randn(B, C * S, Hkv, d, generator=gen).to(device, dtype)
    v = torch.randn(B, C * S, Hkv, d, generator=gen).to(device, dtype)
    idx = random_indices(B, T, Hkv, K, C, device, gen=gen)
    # weights in (0, 1), nonzero on invalid slots too: the op must ignore them there (and give them no grad)
    w = torch.rand(B, T, Hkv, K, generator=gen).to(device) * 0.9 + 0.05
    do = torch.randn(B, T, Hq, d, generator=gen).to(device, dtype)
    return q, k, v, idx, w, do


def run_with_grads(fn, q, k, v, idx, w, do, S, sm_n):
    """Output and gradients (dq, dk, dv, dw) of fn on leaf copies of the inputs."""
    qq, kk, vv, ww = (x.detach().clone().requires_grad_() for x in (q, k, v, w))
    o = fn(qq, kk, vv, idx, ww, S, sm_n=sm_n)
    o.backward(do)
    return o, qq.grad, kk.grad, vv.grad, ww.grad
