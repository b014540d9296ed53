"""Loss and the retrieval diagnostics of training-notes.md, from one forward pass.

loss = lm_weight * CE(all targets) + answer_weight * CE(answer targets)
       + retrieval_weight * mean(-log(fusion weight on the source chunk)) over answer targets copied from a chunk
       + selection_weight * mean(CE(source chunk | scores <r_t, l_c> / sqrt(dr) of every visible chunk)) over the same.
Diagnostics at answer targets whose source byte lies in a complete, visible chunk: is that chunk among the
selected top-k (any KV group), and how much fusion weight it gets (mean over KV groups).

The retrieval term supervises which selected chunk an answer byte is read from (training rows know it): without
it the fusion weights of ramba-tiny v2 spread over every needle-like chunk (0.16 on the queried needle against
0.50 on the others, benchmarks/generalization/needle_diagnostics.py) and the copied value is a blend. It has no
gradient where the source chunk is not selected (weight 0), which is where UUID keys fail (the queried needle is
in the top-k in 45% of niah_multikey_3 samples at 4K, and 0/10 are right at 64K). The selection term ranks the
source chunk against every visible chunk, selected or not, so that case gets a gradient too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ramba.kernels.hsa.reference import visible_chunk_count
from ramba.train.data import Batch


def split_aux(aux) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(indices, weights) [B, T, Hkv, K] from the model's aux (a dict, or None for archs without HSA)."""
    if not aux:
        return None, None
    idx, w = aux.get("indices"), aux.get("weights")
    if isinstance(idx, (list, tuple)):       # one selection per upper group: diagnose the first
        idx, w = idx[0], w[0]
    return idx, w


# floor of the retrieval term's weight: a source chunk outside the top-k (weight 0) costs a constant, no gradient
RETRIEVAL_EPS = 1e-4


