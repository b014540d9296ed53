"""Small configurations for CPU tests (the presets are too big to run here, except on the meta device)."""
from __future__ import annotations

import torch

from ramba import RambaConfig, RambaModel


def small_config(arch: str = "ramba", **kw) -> RambaConfig:
    base = dict(arch=arch, vocab_size=256, d_model=64, n_lower=2, n_upper=2, n_hsa=2 if arch in ("ramba", "swa-hsa")
                else 0, d_state=16, mamba_headdim=32, ssd_chunk=16, chunk_size=16, topk=3, hsa_heads=4,
                hsa_kv_heads=2, hsa_head_dim=16, retrieval_dim=32, enc_heads=4, enc_kv_heads=2, attn_heads=4,
                swa_window=24, init_std=0.1, score_bias=1.0)
    base.update(kw)
    return RambaConfig(**base)


def small_model(arch: str = "ramba", seed: int = 0, **kw) -> RambaModel:
    torch.manual_seed(seed)
    return RambaModel(small_config(arch, **kw)).eval()


def run_segments(model: RambaModel, ids: torch.Tensor, sizes, reset_phase: int = 0, **state_kw) -> torch.Tensor:
    """Feed ids [B, T] through prefill in pieces of `sizes` (cycled; size 1 uses decode) -> logits [B, T, V].
    state_kw go to allocate_state (memory placement and its options)."""
    state = model.allocate_state(ids.shape[0], **state_kw)
    state.reset_phase = reset_phase
    outs, p, i = [], 0, 0
    while p < ids.shape[1]:
        n = min(sizes[i % len(sizes)], ids.shape[1] - p)
        if n == 1:
            o, state = model.decode(ids[:, p], state)
            outs.append(o[:, None])
        else:
            o, state = model.prefill(ids[:, p:p + n], state)
            outs.append(o)
        p += n
        i += 1
    state.memory is not None and state.memory.close()
    return torch.cat(outs, dim=1)
