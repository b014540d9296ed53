"""Mamba2 mixer: in_proj -> depthwise causal conv -> SSD scan -> gated RMSNorm -> out_proj.

Parameter names follow the Mamba2 convention (in_proj, conv1d, dt_bias, A_log, D, norm, out_proj) so converted
checkpoints map one to one. The scan runs on our own chunked SSD (kernels/ssd/reference.py) or, on CUDA when
mamba-ssm is installed, on its Triton `mamba_chunk_scan_combined` (an optional library call, nothing copied).

Resets (config.mamba_segment): conv and SSM state restart at absolute positions that are multiples of the
segment. A call covering [pos0, pos0 + L) is split into at most three pieces: a head that continues the carried
state up to the first boundary, whole segments run as extra batch rows with zero state, and a fresh tail.
"""
from __future__ import annotations

import functools
import math
import os
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

from ramba.config import RambaConfig
from ramba.kernels.ssd.reference import ssd_chunked, ssd_step


@functools.lru_cache(maxsize=1)
def load_mamba_ssm_scan():
    """mamba-ssm's Triton chunked scan, or None when it is not installed (deps.md §2: stub the CUDA module
    `selective_scan_cuda` when mamba-ssm was built without its extension)."""
    if os.environ.get("RAMBA_NO_MAMBA_SSM"):
        return None
    try:
        import selective_scan_cuda  # noqa: F401
    except ImportError:
        sys.modules.setdefault("selective_scan_cuda", types.ModuleType("selective_scan_cuda"))
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except Exception:  # not installed, or broken: our own path is the fallback
        return None
    return mamba_chunk_scan_combined


def split_at_resets(pos0: int, length: int, segment: int | None):
    """Pieces of [0, length) for a call starting at absolute pos0: (head_end, mid_end, head_fresh).

    [0, head_end) continues the carried state (from zero if head_fresh: pos0 sits on a boundary);
    [head_end, mid_end) is whole segments; [mid_end, length) starts fresh.
    """
    if not segment:
        return length, length, False
    off = (-pos0) % segment                      # tokens before the next boundary
    if off == 0:
        head_end, head_fresh = 0, True
    else:
        head_end, head_fresh = min(off, length), False
    n_full = (length - head_end) // segment
    return head_end, head_end + n_full * segment, head_fresh


