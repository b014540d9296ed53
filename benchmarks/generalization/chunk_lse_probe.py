"""In-chunk attention mass at the first answer position: per HSA layer and selected chunk, the logsumexp of the
query's logits over the chunk's S keys (mean and min over query heads), the chunk's fusion weight, and whether it
holds the queried needle (T), another needle (o) or filler (.). A softmax sink of constant c (config sm_n = c)
takes a share 1 / (1 + exp(lse - ln c)) of that chunk's mass, so this says what a given sm_n does to a checkpoint.
CPU, fp32, task seed 101, depths spread over (0, 1):

    python -P benchmarks/generalization/chunk_lse_probe.py checkpoints/ramba-tiny --task niah_multikey_1 --length 4096 --samples 4
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from needle_diagnostics import needle_chunks  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--task", default="niah_multikey_1")
    ap.add_argument("--length", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=4)
    a = ap.parse_args(argv)
    from ramba import hsa
    from ramba.tasks import get_task
    from ramba.tasks.tokenizers import ByteTokenizer
    from ramba.train.checkpoint import load_model_dir
    model = load_model_dir(a.checkpoint, device="cpu").eval()
    S = model.cfg.chunk_size
    seen, at = [], [0]
    plain = hsa.HSALayer.forward

    def recording(self, x, mem_k, mem_v, indices, weights, attend):
        t = at[0]
        if mem_k.shape[1] and x.shape[1] > t:
            q = self.q_proj(self.norm(x))[0, t].view(self.cfg.hsa_heads, self.cfg.hsa_head_dim).float()  # [Hq, dh]
            lse = []
            for c in indices[0, t, 0].tolist():                                   # group 0 (tiny: one group)
                k = mem_k[0, c * S:(c + 1) * S, 0].float() if c >= 0 else None   # [S, dh]
                lse.append(None if k is None else torch.logsumexp(q @ k.T / math.sqrt(q.shape[-1]), -1))
            seen.append((indices[0, t, 0].tolist(), weights[0, t, 0].tolist(), lse))
        return plain(self, x, mem_k, mem_v, indices, weights, attend)

    hsa.HSALayer.forward = recording
    depths = [(i + 0.5) / a.samples for i in range(a.samples)]
    for s in get_task(a.task).generate([a.length], depths, 1, 101, ByteTokenizer()):
        m = s.meta
        prompt = np.asarray(s.prompt_ids(), dtype=np.int64)
        at[0] = len(prompt) - 1
        spans = [needle_chunks(p, n, S) for p, n in zip(m["needle_positions"], m["needle_tokens"])]
        nv = int(m.get("num_v", 1))
        target, others = set().union(*spans[:nv]), set().union(*spans[nv:])
        seen.clear()
        with torch.no_grad():
            model(torch.as_tensor(prompt)[None], reset_phase=model.reset_phase_for(len(prompt)))
        for layer, (ids, w, lse) in enumerate(seen):
            cells = [f"{'T' if c in target else 'o' if c in others else '.'}{wk:.2f}:{l.mean():.1f}[{l.min():.1f}]"
                     for c, wk, l in zip(ids, w, lse) if l is not None]
            print(f"depth {s.depth:.2f} layer {layer}  (kind weight:lse mean[min])  " + " ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
