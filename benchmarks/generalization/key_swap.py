"""Does the retrieval query encode WHICH key is asked? A key-swap probe on niah_multikey_1 (four needles "the
special magic number for KEY_i is VALUE_i" in an essay; the question asks one key). CPU, fp32.

    python benchmarks/generalization/key_swap.py checkpoints/ramba-tiny --samples 20 \
        --out benchmarks/records/generalization/cpu/key-swap-ramba-tiny.json

For each sample the question is rewritten to ask each of the four keys in turn (only the question changes; the
haystack and its needles stay byte-identical), and one forward over that prompt plus key j's own value
(teacher-forced) gives, at the position that predicts the value's first byte (the one after the leading space):
* W[j, i]: the fusion weight on needle i's chunks when key j is asked (summed over slots); also averaged over
  every value byte's position, and the teacher-forced accuracy of the value bytes (all, and the first: the one
  no copy of earlier value bytes can help with; chance among four values' first digits is ~0.25-0.3). If the query encoded
  the key, the weight would follow the asked needle: the diagonal share W[j, j] / sum_i W[j, i] would approach 1;
  0.25 is chance (four needles).
* the retrieval query vectors r_j at that position: their mean pairwise cosine (1.0 = the query ignores the key)
  and query_key_part, the mean |r_j - mean_j r_j| / |mean_j r_j| (the part of the query that follows the key);
* the landmarks, centred on the prompt's mean landmark: mean pairwise cosine among the four needle chunks', and
  among as many filler chunks' (the landmark side: do needle chunks with different keys look alike?);
* the raw selection scores q . landmark of each needle chunk: how much the asked needle's score exceeds the
  other needles' (a margin in score units; the softmax fusion turns it into weight).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from needle_diagnostics import needle_chunks      # the script's folder is on sys.path


def _swap_question(prompt: bytes, first_needle_end: int, asked: str, key: str) -> bytes:
    """The prompt with `asked` replaced by `key` after the last needle (the question only)."""
    head, tail = prompt[:first_needle_end], prompt[first_needle_end:]
    return head + tail.replace(asked.encode(), key.encode())


def probe(model, sample, S: int) -> dict:
    m = sample.meta
    prompt = bytes(int(t) for t in sample.prompt_ids())
    keys, asked = m["keys"], m["queries"][0]
    spans = [needle_chunks(p, n, S) for p, n in zip(m["needle_positions"], m["needle_tokens"])]
    needle_end = max(p + n for p, n in zip(m["needle_positions"], m["needle_tokens"]))
    captured = {}
    real_queries = model.retrieval.queries

    def queries(x):
        r = real_queries(x)
        captured["r"] = r
        return r

    model.retrieval.queries = queries
    import re
    values = [re.search(rb"(\d{7}|[0-9a-f-]{36})\.?$", prompt[p:p + n]).group(1) for p, n in
              zip(m["needle_positions"], m["needle_tokens"])]
    W, Wd, R, margins, digit_acc, first_acc = [], [], [], [], [], []
    lmk = None
    try:
        for key, value in zip(keys, values):
            q = _swap_question(prompt, needle_end, asked, key)
            answer = b" " + value                                              # the asked key's own value
            ids = np.frombuffer(q + answer[:-1], dtype=np.uint8).astype(np.int64)
            L = len(q)
            with torch.no_grad():
                logits, aux = model(torch.as_tensor(ids)[None], return_aux=True, reset_phase=model.reset_phase_for(L))
            # position L - 1 predicts the leading space; L .. L + len(value) - 1 predict the value's bytes
            def weights_at(t):           # mean over KV groups (each selects its own chunks)
                per = []
                for h in range(aux["indices"].shape[2]):
                    idx, w = aux["indices"][0, t, h].tolist(), aux["weights"][0, t, h].tolist()
                    per.append([sum(x for c, x in zip(idx, w) if c in sp) for sp in spans])
                return np.mean(per, axis=0).tolist()
            W.append(weights_at(L))                                           # the first value byte
            Wd.append(np.mean([weights_at(t) for t in range(L, L + len(value))], axis=0).tolist())
            pred = logits[0, L - 1:L - 1 + len(answer)].argmax(-1).tolist()
            digit_acc.append(float(np.mean([a == b for a, b in zip(pred[1:], answer[1:])])))
            first_acc.append(float(pred[1] == answer[1]))                       # the value's first byte
            r = captured["r"][0, L].float().reshape(-1)                       # [Hkv * dr] the first value byte's query
            R.append(r)
            lmk = aux["landmarks"][0].float().reshape(aux["landmarks"].shape[1], -1)   # [C, Hkv * dr]
            # summed over KV groups: each group's score is its own q . landmark
            score = [max(float(lmk[c] @ r) for c in sp if c < lmk.shape[0]) for sp in spans]
            margins.append(score)
    finally:
        model.retrieval.queries = real_queries
    W = np.asarray(W)                                                         # [asked j, needle i]
    share = [W[j, j] / max(W[j].sum(), 1e-9) for j in range(len(keys))]
    Wd = np.asarray(Wd)
    share_digits = [Wd[j, j] / max(Wd[j].sum(), 1e-9) for j in range(len(keys))]
    Rm = torch.stack(R)
    Rn = torch.nn.functional.normalize(Rm, dim=-1)
    cos_q = (Rn @ Rn.T)[~torch.eye(len(keys), dtype=torch.bool)].mean().item()
    rel_var = ((Rm - Rm.mean(0)).norm(dim=-1) / Rm.mean(0).norm()).mean().item()   # key-dependent part of r
    needle_ids = sorted({min(sp) for sp in spans})
    # centred on the prompt's mean landmark: a shared offset would make every raw cosine ~1
    lm = torch.nn.functional.normalize(lmk - lmk.mean(0), dim=-1)
    all_needle = set().union(*spans)
    filler = [c for c in range(lmk.shape[0]) if c not in all_needle][:: max(1, lmk.shape[0] // 8)][:len(needle_ids)]

    def mean_cos(ids_):
        v = lm[ids_]
        c = v @ v.T
        return c[~torch.eye(len(ids_), dtype=torch.bool)].mean().item()

    sc = np.asarray(margins)                                                  # [asked j, needle i] raw scores
    margin = [sc[j, j] - max(sc[j, i] for i in range(len(keys)) if i != j) for j in range(len(keys))]
    return dict(index=sample.index, depth=sample.depth, W=np.round(W, 4).tolist(), diagonal_share=float(np.mean(share)),
                diagonal_share_all_value_bytes=float(np.mean(share_digits)), value_byte_acc_tf=float(np.mean(digit_acc)),
                first_byte_acc_tf=float(np.mean(first_acc)),
                needle_weight=float(W.sum(1).mean()), query_cosine=cos_q, query_key_part=rel_var,
                landmark_cosine_needles=mean_cos(needle_ids),
                landmark_cosine_filler=mean_cos(filler), score_margin=float(np.mean(margin)),
                score_spread=float(sc.std(axis=1).mean()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--length", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    from ramba.atomic import atomic_write_text
    from ramba.evals.env import git_sha
    from ramba.tasks import get_task
    from ramba.tasks.tokenizers import ByteTokenizer
    from ramba.train.checkpoint import load_model_dir
    torch.manual_seed(0)
    model = load_model_dir(a.checkpoint).eval()
    depths = [(i + 0.5) / a.samples for i in range(a.samples)]
    t0 = time.time()
    rows = [probe(model, s, model.cfg.chunk_size)
            for s in get_task("niah_multikey_1").generate([a.length], depths, 1, 101, ByteTokenizer())]
    keys = ("diagonal_share", "diagonal_share_all_value_bytes", "value_byte_acc_tf", "first_byte_acc_tf", "needle_weight", "query_cosine", "query_key_part", "landmark_cosine_needles", "landmark_cosine_filler",
            "score_margin", "score_spread")
    summary = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys}
    rec = dict(kind="key-swap", checkpoint=a.checkpoint, task="niah_multikey_1", length=a.length, task_seed=101,
               samples=len(rows), git_sha=git_sha(os.path.dirname(os.path.dirname(os.path.dirname(
                   os.path.abspath(__file__))))), torch=torch.__version__, device="cpu",
               wall_s=round(time.time() - t0, 1), summary=summary, rows=rows)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    atomic_write_text(a.out, json.dumps(rec, indent=1))
    print(json.dumps({"checkpoint": a.checkpoint, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
