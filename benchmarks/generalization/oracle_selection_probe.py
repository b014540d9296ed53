"""How much of multi-needle failure is chunk selection and fusion: the teacher-forced answer with the model's own
chunks, with the queried needle's chunks forced into its top-k (fusion weights still its own), and with only the
queried needle's chunks selected at the answer positions (all fusion weight on them). If the last is right where
the first fails, the upper layers can copy the value and what is missing is a selection score that follows the asked
key. CPU, fp32, task seed 101, depths spread over (0, 1), the evaluation's reset grid:

    python -P benchmarks/generalization/oracle_selection_probe.py checkpoints/ramba-tiny \
        --tasks niah_multikey_3,niah_multikey_1 --lengths 4096,16384 --samples 10 --out FILE.json
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

ARMS = ("own", "in_topk", "only_target")


def forced(own: torch.Tensor, scores: torch.Tensor, target: list[int], rows: slice, arm: str) -> torch.Tensor:
    """own indices [T, K] (-1 invalid), their scores [T, K] -> forced indices [T, K] for the answer rows."""
    idx = own.clone()
    K = idx.shape[-1]
    for t in range(rows.start, rows.stop):
        if arm == "only_target":
            ids = target[-K:]
        else:   # keep the model's best picks that are not the target, then add every target chunk
            keep = [int(c) for c, _ in sorted(zip(own[t].tolist(), scores[t].tolist()), key=lambda x: -x[1])
                    if c >= 0 and c not in target]
            ids = target[-K:] + keep[:max(0, K - len(target))]
        idx[t] = torch.tensor(ids + [-1] * (K - len(ids)), dtype=idx.dtype)
    return idx


def probe(model, sample, S: int) -> dict:
    m = sample.meta
    prompt = np.asarray(sample.prompt_ids(), dtype=np.int64)
    answer = np.asarray(sample.answer_ids, dtype=np.int64)
    L, A = len(prompt), len(answer)
    ids = torch.as_tensor(np.concatenate([prompt, answer[:-1]]))[None]             # [1, L + A - 1]
    phase = model.reset_phase_for(L)
    nv = int(m.get("num_v", 1))
    spans = [needle_chunks(p, n, S) for p, n in zip(m["needle_positions"], m["needle_tokens"])]
    target = sorted(set().union(*spans[:nv]))                                     # chunk ids, oldest first
    rows = slice(L - 1, L - 1 + A)                                                 # positions predicting the answer
    out = dict(task=sample.task, length=L, depth=sample.depth, target_chunks=len(target))
    with torch.no_grad():
        logits, aux = model(ids, return_aux=True, reset_phase=phase)
        for arm in ARMS:
            if arm != "own":
                f = forced(aux["indices"][0, :, 0], aux["scores"][0, :, 0], target, rows, arm)   # [T, K]
                logits = model(ids, forced_indices=f[None, :, None], reset_phase=phase)
            hit = (logits[0, rows].argmax(-1).numpy() == answer)                  # [A]
            out[arm] = dict(exact=bool(hit.all()), first=bool(hit[0]), bytes=round(float(hit.mean()), 3))
    return out


def main(argv=None) -> int:
    a = probe_args(argv, samples=10)
    model = load_cpu_model(a.checkpoint)
    S = model.cfg.chunk_size
    rows, t0 = [], time.time()
    print("| task | length | " + " | ".join(f"{arm} exact / bytes" for arm in ARMS) + " |", flush=True)
    for name in a.tasks.split(","):
        for length in (int(x) for x in a.lengths.split(",")):
            got = [probe(model, s, S) for s in probe_samples(name, length, a.samples)]
            rows += got
            cells = [f"{np.mean([r[arm]['exact'] for r in got]):.0%} / {np.mean([r[arm]['bytes'] for r in got]):.2f}"
                     for arm in ARMS]
            print(f"| {name} | {length} | " + " | ".join(cells) + " |", flush=True)
    write_probe_record(a.out, "oracle-selection-probe", a.checkpoint, rows, t0, topk=model.cfg.topk,
                       convention="teacher-forced", arms=list(ARMS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
