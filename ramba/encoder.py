"""Chunk encoder (hsa-spec.md §1.2): every chunk of S lower-stack hidden states, encoded on its own, becomes
one landmark (retrieval key of the chunk) and S memory keys/values shared by every HSA layer.

Encoder layer: bidirectional (no mask inside the chunk), pre-RMSNorm, q/k/v with bias, per-head RMSNorm on q
and k, RoPE over in-chunk positions 0..S (the CLS token sits at the end, position S), SwiGLU MLP.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ramba.config import RambaConfig
from ramba.layers import RMSNorm, SwiGLU, apply_rope, rope_cos_sin

ENC_EPS = 1e-6


class EncoderLayer(nn.Module):
    def __init__(self, cfg: RambaConfig):
        super().__init__()
        d, H, Hk = cfg.d_model, cfg.enc_heads, cfg.enc_kv_heads
        self.H, self.Hk, self.dh = H, Hk, d // H
        self.theta = cfg.rope_theta
        self.attn_norm = RMSNorm(d, ENC_EPS)
        self.q_proj = nn.Linear(d, H * self.dh, bias=True)
        self.k_proj = nn.Linear(d, Hk * self.dh, bias=True)
        self.v_proj = nn.Linear(d, Hk * self.dh, bias=True)
        self.o_proj = nn.Linear(H * self.dh, d, bias=False)
        self.q_norm = RMSNorm(self.dh, ENC_EPS)
        self.k_norm = RMSNorm(self.dh, ENC_EPS)
        self.mlp_norm = RMSNorm(d, ENC_EPS)
        self.mlp = SwiGLU(d, cfg.ffn_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, T, _ = x.shape                                                  # [n chunks, S(+1), d]
        h = self.attn_norm(x)
        q = self.q_norm(self.q_proj(h).view(n, T, self.H, self.dh))
        k = self.k_norm(self.k_proj(h).view(n, T, self.Hk, self.dh))
        v = self.v_proj(h).view(n, T, self.Hk, self.dh)
        cos, sin = rope_cos_sin(torch.arange(T, device=x.device), self.dh, self.theta)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.Hk != self.H:
            k = k.repeat_interleave(self.H // self.Hk, dim=2)
            v = v.repeat_interleave(self.H // self.Hk, dim=2)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # [n, H, T, dh]
        x = x + self.o_proj(o.transpose(1, 2).reshape(n, T, self.H * self.dh))
        return x + self.mlp(self.mlp_norm(x))


class ChunkEncoder(nn.Module):
    """h chunks [n, S, d] -> landmarks [n, Hkv, dr/Hkv], keys and values [n, S, Hkv, dh]."""

    def __init__(self, cfg: RambaConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.use_cls = cfg.enc_layers > 0 and cfg.landmark == "cls"
        if self.use_cls:
            self.cls = nn.Parameter(torch.randn(d) * cfg.init_std)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.enc_layers))
        self.norm = RMSNorm(d, ENC_EPS)
        self.lmk_proj = nn.Linear(d, cfg.retrieval_dim, bias=False)
        self.k_proj = nn.Linear(d, cfg.hsa_kv_heads * cfg.hsa_head_dim, bias=False)
        self.v_proj = nn.Linear(d, cfg.hsa_kv_heads * cfg.hsa_head_dim, bias=False)

    def forward(self, h: torch.Tensor):
        n, S, d = h.shape
        cfg = self.cfg
        x = h
        if self.use_cls:
            x = torch.cat([h, self.cls.to(h.dtype).expand(n, 1, d)], dim=1)   # CLS at the end: [n, S+1, d]
        for layer in self.layers:
            x = layer(x)
        e = self.norm(x)
        summary = e[:, S] if self.use_cls else e[:, :S].mean(dim=1)       # [n, d]
        Hkv = cfg.hsa_kv_heads
        lmk = self.lmk_proj(summary).view(n, Hkv, cfg.retrieval_dim // Hkv)
        tok = e[:, :S]
        k = self.k_proj(tok).view(n, S, Hkv, cfg.hsa_head_dim)
        v = self.v_proj(tok).view(n, S, Hkv, cfg.hsa_head_dim)
        return lmk, k, v
