"""Loss and the retrieval diagnostics of training-notes.md, from one forward pass.

loss = lm_weight * CE(all targets) + answer_weight * CE(answer targets)
       + retrieval_weight * mean(-log(fusion weight on the source chunk)) over answer targets copied from a chunk
       + selection_weight * mean(CE(source chunk | scores <r_t, l_c> / sqrt(dr) of every visible chunk)) over the same
         (with data.selection_negatives: also every chunk of the batch's other rows and of a queue of earlier ones).
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
                   retrieval_positions: str = "all", selection_weight: float = 0.0,
                   negatives: torch.Tensor | None = None,
                   negative_rows: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
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
    sel = selection_nll(batch, aux, chunk_size, first_only=first_only, negatives=negatives,
                        negative_rows=negative_rows) if selection_weight else None
    if sel is not None:
        loss = loss + selection_weight * sel[0]
    with torch.no_grad():
        stats = {"loss": float(loss), "lm_ce": float(lm), "answer_ce": float(ans)}
        if ret is not None:
            stats["retrieval_nll"] = float(ret)
        stats.update(answer_accuracy(logits, batch))
        own_only = negative_rows is None or not bool(negative_rows.any())   # the logged CE: own-row chunks only
        stats.update(retrieval_stats(batch, aux, chunk_size, selection=sel if own_only and not first_only else None))
        if sel is not None and not own_only:
            stats["selection_nll_negatives"] = float(sel[0])
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


def selection_nll(batch: Batch, aux, chunk_size: int, first_only: bool = False,
                  negatives: torch.Tensor | None = None,
                  negative_rows: torch.Tensor | None = None) -> tuple[torch.Tensor, float] | None:
    """(mean CE of the source chunk against every visible chunk's score, per KV group then averaged; the share of
    (target, group) pairs where the source chunk scores highest among its own row's visible chunks) over copied
    answer targets (first_only: the first byte of each copy); None when there is no such target or the forward kept
    no queries/landmarks (no HSA, or a streamed memory). Scores as the selector ranks them: <r_t, l_c> / sqrt(dr)
    (the per-group bias cancels).
    negative_rows [B] bool: targets of these rows also rank their source chunk against every chunk of the batch's
    other rows and against `negatives` [M, Hkv, dr] (landmarks of earlier batches, no gradient): other documents'
    chunks are wrong answers by construction, so a 1K-token row meets the hundreds of distractors of a 64K one."""
    if not aux or aux.get("queries") is None or aux.get("landmarks") is None:
        return None
    r, lmk = aux["queries"], aux["landmarks"]                              # [B, T, Hkv, dr], [B, C, Hkv, dr]
    B, C, H, dr = lmk.shape
    ok, src_chunk = _visible_sources(batch, chunk_size)
    if first_only:
        ok = ok & first_of_copies(batch.source)
    if not ok.any() or C == 0:
        return None
    b_i, t_i = ok.nonzero(as_tuple=True)                                    # [N]
    with torch.autocast(r.device.type, enabled=False):
        q = r[b_i, t_i].float()                                             # [N, Hkv, dr]
        s = torch.einsum("nhd,nchd->nhc", q, lmk[b_i].float()) / dr ** 0.5  # [N, Hkv, C]
    visible = torch.arange(C, device=s.device)[None, :] < visible_chunk_count(t_i, chunk_size)[:, None]
    s = s.masked_fill(~visible[:, None, :], float("-inf"))
    target = src_chunk[b_i, t_i]                                            # [N]
    top1 = float((s.argmax(-1) == target[:, None]).float().mean())
    if negative_rows is not None and bool(negative_rows.any()):
        with torch.autocast(r.device.type, enabled=False):
            other = torch.einsum("nhd,mhd->nhm", q, lmk.float().reshape(B * C, H, dr)) / dr ** 0.5   # [N, Hkv, B*C]
            row_of = torch.arange(B * C, device=s.device) // C                 # [B*C]
            use = negative_rows[b_i]                                        # [N]
            other = other.masked_fill(~(use[:, None] & (row_of[None, :] != b_i[:, None]))[:, None, :], float("-inf"))
            parts = [s, other]
            if negatives is not None and negatives.shape[0]:
                old = torch.einsum("nhd,mhd->nhm", q, negatives.float()) / dr ** 0.5             # [N, Hkv, M]
                parts.append(old.masked_fill(~use[:, None, None], float("-inf")))
        s = torch.cat(parts, -1)                                            # the source chunk stays at index < C
    nll = F.cross_entropy(s.reshape(-1, s.shape[-1]), target.repeat_interleave(H))   # mean over (target, group)
    return nll, top1


class LandmarkQueue:
    """The landmarks of the last `size` chunks seen in training (all rows, detached, fp32): negatives for the
    selection term beyond the current batch (a MoCo-style queue: a few steps stale, no gradient)."""

    def __init__(self, size: int):
        self.size, self.items = size, None                                   # [M, Hkv, dr]

    def get(self) -> torch.Tensor | None:
        return self.items

    def push(self, landmarks: torch.Tensor) -> None:
        """landmarks [B, C, Hkv, dr] of the batch just trained on; the oldest fall out."""
        new = landmarks.detach().float().reshape(-1, *landmarks.shape[2:])
        self.items = new if self.items is None else torch.cat([new, self.items])
        self.items = self.items[:self.size]


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
