"""Compare checkpoints on the same fresh passkey samples on CPU: the issue-5 Done-when evaluation (4K, 11 depths,
task seeds training never drew from, HSA on; HSA off teacher-forced) for several models at once, so "a re-run of
the recipe lands within a few points of the shipped checkpoint" is a measured statement.

    python benchmarks/train/compare_cpu.py checkpoints/ramba-tiny .runs/ramba-tiny-seed1 \
        --seeds 101,102,103 --out benchmarks/records/repro-cpu.json

Writes one JSON record (per-model accuracy with 95% Wilson intervals, per-sample rows, machine, versions, git sha).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
DEPTHS = [i / 10 for i in range(11)]


@torch.no_grad()
def hsa_off_hits(model, samples) -> int:
    """Teacher-forced answer correctness with HSA switched off in a full forward (as tests/train does)."""
    hits = 0
    for i in range(0, len(samples), 11):
        group = samples[i:i + 11]
        rows = [np.concatenate([np.concatenate(list(s.prompt_chunks())), np.asarray(s.answer_ids)]) for s in group]
        data = torch.as_tensor(np.stack(rows), dtype=torch.int64)          # [B, L + answer]
        ids, targets = data[:, :-1], data[:, 1:]
        answer = torch.zeros_like(targets, dtype=torch.bool)
        answer[:, group[0].length:] = True
        logits = model(ids, hsa_enabled=False)
        hits += int(((logits.argmax(-1) == targets) | ~answer).all(-1).sum())
    return hits


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--length", default="4K")
    ap.add_argument("--samples", type=int, default=5, help="samples per depth per seed (11 depths)")
    ap.add_argument("--seeds", default="101,102,103")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from ramba.evals.env import device_info, git_sha, package_versions
    from ramba.evals.lengths import parse_lengths
    from ramba.reports.stats import wilson
    from ramba.tasks.passkey import PasskeyTask
    from ramba.tasks.tokenizers import ByteTokenizer
    from ramba.train.checkpoint import load_model_dir
    from ramba.train.evaluate import passkey_eval
    from ramba.atomic import atomic_write_text

    length = parse_lengths(args.length)[0]
    seeds = [int(s) for s in args.seeds.split(",")]
    cpu = torch.device("cpu")
    results, rows = [], []
    for ck in args.checkpoints:
        model = load_model_dir(Path(ck), device="cpu").eval()
        name = Path(ck).name
        t0 = time.time()
        recs = []
        off_hits = off_n = 0
        for seed in seeds:
            recs += passkey_eval(model, [length], DEPTHS, args.samples, seed=seed, device=cpu, batch_size=11,
                                 model_name=name)
            if model.cfg.n_hsa:
                samples = [s for s in PasskeyTask().generate([length], DEPTHS, 2, seed, ByteTokenizer())]
                off_hits += hsa_off_hits(model, samples)
                off_n += len(samples)
        k = sum(r["correct"] for r in recs)
        lo, hi = wilson(k, len(recs))
        res = {"model": name, "arch": model.cfg.arch, "length": length, "n": len(recs), "acc": k / len(recs),
               "ci95": [round(lo, 4), round(hi, 4)],
               "acc_teacher_forced": sum(r["correct_teacher_forced"] for r in recs) / len(recs),
               "hsa_off_acc": off_hits / off_n if off_n else None, "hsa_off_n": off_n,
               "wall_s": round(time.time() - t0, 1)}
        print(json.dumps(res), flush=True)
        results.append(res)
        rows += recs
    atomic_write_text(Path(args.out), json.dumps({
        "kind": "passkey-compare-cpu", "seeds": seeds, "depths": DEPTHS, "results": results, "samples": rows,
        "git_sha": git_sha(REPO), "versions": package_versions(), "machine": device_info("cpu"),
        "threads": torch.get_num_threads()}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
