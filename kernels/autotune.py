"""Launch configurations for the HSA kernels: heuristics keyed on shape constants, never on the raw length T.

Keys are (G, S, d, dtype) / (dr, topk): values a model fixes once, so a long run never re-tunes mid-way
(fla issue #1147 is what keying on T costs). `benchmarks/kernels/bench_hsa.py --tune` sweeps candidates on a GPU;
the winners are written into the tables below by hand, with the record that measured them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ramba.kernels.hsa._common import next_pow2


@dataclass(frozen=True)
class AttendConfig:
    block_t: int      # query tokens per program (several when G < 16)
    g_rows: int       # tile rows per token (>= G, power of two)
    num_warps: int
    num_stages: int
    unroll: int       # unroll factor of the loop over the K slots (independent chunk loads in flight)
    spi: int = 1      # forward only: slots gathered per step (their chunks side by side in one wider tile)


@dataclass(frozen=True)
class DkdvConfig:
    block_e: int      # (query, slot) entries per inner step; rows = block_e * g_rows
    seg: int          # entries per program (long lists of a hot chunk are split, partial sums added atomically)
    num_warps: int
    num_stages: int


@dataclass(frozen=True)
class SelectConfig:
    block_q: int
    block_c: int
    block_dr: int
    num_warps: int
    num_stages: int
    merge_f32: int = 1    # 1: merge on the fp32 score tile (fewer registers); 0: packed int64 key tile


def _override(name: str, default: int) -> int:
    """RAMBA_HSA_<NAME>=value overrides one knob (used by the tuning sweep; never needed in normal use)."""
    v = os.environ.get(f"RAMBA_HSA_{name}")
    return int(v) if v else default


def attend_config(G: int, S: int, d: int, max_cols: int = 128) -> AttendConfig:
    """Rows = block_t * g_rows >= 16 (the smallest tensor-core tile); columns = block_t * S kept <= max_cols so the
    block-diagonal [rows, cols] score tile of several tokens stays in registers."""
    g_pad = next_pow2(G)
    s_pad = next_pow2(S)
    block_t = 1
    while block_t * g_pad < 16 and 2 * block_t * s_pad <= max(max_cols, s_pad):
        block_t *= 2
    g_rows = max(g_pad, 16 // block_t)
    rows = block_t * g_rows
    d_pad = next_pow2(d)
    # H100, bench runs 1-2 (records/kernels-h100-run2-*): 4 warps, 2 stages and 2 slots per step (two chunks
    # gathered side by side) were best for both d 64 (1.44 ms vs 1.67 at 64K) and d 128 (9.49 vs 9.66 ms)
    num_warps = 4 if rows * max(d_pad, block_t * s_pad) <= 64 * 128 else 8
    return AttendConfig(_override("BLOCK_T", block_t), g_rows, _override("WARPS", num_warps),
                        _override("STAGES", 2), _override("UNROLL", 1), _override("SPI", 2))


def dkdv_config(G: int, S: int, d: int) -> DkdvConfig:
    g_pad = next_pow2(G)
    # H100, bench runs 1-2: 128 gathered query rows per step and segments of 2048 entries at d 64 (3.93 ms for
    # the whole backward at 64K), 64 rows and segments of 512 at d 128 (22.3 ms); 4 warps
    small = next_pow2(d) <= 64
    block_e = max(1, (128 if small else 64) // g_pad)
    return DkdvConfig(_override("BLOCK_E", block_e), _override("SEG", 2048 if small else 512),
                      _override("DKDV_WARPS", 4), _override("DKDV_STAGES", 2))


def select_config(dr: int, topk: int, T: int) -> SelectConfig:
    """Prefill: 128 x 128 score tiles, dr streamed 32 at a time, 8 warps, 4 stages (H100 run 2: 4.61 ms at
    256K vs 6.53 for 64 x 64 tiles). Decode-like calls (T <= 16): 16 query rows, 64 landmarks per block."""
    if T <= 16:
        return SelectConfig(16, 64, min(64, next_pow2(dr)), 4, 3, _override("SEL_F32", 1))
    return SelectConfig(_override("SEL_BQ", 128), _override("SEL_BC", 128),
                        _override("SEL_BDR", min(32, next_pow2(dr))), _override("SEL_WARPS", 8),
                        _override("SEL_STAGES", 4), _override("SEL_F32", 1))
