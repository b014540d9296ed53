"""Passkey accuracy on a sweep of consecutive lengths (the reset-residue check of issue 9), on CPU or GPU.

    python benchmarks/generalization/length_sweep.py checkpoints/ramba-tiny --starts 3808,4128 --count 64 \
        --samples 2 --seed 23 --out benchmarks/records/length-sweep-ramba-tiny.jsonl [--reset-tail N | --absolute]

Every length start..start+count-1 gets `samples` samples (depths spread over (0, 1)), from the passkey task's own
generator with a seed training never used. One JSON line per sample (length, length mod mamba_segment, depth,
seed, prediction, correct) and a final summary line; the file is written atomically at the end.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--starts", default="3808,4128")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--reset-tail", type=int, default=None, help="override the checkpoint's reset_tail")
    ap.add_argument("--absolute", action="store_true", help="absolute reset grid (reset_tail=None): the old rule")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from ramba.atomic import atomic_write_text
    from ramba.evals.env import git_sha
    from ramba.train.checkpoint import load_model_dir
    from ramba.train.evaluate import passkey_eval
    dev = torch.device(args.device)
    model = load_model_dir(Path(args.checkpoint), device=dev)
    if args.absolute or args.reset_tail is not None:
        model.cfg = model.cfg.replace(reset_tail=None if args.absolute else args.reset_tail)
    seg = model.cfg.mamba_segment
    n = args.samples
    depths = [(i + 0.5) / n for i in range(n)]              # e.g. 0.25, 0.75: away from the prompt's ends
    lengths = [s + i for s in (int(x) for x in args.starts.split(",")) for i in range(args.count)]
    t0 = time.time()
    recs = passkey_eval(model, lengths, depths, 1, seed=args.seed, device=dev, batch_size=8,
                        model_name=Path(args.checkpoint).name)
    for r in recs:
        r.update(mod_segment=r["length"] % seg if seg else None, reset_tail=model.cfg.reset_tail,
                 mamba_segment=seg)
    acc = sum(r["correct"] for r in recs) / len(recs)
    acc_tf = sum(r["correct_teacher_forced"] for r in recs) / len(recs)
    summary = {"kind": "summary", "checkpoint": args.checkpoint, "lengths": [lengths[0], lengths[-1]],
               "starts": args.starts, "count": args.count, "samples_per_length": n, "n": len(recs),
               "acc": acc, "acc_teacher_forced": acc_tf, "failed_lengths": sorted({r["length"] for r in recs
                                                                                if not r["correct"]}),
               "mamba_segment": seg, "reset_tail": model.cfg.reset_tail, "seed": args.seed,
               "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else platform.processor() or "cpu",
               "wall_s": round(time.time() - t0, 1), "git_sha": git_sha(Path(__file__).resolve().parents[2]),
               "torch": torch.__version__}
    atomic_write_text(Path(args.out), "".join(json.dumps(r) + "\n" for r in recs + [summary]))
    print(json.dumps({k: v for k, v in summary.items() if k != "failed_lengths"}),
          "failed:", summary["failed_lengths"][:40])
    return 0


if __name__ == "__main__":
    sys.exit(main())
