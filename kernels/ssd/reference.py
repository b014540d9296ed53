"""Plain-PyTorch SSD (the Mamba2 state-space scan): the oracle for every faster SSD path.

The recurrence, per head h (state N, head dim P), with a_t = dt_t * A_h <= 0:
    state_t = exp(a_t) * state_{t-1} + dt_t * x_t (outer) B_t        # [P, N]
    y_t     = state_t @ C_t + D_h * x_t                              # [P]
`ssd_naive` runs it token by token. `ssd_chunked` computes the same thing in chunks of Q tokens:
  1. inside a chunk, the decay between tokens i >= j is exp(sum_{j<k<=i} a_k): a lower-triangular [Q, Q]
     matrix, so the chunk's own contribution is one masked "attention" product (C_i . B_j) * decay * dt_j x_j;
  2. each chunk's contribution to the state at its end (decay from token j to the chunk end);
  3. a short sequential pass over chunks carries the state (one step per chunk, not per token);
  4. the state entering a chunk reaches token i with decay exp(cumsum a up to i).
Both take dt after softplus/bias (the caller's job) and A as the negative per-head decay rate.
Shapes: x [B, L, H, P]; dt [B, L, H]; A [H]; Bm, Cm [B, L, G, N] with H % G == 0; D [H] or None;
initial_state [B, H, P, N] or None. Both return (y [B, L, H, P] in x's dtype, final_state [B, H, P, N] fp32).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _expand_groups(m: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, L, G, N] -> [B, L, H, N]: head h reads group h // (H // G)."""
    G = m.shape[2]
    return m.repeat_interleave(heads // G, dim=2) if G != heads else m


def ssd_naive(x, dt, A, Bm, Cm, chunk_size: int = 64, D=None, initial_state=None):
    """Token-by-token recurrence (chunk_size is accepted for a common signature and ignored)."""
    Bsz, L, H, P = x.shape
    Bh = _expand_groups(Bm, H).float()                                  # [B, L, H, N]
    Ch = _expand_groups(Cm, H).float()
    N = Bh.shape[-1]
    state = (torch.zeros(Bsz, H, P, N, device=x.device, dtype=torch.float32) if initial_state is None
             else initial_state.float().clone())
    xf, dtf = x.float(), dt.float()
    ys = []
    for t in range(L):
        decay = torch.exp(dtf[:, t] * A.float())                         # [B, H]
        state = state * decay[..., None, None] + (dtf[:, t, :, None] * xf[:, t])[..., None] * Bh[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, Ch[:, t]))
    y = torch.stack(ys, dim=1) if L else xf.new_zeros(Bsz, 0, H, P)      # [B, L, H, P]
    if D is not None:
        y = y + xf * D.float()[:, None]
    return y.to(x.dtype), state


def ssd_chunked(x, dt, A, Bm, Cm, chunk_size: int = 64, D=None, initial_state=None):
    """Chunked SSD, exactly the recurrence of `ssd_naive` (up to fp32 rounding). See the module docstring.

    Heads are kept as (G groups, R heads per group) so B and C are never copied per head.
    """
    Bsz, L, H, P = x.shape
    G, N = Bm.shape[2], Bm.shape[3]
    R = H // G
    Q = chunk_size
    pad = (-L) % Q
    xf, dtf, Bf, Cf = x.float(), dt.float(), Bm.float(), Cm.float()
    if pad:
        # dt = 0 on padding: no decay (exp 0 = 1) and no input, so the final state is unchanged.
        xf = F.pad(xf, (0, 0, 0, 0, 0, pad))
        dtf = F.pad(dtf, (0, 0, 0, pad))
        Bf = F.pad(Bf, (0, 0, 0, 0, 0, pad))
        Cf = F.pad(Cf, (0, 0, 0, 0, 0, pad))
    nc = (L + pad) // Q
    Bc = Bf.view(Bsz, nc, Q, G, N)
    Cc = Cf.view(Bsz, nc, Q, G, N)
    a = (dtf * A.float()).view(Bsz, nc, Q, G, R).permute(0, 1, 3, 4, 2)    # [B, nc, G, R, Q] log-decay
    a_cum = torch.cumsum(a, dim=-1)                                         # [B, nc, G, R, Q]
    xdt = (xf * dtf[..., None]).view(Bsz, nc, Q, G, R, P)                   # [B, nc, Q, G, R, P]

    # 1. intra-chunk: decay[i, j] = exp(a_cum_i - a_cum_j) for i >= j, else 0; times C_i . B_j
    tril = torch.ones(Q, Q, dtype=torch.bool, device=x.device).tril()
    seg = (a_cum[..., :, None] - a_cum[..., None, :]).masked_fill(~tril, float("-inf"))
    cb = torch.einsum("bcign,bcjgn->bcgij", Cc, Bc)                         # [B, nc, G, Q, Q]
    mix = torch.exp(seg) * cb[:, :, :, None]                                # [B, nc, G, R, Q, Q]
    y = torch.einsum("bcgrij,bcjgrp->bcigrp", mix, xdt)                     # [B, nc, Q, G, R, P]

    # 2. each chunk's input, decayed to the chunk's last token
    to_end = torch.exp(a_cum[..., -1:] - a_cum).permute(0, 1, 4, 2, 3)      # [B, nc, Q, G, R]
    chunk_states = torch.einsum("bcjgrp,bcjgn->bcgrpn", xdt * to_end[..., None], Bc)  # [B, nc, G, R, P, N]

    # 3. carry the state across chunks (sequential over chunks only)
    chunk_decay = torch.exp(a_cum[..., -1])                                 # [B, nc, G, R]
    state = (torch.zeros(Bsz, G, R, P, N, device=x.device, dtype=torch.float32) if initial_state is None
             else initial_state.float().reshape(Bsz, G, R, P, N))
    entering = []
    for c in range(nc):
        entering.append(state)
        state = state * chunk_decay[:, c, :, :, None, None] + chunk_states[:, c]
    states_in = torch.stack(entering, dim=1)                                # [B, nc, G, R, P, N]

    # 4. the entering state, read out by C and decayed to each token
    from_start = torch.exp(a_cum).permute(0, 1, 4, 2, 3)                    # [B, nc, Q, G, R]
    y = y + torch.einsum("bcign,bcgrpn->bcigrp", Cc, states_in) * from_start[..., None]
    y = y.reshape(Bsz, nc * Q, H, P)[:, :L]
    if D is not None:
        y = y + x.float() * D.float()[:, None]
    return y.to(x.dtype), state.reshape(Bsz, H, P, N)


def ssd_step(x, dt, A, Bm, Cm, state, D=None):
    """One decode step: x [B, H, P], dt [B, H], Bm/Cm [B, G, N], state [B, H, P, N] (None = zeros).

    Returns (y [B, H, P] in x's dtype, new state [B, H, P, N] fp32); `state` itself is not modified.
    """
    H = x.shape[1]
    Bh = _expand_groups(Bm[:, None], H)[:, 0].float()                    # [B, H, N]
    Ch = _expand_groups(Cm[:, None], H)[:, 0].float()
    dtf = dt.float()
    decay = torch.exp(dtf * A.float())                                   # [B, H]
    if state is None:
        state = torch.zeros(*x.shape, Bh.shape[-1], device=x.device, dtype=torch.float32)
    state = state.float() * decay[..., None, None] + (dtf[..., None] * x.float())[..., None] * Bh[:, :, None, :]
    y = torch.einsum("bhpn,bhn->bhp", state, Ch)
    if D is not None:
        y = y + x.float() * D.float()[:, None]
    return y.to(x.dtype), state
