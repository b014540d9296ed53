"""RULER-family (and passkey) accuracy against length for checkpoints, on one GPU: JSONL records + a summary.

    source benchmarks/gpu_setup.sh && python benchmarks/generalization/ruler_gpu.py checkpoints/ramba-tiny \
        --tasks ruler --lengths 4K,64K --samples 10 --long-samples 3 --out $OUT/ruler [--deadline 400]

`--tasks ruler` = the 8 NIAH variants + vt + cwe + fwe; `heldout` = the held-out variants and their in-distribution
twins; `heldout2` = the second held-out bank's rows. Records are appended as they come (one file per model), so a
run stopped by its deadline keeps every finished cell; `--deadline` (seconds) stops starting new cells after that
wall time. Depths spread over (0, 1).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

RULER = ["niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2", "niah_multikey_3",
         "niah_multivalue", "niah_multiquery", "vt", "cwe", "fwe"]
HELDOUT = ["heldout_niah_single_2", "niah_single_2", "heldout_niah_multikey_1", "niah_multikey_1",
           "heldout_niah_multivalue", "niah_multivalue", "heldout_niah_multiquery", "niah_multiquery",
           "heldout_niah_single_3", "niah_single_3", "heldout_vt", "vt", "heldout_filler_niah_single",
           "heldout_filler_niah_multikey"]
# the second held-out bank's rows (their in-distribution twins are HELDOUT's, same sample ids)
HELDOUT2 = ["heldout2_niah_single_2", "heldout2_niah_multikey_1", "heldout2_niah_multivalue", "heldout2_niah_multiquery",
            "heldout2_niah_single_3", "heldout2_vt"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--tasks", default="ruler")
    ap.add_argument("--lengths", default="4K,64K")
    ap.add_argument("--samples", type=int, default=10, help="samples per task and length below 16M")
    ap.add_argument("--long-samples", type=int, default=3, help="samples per task and length at >= 16M")
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--long-batch", type=int, default=4, help="rows per prefill beyond 64K tokens")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--deadline", type=float, default=1e9)
    ap.add_argument("--device", default="cuda", help="cuda, or cpu (fp32; short lengths only)")
    ap.add_argument("--gen-tokens", choices=("answer", "task"), default="answer",
                    help="answer: decode len(answer) tokens (the harness's generated convention); task: the task's "
                         "own budget (RULER's tokens_to_generate, 128 for NIAH), scored by substring as upstream")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from ramba.evals.lengths import parse_lengths
    from ramba.train.checkpoint import load_model_dir
    from ramba.train.evaluate import task_eval
    tasks = {"ruler": RULER, "heldout": HELDOUT, "heldout2": HELDOUT2}.get(args.tasks) or args.tasks.split(",")
    lengths = parse_lengths(args.lengths)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(args.device)
    on_gpu = dev.type == "cuda"
    device_name = torch.cuda.get_device_name(0) if on_gpu else "cpu"
    t_start = time.time()
    for ck in args.checkpoints:
        model = load_model_dir(Path(ck), device=dev)
        name = Path(ck).name
        with open(out / f"{name}.jsonl", "a") as f:
            for L in lengths:
                for task in tasks:
                    if time.time() - t_start > args.deadline:
                        print(json.dumps({"model": name, "task": task, "length": L, "note": "not run (time)"}))
                        continue
                    n = args.long_samples if L >= (16 << 20) else args.samples
                    depths = [(i + 0.5) / n for i in range(n)]
                    t0 = time.time()
                    recs = task_eval(model, task, [L], depths, 1, seed=args.seed, device=dev, batch_size=16,
                                     model_name=name, amp=on_gpu and args.dtype == "bf16",
                                     long_batch=args.long_batch, gen_tokens=args.gen_tokens)
                    for r in recs:
                        r.update(arch=model.cfg.arch, dtype=args.dtype if on_gpu else "fp32", device=device_name,
                                 mamba_segment=model.cfg.mamba_segment, reset_tail=model.cfg.reset_tail)
                        f.write(json.dumps(r) + "\n")
                    f.flush()
                    print(json.dumps({"model": name, "task": task, "length": L, "n": len(recs),
                                      "acc": round(sum(r["correct"] for r in recs) / len(recs), 3),
                                      "score": round(sum(r["score"] for r in recs) / len(recs), 3),
                                      "acc_tf": round(sum(r["correct_teacher_forced"] for r in recs) / len(recs), 3),
                                      "s_per_sample": round((time.time() - t0) / len(recs), 3),
                                      "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if on_gpu
                                      else None}), flush=True)
        del model
        if on_gpu:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
