"""lm-eval's loglikelihood_rolling through the `ramba` LM on CPU, against passkey prefill on the same machine.

    python benchmarks/lm/bench_rolling.py --out benchmarks/records [--model checkpoints/ramba-tiny]

The issue-11 workload: 6 documents of 1.6K bytes (here: consecutive 1600-byte slices of the packaged KJV corpus).
Measured in one process, alternating, so machine load hits both alike:
- rolling: RambaLM.loglikelihood_rolling on the 6 documents (its CPU default: one document per prefill; and
  packed: the 6 as one padded batch, the GPU default), tokens/s;
- passkey prefill: the runner's path (backend.consume of a 4K and an 8K passkey prompt; and of a 2K one, the
  documents' size class), tokens/s;
- token_by_token: the previous implementation (consume the prefix, then one step() per token) on one document,
  tokens/s and the largest |difference| of its log-likelihood from the rolling one.
Writes lm-rolling-cpu.json (machine header + rows); the load average is kept since the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from types import SimpleNamespace as Req


def git_sha() -> str:
    from pathlib import Path
    from ramba.evals.env import git_sha as sha
    return sha(Path(__file__).resolve().parents[2]) or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="checkpoints/ramba-tiny")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--docs", type=int, default=6)
    ap.add_argument("--doc-bytes", type=int, default=1600)
    args = ap.parse_args()
    import torch
    from ramba.evals.backends import LoglikelihoodMixin
    from ramba.evals.lm_eval_plugin import RambaLM
    from ramba.tasks import get_task
    from ramba.tasks.corpus import kjv_text

    text = kjv_text().encode()
    docs = [text[i * args.doc_bytes:(i + 1) * args.doc_bytes].decode("utf-8", "ignore") for i in range(args.docs)]
    n_tok = sum(len(d.encode()) for d in docs)
    lm = RambaLM(model=f"ramba:{args.model}", device="cpu", progress=False)
    be = lm.backend
    be.segment = 1 << 16   # the runner's ramba segment for passkey
    samples = list(get_task("passkey").generate([4096, 8192], [0.5], 1, 0, be.tokenizer))
    short = list(get_task("passkey").generate([2048], [0.5], 1, 0, be.tokenizer))   # the documents' size class

    def passkey_tok_s(samples=samples):
        out = []
        for s in samples:
            ids = s.prompt_ids()
            t = time.perf_counter()
            be.reset()
            be.consume(ids)
            out.append(len(ids) / (time.perf_counter() - t))
        return out

    def rolling():
        t = time.perf_counter()
        lls = lm.loglikelihood_rolling([Req(args=(d,)) for d in docs])
        return n_tok / (time.perf_counter() - t), lls

    rolling(), passkey_tok_s(), passkey_tok_s(short)   # warm-up: first-call costs (allocator, oneDNN primitives)
    roll, pk, pk2, lls, per_round = [], [], [], None, []
    for _ in range(args.rounds):   # back to back, so a change of machine load hits both sides of a round
        a = passkey_tok_s()
        r, lls = rolling()
        b = passkey_tok_s()
        roll.append(r)
        pk += a + b
        pk2 += passkey_tok_s(short)
        per_round.append(r / statistics.median(a + b))
    lm.pack_unshared = True      # the GPU layout: the 6 documents as one padded batch
    one = [rolling()[0] for _ in range(args.rounds)]
    lm.pack_unshared = False
    t = time.perf_counter()
    ref, _ = LoglikelihoodMixin.loglikelihood(be, lm.prefix_ids, list(docs[0].encode()))
    tbt = len(docs[0].encode()) / (time.perf_counter() - t)
    rows = [
        dict(section="rolling", docs=len(docs), tokens=n_tok, packed=False, tokens_per_s_median=round(statistics.median(roll)),
             tokens_per_s_all=[round(x) for x in roll]),
        dict(section="rolling", docs=len(docs), tokens=n_tok, packed=True, tokens_per_s_median=round(statistics.median(one)),
             tokens_per_s_all=[round(x) for x in one]),
        dict(section="passkey_prefill", lengths=[4096, 8192], segment=be.segment,
             tokens_per_s_median=round(statistics.median(pk)), tokens_per_s_all=[round(x) for x in pk]),
        dict(section="passkey_prefill", lengths=[2048], segment=be.segment,
             tokens_per_s_median=round(statistics.median(pk2)), tokens_per_s_all=[round(x) for x in pk2]),
        dict(section="token_by_token", tokens=len(docs[0].encode()), tokens_per_s=round(tbt, 1),
             loglikelihood=ref, rolling_loglikelihood=lls[0], abs_diff=abs(ref - lls[0])),
    ]
    ratio = statistics.median(roll) / statistics.median(pk)
    ratio2 = statistics.median(roll) / statistics.median(pk2)
    rec = dict(kind="lm-rolling-cpu", model=args.model,
               header=dict(machine=platform.machine(), processor=platform.processor(), cpus=os.cpu_count(),
                           threads=torch.get_num_threads(), torch=torch.__version__,
                           python=platform.python_version(), git_sha=git_sha(),
                           loadavg_1m_at_end=round(os.getloadavg()[0], 2),
                           date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
               rows=rows, rolling_over_passkey=round(ratio, 3), rolling_over_passkey_2k=round(ratio2, 3),
               rolling_over_passkey_per_round=[round(x, 3) for x in per_round],
               rolling_over_passkey_per_round_median=round(statistics.median(per_round), 3),
               targets=dict(rolling_tokens_per_s=">= 1000", rolling_over_passkey=">= 0.25"))
    print(json.dumps(rec, indent=1))
    os.makedirs(args.out, exist_ok=True)
    from ramba.atomic import atomic_write_text
    atomic_write_text(os.path.join(args.out, "lm-rolling-cpu.json"), json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
