"""Locality of chunk selections: how much neighbouring tokens share the chunks they select (issue 13).

The HSA forward gathers every token's K chunks on its own; chunk loads can only be shared (through L1/L2, or a
per-tile dedup) when neighbouring tokens select the same chunks. These helpers measure that on real indices
(e.g. the shipped model's own selections) and build benchmark indices with the same locality:

  locality_stats(idx, S)        share with the previous token, distinct chunks per block of tokens, recency
  tile_indices(idx, L, S)       a captured [T, K] pattern cut or repeated to L tokens (chunk ids shifted per copy)
  synth_indices(L, K, S, share) each slot keeps the previous token's chunk with probability `share`, else a
                                fresh uniform draw among the visible chunks

Indices follow the kernels' contract: [T, K] (or [B, T, Hkv, K]) int64, one row per token at absolute position
t (row t sees chunk c iff t >= (c + 1) * S), descending ids, -1 for invalid slots.
"""
from __future__ import annotations

import torch


def _as_rows(idx: torch.Tensor) -> torch.Tensor:
    """[T, K] view of one sequence and KV group: [B, T, Hkv, K] is accepted for B == Hkv == 1."""
    if idx.dim() == 4:
        if idx.shape[0] != 1 or idx.shape[2] != 1:
            raise ValueError(f"locality: pass one sequence and KV group ([1, T, 1, K]), got {tuple(idx.shape)}")
        idx = idx[0, :, 0]
    if idx.dim() != 2:
        raise ValueError(f"locality: indices must be [T, K], got {tuple(idx.shape)}")
    return idx.long()


def distinct_per_block(idx: torch.Tensor, block: int) -> torch.Tensor:
    """Distinct valid chunk ids among the slots of each aligned block of `block` tokens -> [T // block] int64."""
    idx = _as_rows(idx)
    T, K = idx.shape
    nb = T // block
    if nb == 0:
        return torch.zeros(0, dtype=torch.int64, device=idx.device)
    flat = idx[:nb * block].reshape(nb, block * K).sort(dim=-1).values      # -1 (invalid) sorts first
    new = torch.ones_like(flat, dtype=torch.bool)
    new[:, 1:] = flat[:, 1:] != flat[:, :-1]
    return (new & (flat >= 0)).sum(-1)


def locality_stats(idx: torch.Tensor, chunk_size: int, blocks=(16, 64, 128), min_pos: int | None = None,
                   recent: int = 32) -> dict:
    """Locality statistics of indices [T, K] (row t = absolute position t).

    Only rows with all K chunks visible (t >= K * S, or `min_pos`) are counted, so the short lists at the start
    do not count as sharing. Returns a JSON-ready dict:
      share_prev        mean over rows of |chunks(t) & chunks(t-1)| / |chunks(t)| (valid slots only)
      same_as_prev      fraction of rows whose valid chunk set equals the previous row's
      distinct_per_<b>  mean distinct chunks per aligned block of b tokens; reuse_<b> = valid slots / distinct
                        (how many times each loaded chunk would be used if a b-token tile loaded it once)
      newest_frac       fraction of valid slots on the newest visible chunk; recent_frac the fraction within
                        the `recent` newest; mean_distance the mean of (visible - 1 - id) in chunks
      valid_frac        fraction of slots that are valid over the counted rows
    """
    idx = _as_rows(idx)
    T, K = idx.shape
    S = int(chunk_size)
    start = K * S if min_pos is None else int(min_pos)
    start = max(1, min(start, T))
    cur, prev = idx[start:], idx[start - 1:T - 1]
    valid = cur >= 0
    n_valid = valid.sum(-1)
    rows = n_valid > 0
    out: dict = {"tokens": T, "K": K, "chunk_size": S, "rows_counted": int(rows.sum()), "first_row": start}
    if int(rows.sum()) == 0:
        return out
    hit = ((cur[:, :, None] == prev[:, None, :]) & (prev[:, None, :] >= 0)).any(-1) & valid      # [n, K]
    frac = hit.sum(-1).float() / n_valid.clamp(min=1).float()
    out["share_prev"] = float(frac[rows].mean())
    same = (hit.sum(-1) == n_valid) & (n_valid == (prev >= 0).sum(-1))
    out["same_as_prev"] = float(same[rows].float().mean())
    out["valid_frac"] = float(valid.float().mean())
    pos = torch.arange(start, T, device=idx.device)
    vis = torch.div(pos, S, rounding_mode="floor")[:, None]                                   # visible chunks
    dist = (vis - 1 - cur).float()
    out["newest_frac"] = float((dist[valid] == 0).float().mean())
    out["recent_frac"] = float((dist[valid] < recent).float().mean())
    out["recent"] = int(recent)
    out["mean_distance"] = float(dist[valid].mean())
    for b in blocks:
        sub = idx[start - start % b:]                                     # aligned blocks from the first counted row
        d = distinct_per_block(sub, b)
        if d.numel() == 0:
            continue
        slots = (sub[:d.numel() * b] >= 0).reshape(d.numel(), b * K).sum(-1)
        keep = d > 0
        out[f"distinct_per_{b}"] = float(d[keep].float().mean())
        out[f"reuse_{b}"] = float(slots[keep].sum() / d[keep].sum())
    return out


def tile_indices(idx: torch.Tensor, length: int, chunk_size: int) -> torch.Tensor:
    """A captured pattern [T0, K] cut (length <= T0) or repeated to `length` rows: copy j of the pattern covers
    rows j*T0 .. and has its chunk ids shifted by j * T0 / S, so every id stays visible (id < t // S) and the
    sharing between neighbouring rows is the captured one. T0 must be a multiple of chunk_size."""
    idx = _as_rows(idx)
    T0, K = idx.shape
    if length <= T0:
        return idx[:length].clone()
    if T0 % chunk_size:
        raise ValueError(f"tile_indices: pattern length {T0} is not a multiple of the chunk size {chunk_size}")
    reps = -(-length // T0)
    shift = (torch.arange(reps, device=idx.device) * (T0 // chunk_size)).view(reps, 1, 1)
    tiled = torch.where(idx[None] >= 0, idx[None] + shift, idx[None]).reshape(reps * T0, K)
    return tiled[:length].contiguous()


def synth_indices(length: int, K: int, chunk_size: int, share: float, generator: torch.Generator | None = None,
                  device="cpu") -> torch.Tensor:
    """[length, K] indices where each slot keeps the previous row's chunk with probability `share` and is
    otherwise a fresh uniform draw among the chunks visible at that row (rows that see at most K chunks
    redraw every slot and invalidate the slots past the visible count). Draws are with replacement, so a row may
    hold a duplicate slot (rare once hundreds of chunks are visible). Sorted descending, -1 invalid."""
    t = torch.arange(length, device=device)
    n = torch.div(t, chunk_size, rounding_mode="floor")[:, None]                            # [L, 1] visible
    u = torch.rand(length, K, device=device, generator=generator)
    draw = (torch.rand(length, K, device=device, generator=generator) * n).long()
    slot = torch.arange(K, device=device)[None, :]
    refresh = (u >= share) | (n <= K)               # [L, K]; lineages start once K chunks are visible
    refresh[0] = True
    last = torch.where(refresh, t[:, None], torch.zeros_like(t)[:, None]).cummax(dim=0).values
    idx = draw.gather(0, last)                                                               # value at last refresh
    idx = torch.where(slot < n, idx, torch.full_like(idx, -1))
    return idx.sort(dim=-1, descending=True).values