class GatedRMSNorm(nn.Module):
    """RMSNorm(y * silu(z)) per group of channels (the Mamba2 output norm, gate before the norm)."""

    def __init__(self, dim: int, groups: int = 1, eps: float = 1e-5):
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = y.float() * F.silu(z.float())
        shape = h.shape
        h = h.view(*shape[:-1], self.groups, shape[-1] // self.groups)
        h = F.rms_norm(h, (h.shape[-1],), eps=self.eps)                   # fused, fp32
        return (h.view(shape) * self.weight.float()).to(y.dtype)


class Mamba2Mixer(nn.Module):
    def __init__(self, cfg: RambaConfig):
        super().__init__()
        self.cfg = cfg
        d, di, H, N, G = cfg.d_model, cfg.d_inner, cfg.n_heads_ssm, cfg.d_state, cfg.n_groups
        self.d_inner, self.nheads, self.headdim, self.d_state, self.ngroups = di, H, cfg.mamba_headdim, N, G
        self.conv_dim = di + 2 * G * N
        self.in_proj = nn.Linear(d, 2 * di + 2 * G * N + H, bias=False)   # -> z, xBC, dt
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, cfg.d_conv, groups=self.conv_dim, bias=True)
        # dt initialised log-uniform in [1e-3, 1e-1] through the inverse softplus of the bias
        dt = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(H).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(H))
        self.norm = GatedRMSNorm(di, groups=G, eps=cfg.norm_eps)
        self.out_proj = nn.Linear(di, d, bias=False)
        self.ssd_impl = "auto"           # "auto" | "torch" | "mamba_ssm" (set by the model)
        self.conv_impl = "conv1d"        # "conv1d" | "shift" (see _depthwise_conv)

    # state: {"conv": [B, conv_dim, d_conv - 1], "ssm": [B, H, P, N] fp32}
    def allocate_state(self, batch: int, device, dtype) -> dict:
        return {"conv": torch.zeros(batch, self.conv_dim, self.cfg.d_conv - 1, device=device, dtype=dtype),
                "ssm": torch.zeros(batch, self.nheads, self.headdim, self.d_state, device=device,
                                   dtype=torch.float32)}

    def forward(self, u: torch.Tensor, state: dict | None = None, pos0: int = 0,
                segment: int | None = None) -> torch.Tensor:
        """u [B, L, d] at absolute positions pos0.. -> [B, L, d]; updates `state` in place when given."""
        Bsz, L, _ = u.shape
        di, H = self.d_inner, self.nheads
        z, xBC, dt = torch.split(self.in_proj(u), [di, self.conv_dim, H], dim=-1)
        head_end, mid_end, head_fresh = split_at_resets(pos0, L, segment)
        conv_s = None if (state is None or head_fresh) else state["conv"]
        ssm_s = None if (state is None or head_fresh) else state["ssm"]
        ys = []
        if head_end > 0:
            y, conv_s, ssm_s = self._scan(xBC[:, :head_end], dt[:, :head_end], conv_s, ssm_s)
            ys.append(y)
        if mid_end > head_end:
            # whole segments as extra batch rows with zero state: [B, n*seg, .] -> [B*n, seg, .] (a view)
            seg = segment
            n = (mid_end - head_end) // seg
            y, c_all, s_all = self._scan(xBC[:, head_end:mid_end].reshape(Bsz * n, seg, -1),
                                         dt[:, head_end:mid_end].reshape(Bsz * n, seg, -1), None, None)
            ys.append(y.reshape(Bsz, n * seg, *y.shape[2:]))
            conv_s = c_all.view(Bsz, n, *c_all.shape[1:])[:, -1]
            ssm_s = s_all.view(Bsz, n, *s_all.shape[1:])[:, -1]
        if L > mid_end:
            y, conv_s, ssm_s = self._scan(xBC[:, mid_end:], dt[:, mid_end:], None, None)
            ys.append(y)
        if state is not None:
            state["conv"] = conv_s.to(state["conv"].dtype)
            state["ssm"] = ssm_s.float()
        y = ys[0] if len(ys) == 1 else torch.cat(ys, dim=1)            # [B, L, H, P]
        y = self.norm(y.reshape(Bsz, L, di), z)
        return self.out_proj(y)

    def _depthwise_conv(self, full: torch.Tensor, L: int) -> torch.Tensor:
        """Causal depthwise conv of full [B, C, K-1+L] (left context included) -> [B, C, L].
        conv_impl "conv1d" = F.conv1d; "shift" = K shifted multiply-adds in fp32 (no cuDNN depthwise kernel)."""
        w, b = self.conv1d.weight, self.conv1d.bias                       # [C, 1, K], [C]
        if self.conv_impl == "conv1d":
            return F.conv1d(full, w, b, groups=self.conv_dim)
        K = w.shape[-1]
        wf = w[:, 0].float()                                              # [C, K]
        acc = b.float()[None, :, None] + wf[None, :, 0, None] * full[:, :, :L].float()
        for k in range(1, K):
            acc = acc + wf[None, :, k, None] * full[:, :, k:k + L].float()
        return acc.to(full.dtype)

    def _use_mamba_ssm(self, x: torch.Tensor) -> bool:
        if self.ssd_impl == "torch" or not x.is_cuda:
            return False
        return load_mamba_ssm_scan() is not None

    def _scan(self, xBC, dt, conv_state, ssm_state):
        """One piece with a continuous state. xBC [B, L, conv_dim]; dt [B, L, H] (raw);
        conv_state [B, conv_dim, K-1] or None (zeros); ssm_state [B, H, P, N] or None.
        Returns y [B, L, H, P], new conv state, new ssm state."""
        Bsz, L, _ = xBC.shape
        K = self.cfg.d_conv
        xt = xBC.transpose(1, 2)                                          # [B, conv_dim, L]
        if conv_state is None and self.conv_impl == "conv1d" and L >= K - 1:
            # zero left context: let the conv pad (no padded copy of the whole sequence)
            new_conv = xt[:, :, L - (K - 1):]
            conv = F.conv1d(xt, self.conv1d.weight, self.conv1d.bias, padding=K - 1, groups=self.conv_dim)[..., :L]
        else:
            if conv_state is None:
                full = F.pad(xt, (K - 1, 0))
            else:
                full = torch.cat([conv_state.to(xt.dtype), xt], dim=2)    # [B, conv_dim, K-1+L]
            new_conv = full[:, :, full.shape[2] - (K - 1):]
            conv = self._depthwise_conv(full, L)                           # [B, conv_dim, L]
        xBC = F.silu(conv).transpose(1, 2)
        di, GN = self.d_inner, self.ngroups * self.d_state
        x, Bm, Cm = torch.split(xBC, [di, GN, GN], dim=-1)
        x = x.reshape(Bsz, L, self.nheads, self.headdim)                  # [B, L, H, P]
        Bm = Bm.reshape(Bsz, L, self.ngroups, self.d_state)               # [B, L, G, N]
        Cm = Cm.reshape(Bsz, L, self.ngroups, self.d_state)
        A = -torch.exp(self.A_log.float())                                # [H]
        if L == 1:
            dts = F.softplus(dt.float() + self.dt_bias.float())
            y, new_ssm = ssd_step(x[:, 0], dts[:, 0], A, Bm[:, 0], Cm[:, 0], ssm_state, D=self.D)
            return y[:, None], new_conv, new_ssm
        if self._use_mamba_ssm(x):
            scan = load_mamba_ssm_scan()
            y, new_ssm = scan(x, dt, A, Bm, Cm, self.cfg.ssd_chunk, D=self.D, dt_bias=self.dt_bias,
                              initial_states=ssm_state, dt_softplus=True, return_final_states=True)
            return y, new_conv, new_ssm
        dts = F.softplus(dt.float() + self.dt_bias.float())
        y, new_ssm = ssd_chunked(x, dts, A, Bm, Cm, self.cfg.ssd_chunk, D=self.D, initial_state=ssm_state)
        return y, new_conv, new_ssm
