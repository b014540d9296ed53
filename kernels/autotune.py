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
    # H100, bench run 1 (records/kernels-*): 4 warps beat 8 for both shapes; 1 stage best at d 64, 2 at d 128
    num_warps = 4 if rows * max(d_pad, block_t * s_pad) <= 64 * 128 else 8
    num_stages = 1 if d_pad <= 64 else 2
    return AttendConfig(_override("BLOCK_T", block_t), g_rows, _override("WARPS", num_warps),
                        _override("STAGES", num_stages), _override("UNROLL", 1), _override("SPI", 1))


def dkdv_config(G: int, S: int, d: int) -> DkdvConfig:
    g_pad = next_pow2(G)
    # H100, bench run 1: 128 gathered query rows per step at d 64, 64 rows at d 128; 4 warps
    block_e = max(1, (128 if next_pow2(d) <= 64 else 64) // g_pad)
    num_warps = 4
    return DkdvConfig(_override("BLOCK_E", block_e), _override("SEG", 512), _override("DKDV_WARPS", num_warps),
                      _override("DKDV_STAGES", 2))


def select_config(dr: int, topk: int, T: int) -> SelectConfig:
    """block_q is 16 for decode-like calls (T <= 16), else 64; landmark blocks of 64 x block_dr streamed."""
    block_q = 16 if T <= 16 else 64
    block_dr = min(64, next_pow2(dr))
    return SelectConfig(_override("SEL_BQ", block_q), _override("SEL_BC", 64), _override("SEL_BDR", block_dr),
                        _override("SEL_WARPS", 4), _override("SEL_STAGES", 3))
