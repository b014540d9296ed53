"""Launch configurations for the HSA kernels: heuristics keyed on shape constants, never on the raw length T.

Keys are (G, S, d, dtype) / (dr, topk): values a model fixes once, so a long run never re-tunes mid-way
(fla issue #1147 is what keying on T costs). `benchmarks/kernels/bench_hsa.py --tune` sweeps candidates on a GPU;
the winners are written into the tables below by hand, with the record that measured them.

Fitting the device: the tuned configuration is the first of a list of candidates (`*_candidates`), each smaller
in shared memory than the one before (fewer pipeline stages, then narrower tiles). `fit` starts the list at the
first candidate whose estimated shared memory (`*_smem`, from block sizes and dtype) fits the device's limit
(`smem_limit`), and `run_fitting` launches it, moving on to the next candidate if Triton still reports
OutOfResources (an estimate is a model of the compiler, not the compiler). Off CUDA there is no limit.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from ramba.errors import DoesNotFitError
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


# ---------------------------------------------------------------- fitting the device's shared memory

# Barriers and small scratch Triton adds beyond the tiles (H200, forward fp32 G 4 d 128: 768 B).
SMEM_SLACK = 1024


def smem_limit(device) -> int | None:
    """Shared memory one program may use on `device` (bytes; the opt-in per-block limit Triton checks at load
    time), None off CUDA. RAMBA_HSA_SMEM=<bytes> overrides it (tests of the chooser, tuning)."""
    v = os.environ.get("RAMBA_HSA_SMEM")
    if v:
        return int(v)
    if getattr(device, "type", "cpu") != "cuda":
        return None
    import torch
    return _device_smem(device.index if device.index is not None else torch.cuda.current_device())


@functools.lru_cache(maxsize=None)
def _device_smem(index: int) -> int:
    try:
        from triton.runtime import driver
        return int(driver.active.utils.get_device_properties(index)["max_shared_mem"])
    except Exception:  # an older Triton: ask torch instead
        import torch
        props = torch.cuda.get_device_properties(index)
        return int(getattr(props, "shared_memory_per_block_optin", 48 * 1024))


def _gather_bufs(num_stages: int) -> int:
    # The K/V (or q/dO) tiles are gathered through pointers loaded in the same iteration (indirect loads): the
    # pipeliner buffers them num_stages - 1 times, and at least once because MMA operands sit in shared memory.
    # Calibration: H200, forward fp32 G 4 d 128, block_t 2, 2 slots per step, 2 stages -> Triton reported
    # 287488 B = one [256, 128] K tile + one V tile + q + p + 768 B (attend_fwd_smem gives 287744).
    return max(1, num_stages - 1)


def attend_fwd_smem(cfg: AttendConfig, S: int, d: int, elem: int) -> int:
    """Forward program: the step's K and V tiles [N, d], the q tile [M, d] and the p tile [M, N] (A operand
    of the second MMA), with M = block_t * g_rows rows and N = block_t * spi * S columns."""
    M, N, D = cfg.block_t * cfg.g_rows, cfg.block_t * cfg.spi * next_pow2(S), next_pow2(d)
    return (2 * N * D * _gather_bufs(cfg.num_stages) + M * D + M * N) * elem + SMEM_SLACK


def attend_dq_smem(cfg: AttendConfig, S: int, d: int, elem: int) -> int:
    """dq/dw program: K and V tiles [N, d] per slot (N = block_t * S), q and dO [M, d], the ds tile [M, N]."""
    M, N, D = cfg.block_t * cfg.g_rows, cfg.block_t * next_pow2(S), next_pow2(d)
    return (2 * N * D * _gather_bufs(cfg.num_stages) + 2 * M * D + M * N) * elem + SMEM_SLACK


def dkdv_smem(cfg: DkdvConfig, G: int, S: int, d: int, elem: int) -> int:
    """dk/dv program: the chunk's K and V [S, d] (loaded once), gathered q and dO rows [R, d] per step
    (R = block_e * G rows), and p^T, ds^T [R, S] as MMA operands."""
    R, Sp, D = cfg.block_e * next_pow2(G), next_pow2(S), next_pow2(d)
    return (2 * Sp * D + 2 * R * D * _gather_bufs(cfg.num_stages) + 2 * R * Sp) * elem + SMEM_SLACK


def select_smem(cfg: SelectConfig, elem: int) -> int:
    """Selection program: r and landmark tiles [BQ + BC, BDR] per stage (direct loads, counted num_stages
    times: the conservative side), plus a [BQ, BC] fp32 score tile for layout changes in the merge."""
    return (cfg.block_q + cfg.block_c) * cfg.block_dr * elem * cfg.num_stages + \
        cfg.block_q * cfg.block_c * 4 + SMEM_SLACK


def _halvings(n: int, floor: int = 1):
    out = [n]
    while out[-1] // 2 >= floor:
        out.append(out[-1] // 2)
    return out


def _dedupe(cfgs):
    return list(dict.fromkeys(cfgs))


def attend_candidates(G: int, S: int, d: int, kind: str = "fwd") -> list[AttendConfig]:
    """The tuned forward ("fwd") or dq ("dq") config, then smaller ones: fewer stages, fewer slots per step
    (forward only), fewer tokens per program (each token's rows then pad up to 16)."""
    base = attend_config(G, S, d)
    g_pad = next_pow2(G)
    out = []
    for bt in _halvings(base.block_t):
        for spi in (_halvings(base.spi) if kind == "fwd" else [base.spi]):
            for st in range(base.num_stages, 0, -1):
                out.append(replace(base, block_t=bt, g_rows=max(g_pad, 16 // bt), spi=spi, num_stages=st))
    return _dedupe(out)


def dkdv_candidates(G: int, S: int, d: int) -> list[DkdvConfig]:
    """Tuned dk/dv config, then fewer stages and fewer gathered rows per step (never below the 16 rows the MMA
    needs as its inner dimension)."""
    base = dkdv_config(G, S, d)
    floor = max(1, 16 // next_pow2(G))
    return _dedupe([replace(base, block_e=be, num_stages=st) for be in _halvings(base.block_e, floor)
                    for st in range(base.num_stages, 0, -1)])


def select_candidates(dr: int, topk: int, T: int) -> list[SelectConfig]:
    """Tuned selection config, then fewer stages, a shorter dr step, fewer landmarks and queries per tile."""
    base = select_config(dr, topk, T)
    out = [replace(base, num_stages=st) for st in range(base.num_stages, 0, -1)]
    for bdr in _halvings(base.block_dr, 16):
        for bc in _halvings(base.block_c, 16):
            for bq in _halvings(base.block_q, 16):
                out.append(replace(base, block_q=bq, block_c=bc, block_dr=bdr, num_stages=1))
    return _dedupe(out)


def fit(candidates: Sequence, need: Callable[[object], int], limit: int | None) -> list:
    """`candidates` from the first whose estimated need fits `limit` (all of them when limit is None). When no
    estimate fits, only the smallest candidate is kept: it is still tried, since the estimate may be pessimistic."""
    if limit is None:
        return list(candidates)
    for i, cfg in enumerate(candidates):
        if need(cfg) <= limit:
            return list(candidates[i:])
    return [min(candidates, key=need)]


# the RAMBA_HSA_<NAME> knobs (_override, smem_limit) each kind reads: a change of any of them re-chooses
_ATTEND_KNOBS = tuple(f"RAMBA_HSA_{n}" for n in ("BLOCK_T", "WARPS", "STAGES", "UNROLL", "SPI", "SMEM"))
_KNOBS = {"fwd": _ATTEND_KNOBS, "dq": _ATTEND_KNOBS,
          "dkdv": tuple(f"RAMBA_HSA_{n}" for n in ("BLOCK_E", "SEG", "DKDV_WARPS", "DKDV_STAGES", "SMEM")),
          "select": tuple(f"RAMBA_HSA_{n}" for n in ("SEL_BQ", "SEL_BC", "SEL_BDR", "SEL_WARPS", "SEL_STAGES",
                                                     "SEL_F32", "SMEM"))}

_CHOOSERS = {   # kind -> (candidates(*shape), smem(cfg, *shape, elem))
    "fwd": (lambda G, S, d: attend_candidates(G, S, d, "fwd"), lambda c, G, S, d, e: attend_fwd_smem(c, S, d, e)),
    "dq": (lambda G, S, d: attend_candidates(G, S, d, "dq"), lambda c, G, S, d, e: attend_dq_smem(c, S, d, e)),
    "dkdv": (dkdv_candidates, dkdv_smem),
    "select": (select_candidates, lambda c, dr, topk, T, e: select_smem(c, e)),
}


def choose(kind: str, shape: tuple, elem: int, device) -> tuple:
    """Candidates of `kind` ("fwd", "dq", "dkdv": shape (G, S, d); "select": (dr, topk, T)) for inputs of `elem`
    bytes, starting at the first that fits `device`; cached, so a launch pays a dict lookup, not the search."""
    if kind == "select":
        shape = (shape[0], shape[1], 16 if shape[2] <= 16 else 17)      # select_config only asks "T <= 16?"
    knobs = tuple(map(os.environ.get, _KNOBS[kind]))
    return _choose(kind, tuple(shape), elem, smem_limit(device), knobs)


@functools.lru_cache(maxsize=256)
def _choose(kind, shape, elem, limit, knobs):
    cands, need = _CHOOSERS[kind]
    return tuple(fit(cands(*shape), lambda c: need(c, *shape, elem), limit))


_FIT_CACHE: dict = {}


def run_fitting(key, candidates: Sequence, launch: Callable, what: str):
    """launch(cfg) with the first candidate the device accepts: Triton raises OutOfResources (before launching
    anything) when a config's real shared memory exceeds the limit; the next candidate is tried and the one that
    worked is remembered under `key`. Raises DoesNotFitError when none fits."""
    from triton.runtime.errors import OutOfResources
    key = (key, tuple(candidates))
    start = _FIT_CACHE.get(key, 0)
    err = None
    for i in range(start, len(candidates)):
        try:
            out = launch(candidates[i])
        except OutOfResources as e:
            err = e
            continue
        _FIT_CACHE[key] = i
        return out
    raise DoesNotFitError(f"{what}: no launch configuration fits this device ({err}); use bf16/fp16 inputs, a "
                          "smaller head dim or chunk size")
