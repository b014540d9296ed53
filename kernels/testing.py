"""Test helpers for kernels: relative-RMSE comparison and NaN-poisoned output allocation.

`assert_close` follows the relative RMSE rule (fla's `_testing.py` idea, own code): ||x - y|| / ||y|| must stay
under `ratio`, with a small absolute floor so an all-zero reference (e.g. the gradient of a chunk nobody
selected) does not divide by zero. `poison_outputs()` makes every kernel output allocated through
`new_output` start as NaN, so an element a kernel never writes fails the comparison loudly.
"""
from __future__ import annotations

import contextlib
import math

import torch

_POISON = False


def new_output(shape, dtype: torch.dtype, device) -> torch.Tensor:
    """Allocation used by the kernels for outputs they fully overwrite: uninitialised, or NaN while poisoned."""
    if _POISON and dtype.is_floating_point:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    if _POISON:  # integer outputs: a value no kernel writes on purpose
        return torch.full(shape, -7777, dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device)


@contextlib.contextmanager
def poison_outputs():
    """Inside the block, kernel outputs start as NaN (floats) / -7777 (ints) instead of whatever memory held."""
    global _POISON
    old, _POISON = _POISON, True
    try:
        yield
    finally:
        _POISON = old


def rel_rmse(x: torch.Tensor, ref: torch.Tensor) -> float:
    """||x - ref||_2 / ||ref||_2 in float64 (NaN if either holds a NaN)."""
    x = x.detach().double()
    ref = ref.detach().double()
    if not torch.isfinite(x).all() or not torch.isfinite(ref).all():
        return float("nan")
    num = (x - ref).pow(2).sum().sqrt().item()
    den = ref.pow(2).sum().sqrt().item()
    return num / max(den, 1e-12)


def assert_close(name: str, ref: torch.Tensor, tri: torch.Tensor, ratio: float, atol: float = 1e-6) -> None:
    """Relative RMSE of `tri` against `ref` must be <= ratio; tiny absolute errors (<= atol RMS) always pass."""
    assert ref.shape == tri.shape, f"{name}: shape {tuple(tri.shape)} != reference {tuple(ref.shape)}"
    assert torch.isfinite(tri.float()).all(), f"{name}: non-finite values (unwritten or overflowed elements)"
    x, y = tri.detach().double(), ref.detach().double()
    abs_rms = (x - y).pow(2).mean().sqrt().item() if y.numel() else 0.0
    err = rel_rmse(x, y)
    assert abs_rms <= atol or err <= ratio, f"{name}: relative RMSE {err:.3e} > {ratio:.1e} (abs RMS {abs_rms:.3e})"


def assert_within_torch_error(name: str, ref64: torch.Tensor, tri: torch.Tensor, torch_lowp: torch.Tensor,
                              factor: float = 2.0, floor: float = 1e-6) -> None:
    """flash-attention's rule: the kernel's error against an fp64/fp32 oracle may be at most `factor` times the
    error of the same math done by PyTorch in the kernel's low precision (plus a tiny floor)."""
    e_tri = (tri.double() - ref64.double()).pow(2).mean().sqrt().item()
    e_pt = (torch_lowp.double() - ref64.double()).pow(2).mean().sqrt().item()
    assert math.isfinite(e_tri), f"{name}: non-finite values"
    assert e_tri <= factor * e_pt + floor, f"{name}: RMS error {e_tri:.3e} > {factor} x torch low-precision {e_pt:.3e}"


def assert_topk_match(name: str, ref_idx: torch.Tensor, ref_score: torch.Tensor, idx: torch.Tensor,
                      score: torch.Tensor, tol: float) -> None:
    """Top-k selections must agree exactly, except where two candidates' scores lie within `tol` (a near-tie that
    rounding may break either way); scores must agree to `tol` wherever the chosen chunk is the same."""
    assert idx.shape == ref_idx.shape and idx.dtype == torch.int64, f"{name}: bad indices {idx.shape} {idx.dtype}"
    same = idx == ref_idx
    if not same.all():
        # rows with a different pick: the k-th best reference score must be within tol of the kernel's picks
        bad_rows = (~same).any(-1)
        kth_ref = torch.where(ref_idx >= 0, ref_score, torch.full_like(ref_score, float("inf"))).amin(-1)
        kth_tri = torch.where(idx >= 0, score, torch.full_like(score, float("inf"))).amin(-1)
        gap = (kth_ref - kth_tri).abs()[bad_rows]
        n_bad = int(bad_rows.sum())
        assert (gap <= tol).all(), f"{name}: {n_bad} rows pick different chunks with no near-tie (gap {gap.max():.3e})"
        frac = n_bad / bad_rows.numel()
        assert frac <= 0.01, f"{name}: {frac:.2%} of rows differ (near-ties only, but too many)"
    both = same & (idx >= 0)
    assert ((idx < 0) == (score == float("-inf"))).all(), f"{name}: invalid slots must score -inf"
    if both.any():
        err = (score[both] - ref_score[both]).abs().max().item()
        assert err <= tol, f"{name}: score error {err:.3e} > {tol:.1e}"
