"""How sharp chunk selection is, as the number of distractor chunks grows: at the first answer position, every
visible chunk's retrieval score (r . landmark), the rank of the best chunk of the queried needle, whether it is in
the top-k, its margin over the other chunks in units of their spread, and its raw score gap to the best other
chunk, and the fusion weight the model puts on the needle's chunks (against chance, their share of the top-k),
per length. With a fixed margin m (in
standard deviations) among N distractors, about N * P(z > m) chunks outrank the target, so the length at which it
leaves the top-k follows from the margin at short lengths. CPU, fp32, task seed 101, depths spread over (0, 1):

    python -P benchmarks/generalization/selection_rank_probe.py checkpoints/ramba-tiny \
        --tasks niah_multikey_3,niah_multikey_1 --lengths 4096,16384 --samples 8 --out FILE.json
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from needle_diagnostics import needle_chunks  # noqa: E402
from probe_common import load_cpu_model, probe_args, probe_samples, write_probe_record  # noqa: E402


def probe(model, sample, S: int) -> dict:
    from ramba.hsa import visible_chunk_count
    m = sample.meta
    prompt = np.asarray(sample.prompt_ids(), dtype=np.int64)
    L = len(prompt)
    with torch.no_grad():
        _, aux = model(torch.as_tensor(prompt)[None], return_aux=True, reset_phase=model.reset_phase_for(L))
    r = aux["queries"][0, L - 1].float()                                  # [Hkv, dr]
    lmk = aux["landmarks"][0].float()                                     # [C, Hkv, dr]
    visible = int(visible_chunk_count(torch.tensor([L - 1]), S)[0])      # the selection's own visibility rule
    scores = torch.einsum("chd,hd->ch", lmk[:visible], r)[:, 0].numpy()   # [C] group 0 (tiny: one group)
    nv = int(m.get("num_v", 1))
    spans = [needle_chunks(p, n, S) for p, n in zip(m["needle_positions"], m["needle_tokens"])]
    target = sorted(c for c in set().union(*spans[:nv]) if c < visible)
    best = max(target, key=lambda c: scores[c])
    rest = np.delete(scores, target)
    idx = aux["indices"][0, L - 1, 0].tolist()                            # [K] the model's own selection
    w = aux["weights"][0, L - 1, 0].float()                               # [K] its fusion weights
    fusion_weight = float(sum(w[i] for i, c in enumerate(idx) if c in target))
    chance_weight = sum(c in target for c in idx) / max(1, sum(c >= 0 for c in idx))   # uniform over the top-k
    rank = int((rest > scores[best]).sum()) + 1
    # gap_to_best_other < 0: some other chunk outranks it; score_sd: how far apart the other chunks' scores lie
    return dict(task=sample.task, length=L, depth=sample.depth, chunks=visible, rank=rank,
                margin_sd=round(float((scores[best] - rest.mean()) / (rest.std() + 1e-9)), 2),
                score=round(float(scores[best]), 3), gap_to_best_other=round(float(scores[best] - rest.max()), 3),
                score_sd=round(float(rest.std()), 3), fusion_weight=round(fusion_weight, 3),
                chance_weight=round(chance_weight, 3),
                target_chunks=len(target))


def main(argv=None) -> int:
    a = probe_args(argv, samples=8)
    model = load_cpu_model(a.checkpoint)
    S, k = model.cfg.chunk_size, model.cfg.topk
    rows, t0 = [], time.time()
    print("| task | length | chunks | median rank | in top-k | margin (SD) | gap | fusion weight | chance |",
          flush=True)
    for name in a.tasks.split(","):
        for length in (int(x) for x in a.lengths.split(",")):
            rs = [probe(model, s, S) for s in probe_samples(name, length, a.samples)]
            rows += rs
            print(f"| {name} | {length} | {rs[0]['chunks']} | {np.median([r['rank'] for r in rs]):.0f} | "
                  f"{np.mean([r['rank'] <= k for r in rs]):.0%} | {np.median([r['margin_sd'] for r in rs]):.2f} | "
                  f"{np.median([r['gap_to_best_other'] for r in rs]):.2f} | {np.mean([r['fusion_weight'] for r in rs]):.2f} | "
                  f"{np.mean([r['chance_weight'] for r in rs]):.2f} |", flush=True)
    write_probe_record(a.out, "selection-rank-probe", a.checkpoint, rows, t0, topk=k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