def loss_and_stats(logits: torch.Tensor, batch: Batch, answer_weight: float, lm_weight: float,
                   aux=None, chunk_size: int = 64, retrieval_weight: float = 0.0,
                   retrieval_positions: str = "all", selection_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    B, T, V = logits.shape
    ce = F.cross_entropy(logits.float().reshape(B * T, V), batch.targets.reshape(B * T),
                         reduction="none").view(B, T)                       # [B, T]
    lm = ce.mean()
    ans_mask = batch.answer
    n_ans = int(ans_mask.sum())
    ans = ce[ans_mask].mean() if n_ans else ce.new_zeros(())
    loss = lm_weight * lm + answer_weight * ans
    first_only = retrieval_positions == "first"
    ret = source_chunk_nll(batch, aux, chunk_size, first_only=first_only) if retrieval_weight else None
    if ret is not None:
        loss = loss + retrieval_weight * ret
    sel = selection_nll(batch, aux, chunk_size, first_only=first_only) if selection_weight else None
    if sel is not None:
        loss = loss + selection_weight * sel[0]
    with torch.no_grad():
        stats = {"loss": float(loss), "lm_ce": float(lm), "answer_ce": float(ans)}
        if ret is not None:
            stats["retrieval_nll"] = float(ret)
        stats.update(answer_accuracy(logits, batch))
        stats.update(retrieval_stats(batch, aux, chunk_size, selection=None if first_only else sel))
    return loss, stats


@torch.no_grad()
def answer_accuracy(logits: torch.Tensor, batch: Batch) -> dict:
    """digit_acc: argmax == target over answer bytes; exact: rows whose answer bytes are all right."""
    correct = logits.argmax(-1) == batch.targets                            # [B, T]
    mask = batch.answer
    if not mask.any():
        return {}
    per_row_wrong = (~correct & mask).sum(-1)                               # [B]
    has = mask.any(-1)
    return {"digit_acc": float(correct[mask].float().mean()),
            "exact": float(((per_row_wrong == 0) & has).float().sum() / has.float().sum())}


def _visible_sources(batch: Batch, chunk_size: int):
    """(ok [B, T]: answer targets whose source chunk is complete and visible, src_chunk [B, T]: that chunk's id)."""
    src = batch.source                                                      # [B, T]
    T = src.shape[1]
    t = torch.arange(T, device=src.device)[None, :]
    src_chunk = torch.div(src, chunk_size, rounding_mode="floor")
    # visible: the source chunk is complete before the query token (t >= (c + 1) * S)
    return batch.answer & (src >= 0) & (t >= (src_chunk + 1) * chunk_size), src_chunk


def _source_hits(batch: Batch, idx: torch.Tensor, chunk_size: int):
    """(ok [B, T] as _visible_sources, hit [B, T, Hkv, K]: slots holding the source chunk)."""
    ok, src_chunk = _visible_sources(batch, chunk_size)
    return ok, idx == src_chunk[:, :, None, None]


def first_of_copies(source: torch.Tensor) -> torch.Tensor:
    """source [B, T] (row position each target copies, -1 none) -> [B, T] bool: targets that start a copy (the
    previous target does not copy the byte just before). Later bytes of a copy are cued by the bytes already
    written; the first is where the selector alone must find the right source."""
    prev = torch.nn.functional.pad(source[:, :-1], (1, 0), value=-1)
    return (source >= 0) & ~((prev >= 0) & (prev == source - 1))


def source_chunk_nll(batch: Batch, aux, chunk_size: int, first_only: bool = False) -> torch.Tensor | None:
    """Mean over copied answer targets (first_only: over the first byte of each copy) of -log(fusion weight on
    the source chunk, mean over KV groups); None when the batch has no such target (or the arch no HSA).
    Gradients reach the retrieval scores through the weights."""
    idx, w = split_aux(aux)
    if idx is None:
        return None
    ok, hit = _source_hits(batch, idx, chunk_size)
    if first_only:
        ok = ok & first_of_copies(batch.source)
    if not ok.any():
        return None
    weight = (w.float() * hit).sum(-1).mean(-1)                             # [B, T]
    return -torch.log(weight[ok].clamp(min=RETRIEVAL_EPS)).mean()


def selection_nll(batch: Batch, aux, chunk_size: int, first_only: bool = False) -> tuple[torch.Tensor, float] | None:
    """(mean CE of the source chunk against every visible chunk's score, per KV group then averaged; the share of
    (target, group) pairs where the source chunk scores highest) over copied answer targets (first_only: the first
    byte of each copy); None when there is no such target or the forward kept no queries/landmarks (no HSA, or a
    streamed memory). Scores as the selector ranks them: <r_t, l_c> / sqrt(dr) (the per-group bias cancels)."""
    if not aux or aux.get("queries") is None or aux.get("landmarks") is None:
        return None
    r, lmk = aux["queries"], aux["landmarks"]                              # [B, T, Hkv, dr], [B, C, Hkv, dr]
    C, dr = lmk.shape[1], lmk.shape[-1]
    ok, src_chunk = _visible_sources(batch, chunk_size)
    if first_only:
        ok = ok & first_of_copies(batch.source)
    if not ok.any() or C == 0:
        return None
    b_i, t_i = ok.nonzero(as_tuple=True)                                    # [N]
    with torch.autocast(r.device.type, enabled=False):
        s = torch.einsum("nhd,nchd->nhc", r[b_i, t_i].float(), lmk[b_i].float()) / dr ** 0.5   # [N, Hkv, C]
    visible = torch.arange(C, device=s.device)[None, :] < visible_chunk_count(t_i, chunk_size)[:, None]
    s = s.masked_fill(~visible[:, None, :], float("-inf"))
    target = src_chunk[b_i, t_i]                                            # [N]
    H = s.shape[1]
    nll = F.cross_entropy(s.reshape(-1, C), target.repeat_interleave(H))   # mean over (target, group)
    top1 = float((s.argmax(-1) == target[:, None]).float().mean())
    return nll, top1


@torch.no_grad()
def retrieval_stats(batch: Batch, aux, chunk_size: int, selection=None) -> dict:
    """selection: selection_nll's result over every copied target, when the caller has it (not computed twice)."""
    idx, w = split_aux(aux)
    if idx is None:
        return {}
    ok, hit = _source_hits(batch, idx, chunk_size)
    if not ok.any():
        return {}
    in_topk = hit.any(-1).float().mean(-1)                                  # [B, T]
    weight = (w.float() * hit).sum(-1).mean(-1)                             # [B, T]
    out = {"needle_in_topk": float(in_topk[ok].mean()), "needle_weight": float(weight[ok].mean())}
    sel = selection if selection is not None else selection_nll(batch, aux, chunk_size)
    if sel is not None:
        out.update(selection_nll=float(sel[0]), source_top1=sel[1])
    return out


@torch.no_grad()
def kind_stats(logits: torch.Tensor, batch: Batch) -> dict:
    """Answer-byte accuracy per row kind (acc_passkey, acc_copy, ...)."""
    correct = (logits.argmax(-1) == batch.targets) & batch.answer               # [B, T]
    out = {}
    for kind in sorted(set(batch.kinds)):
        rows = torch.tensor([k == kind for k in batch.kinds], device=correct.device)
        n = batch.answer[rows].sum()
        if int(n):
            out[f"acc_{kind}"] = float(correct[rows].sum() / n)
    return out
