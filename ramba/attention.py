"""Causal self-attention mixers with RoPE at absolute positions: full (the `transformer` baseline) or a
sliding window (the `swa-hsa` architecture). State = the keys/values later queries can still see."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ramba.config import RambaConfig
from ramba.layers import apply_rope, rope_cos_sin
from ramba.state import GrowableBuffer

QUERY_BLOCK = 1024   # queries per attention call: bounds the [block, keys] mask


class AttentionMixer(nn.Module):
    def __init__(self, cfg: RambaConfig, window: int | None):
        super().__init__()
        self.cfg, self.window = cfg, window
        self.H = cfg.attn_heads
        self.dh = cfg.d_model // cfg.attn_heads
        self.qkv_proj = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.o_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    # state: full attention {"k": GrowableBuffer, "v": GrowableBuffer}; window {"k", "v": [B, <=W-1, H, dh]}
    def allocate_state(self, batch: int, device, dtype) -> dict:
        if self.window is None:
            return {"k": GrowableBuffer(batch, (self.H, self.dh), device, dtype, 256),
                    "v": GrowableBuffer(batch, (self.H, self.dh), device, dtype, 256)}
        empty = torch.zeros(batch, 0, self.H, self.dh, device=device, dtype=dtype)
        return {"k": empty, "v": empty.clone()}

    def forward(self, x: torch.Tensor, state: dict | None = None, pos0: int = 0, segment=None) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv_proj(x).view(B, T, 3, self.H, self.dh).unbind(2)      # [B, T, H, dh] each
        pos = pos0 + torch.arange(T, device=x.device, dtype=torch.int64)
        cos, sin = rope_cos_sin(pos, self.dh, self.cfg.rope_theta)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if state is None:
            keys, vals = k, v
        elif self.window is None:
            state["k"].append(k)
            state["v"].append(v)
            keys, vals = state["k"].view(), state["v"].view()
        else:
            keys = torch.cat([state["k"], k], dim=1)
            vals = torch.cat([state["v"], v], dim=1)
            keep = max(0, self.window - 1)
            state["k"], state["v"] = keys[:, keys.shape[1] - min(keep, keys.shape[1]):], \
                vals[:, vals.shape[1] - min(keep, vals.shape[1]):]
        o = self._attend(q, keys, vals)
        return self.o_proj(o.reshape(B, T, d))

    def _attend(self, q, keys, vals):
        """q [B, T, H, dh]; keys/vals [B, P+T, H, dh] (P cached tokens first). Query t is key P+t."""
        B, T = q.shape[:2]
        P = keys.shape[1] - T
        outs = []
        for t0 in range(0, T, QUERY_BLOCK):
            t1 = min(T, t0 + QUERY_BLOCK)
            k_lo = 0 if self.window is None else max(0, P + t0 - self.window + 1)
            k_hi = P + t1
            qi = P + torch.arange(t0, t1, device=q.device)[:, None]                   # [t, 1]
            kj = torch.arange(k_lo, k_hi, device=q.device)[None, :]                   # [1, k]
            mask = kj <= qi
            if self.window is not None:
                mask &= kj > qi - self.window
            o = F.scaled_dot_product_attention(q[:, t0:t1].transpose(1, 2), keys[:, k_lo:k_hi].transpose(1, 2),
                                               vals[:, k_lo:k_hi].transpose(1, 2), attn_mask=mask)
            outs.append(o.transpose(1, 2))                                             # [B, t, H, dh]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
