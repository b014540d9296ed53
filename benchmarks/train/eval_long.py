"""Passkey accuracy against length for shipped checkpoints, on one GPU: JSONL records + a summary table.

    source benchmarks/gpu_setup.sh && python benchmarks/train/eval_long.py checkpoints/ramba-tiny \
        --lengths 1K,4K,16K,64K,256K,1M,4M,16M,64M --samples 20 --long-samples 5 --out $OUT/gen

Records are written as they come (one JSONL file per model), so a run stopped by its time limit keeps every
finished sample. `--deadline` (seconds) stops starting new lengths after that wall time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--lengths", default="1K,4K,16K,64K,256K,1M,4M,16M,64M")
    ap.add_argument("--depths", default="0,0.25,0.5,0.75,1")
    ap.add_argument("--samples", type=int, default=4, help="samples per depth below 16M")
    ap.add_argument("--long-samples", type=int, default=1, help="samples per depth at >= 16M")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--deadline", type=float, default=1e9)
    ap.add_argument("--max-length", default=None, help="per-arch cap, e.g. transformer=64K")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from ramba.evals.lengths import parse_lengths
    from ramba.train.checkpoint import load_model_dir
    from ramba.train.evaluate import passkey_eval
    lengths = parse_lengths(args.lengths)
    depths = [float(d) for d in args.depths.split(",")]
    caps = {}
    for item in (args.max_length or "").split(","):
        if "=" in item:
            k, v = item.split("=")
            caps[k] = parse_lengths(v)[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device("cuda")
    t_start = time.time()
    summary = []
    for ck in args.checkpoints:
        model = load_model_dir(Path(ck), device="cuda")
        model.eval()
        name = Path(ck).name
        arch = model.cfg.arch
        with open(out / f"{name}.jsonl", "a") as f:
            for L in lengths:
                if L > caps.get(arch, 1 << 40):
                    summary.append({"model": name, "length": L, "n": 0, "acc": None, "note": "not run (cap)"})
                    continue
                if time.time() - t_start > args.deadline:
                    summary.append({"model": name, "length": L, "n": 0, "acc": None, "note": "not run (time)"})
                    continue
                n = args.long_samples if L >= (16 << 20) else args.samples
                t0 = time.time()
                try:
                    recs = passkey_eval(model, [L], depths, n, seed=args.seed, device=dev, batch_size=16,
                                        model_name=name, amp=args.dtype == "bf16")
                except torch.cuda.OutOfMemoryError as e:
                    torch.cuda.empty_cache()
                    summary.append({"model": name, "length": L, "n": 0, "acc": None, "note": f"OOM: {str(e)[:80]}"})
                    print(json.dumps(summary[-1]), flush=True)
                    continue
                for r in recs:
                    r.update(arch=arch, dtype=args.dtype, device=torch.cuda.get_device_name(0),
                             mamba_segment=model.cfg.mamba_segment)
                    f.write(json.dumps(r) + "\n")
                f.flush()
                acc = sum(r["correct"] for r in recs) / len(recs)
                tf = sum(r["correct_teacher_forced"] for r in recs) / len(recs)
                summary.append({"model": name, "length": L, "n": len(recs), "acc": acc, "acc_tf": tf,
                                "s_per_sample": round((time.time() - t0) / len(recs), 3),
                                "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)})
                print(json.dumps(summary[-1]), flush=True)
        del model
        torch.cuda.empty_cache()
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
