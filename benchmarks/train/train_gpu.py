"""Train a config on the GPU within a wall-clock budget, evaluate passkey at 4K, and copy the results to an
output folder (for the `run` tool: $OUT). Optionally first probe step time per curriculum stage.

    source benchmarks/gpu_setup.sh && python benchmarks/train/train_gpu.py configs/ramba-tiny.yaml \
        --out $OUT/ramba-tiny --budget 480 [--probe] [--ops triton|reference] [--set train.max_steps=3000]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch


def probe(cfg, ops: str) -> list[dict]:
    """fwd+bwd time per curriculum stage (3 timed steps after 2 warm-up steps)."""
    import numpy as np
    from ramba.train.data import RowSampler
    from ramba.train.metrics import loss_and_stats
    from ramba.train.run import autocast, build_model, forward, make_optimizer
    dev = torch.device("cuda")
    model, mcfg = build_model(cfg, dev)
    opt = make_optimizer(model, cfg)
    sampler = RowSampler(cfg.data.mix, seed=1, segment=mcfg.mamba_segment, pool_bytes=1 << 20)
    rng = np.random.default_rng(0)
    rows = []
    for st in cfg.curriculum:
        b = sampler.batch(rng, st.batch, st.length).to(dev)
        times = []
        for i in range(5):
            torch.cuda.synchronize(); t0 = time.perf_counter()
            with autocast(dev, "bf16"):
                logits, aux = forward(model, b.ids, mcfg)
            loss, _ = loss_and_stats(logits, b, 8.0, 1.0, aux, mcfg.chunk_size)
            opt.zero_grad(); loss.backward(); opt.step()
            torch.cuda.synchronize(); times.append(time.perf_counter() - t0)
        t = sorted(times[2:])[1]
        rows.append({"ops": ops, "length": st.length, "batch": st.batch, "step_s": round(t, 4),
                     "tok_per_s": round(st.length * st.batch / t), "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)})
        print("probe", json.dumps(rows[-1]), flush=True)
    del model, opt
    torch.cuda.empty_cache()
    return rows


def apply_sets(raw: dict, sets: list[str]) -> dict:
    import yaml
    for s in sets:
        key, _, val = s.partition("=")
        node = raw
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(val)
    return raw


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=None, help="train.time_budget_s override (seconds)")
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--probe-only", action="store_true")
    ap.add_argument("--ops", default=None, help="HSA ops backend (RAMBA_OPS): triton or reference")
    ap.add_argument("--set", action="append", default=[], help="dotted config override, e.g. train.max_steps=3000")
    ap.add_argument("--resume", action="store_true", help="continue the run in /tmp/train_runs/NAME if one is there")
    ap.add_argument("--stop-in", type=float, default=None,
                    help="leave after this many wall-clock seconds with a checkpoint (a run split over several calls)")
    ap.add_argument("--eval-samples", type=int, default=4, help="passkey samples per depth at 4K (11 depths)")
    args = ap.parse_args(argv)
    if args.ops:
        os.environ["RAMBA_OPS"] = args.ops
    from ramba.train.config import config_from_dict, read_config_dict
    from ramba.train.run import train_config
    raw = apply_sets(read_config_dict(args.config), args.set)
    if args.budget is not None:
        raw.setdefault("train", {})["time_budget_s"] = args.budget
    cfg = config_from_dict(raw, source=args.config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path("/tmp/train_runs") / cfg.name
    if args.probe or args.probe_only:
        (out / "probe.json").write_text(json.dumps(probe(cfg, os.environ.get("RAMBA_OPS", "auto")), indent=1))
        if args.probe_only:
            return 0
    if not args.resume and work.exists():
        shutil.rmtree(work)                   # a stale summary.json would read as a finished run
    t0 = time.time()
    stop_at = t0 + args.stop_in if args.stop_in else None
    ckpt = train_config(cfg, work, resume=args.resume, stop_at=stop_at)
    if stop_at and not (work / "summary.json").exists():
        print(f"paused after {time.time() - t0:.0f}s (checkpoint in {work}; continue with --resume)", flush=True)
        return 0
    print(f"trained in {time.time() - t0:.0f}s -> {ckpt}", flush=True)
    # passkey on the evaluation task itself, 4K, 11 depths, seeds training never drew from
    from ramba.train.checkpoint import load_model_dir
    from ramba.train.evaluate import passkey_eval
    dev = torch.device("cuda")
    model = load_model_dir(ckpt, device="cuda")
    recs = passkey_eval(model, [4096], [i / 10 for i in range(11)], args.eval_samples, seed=7, device=dev,
                        batch_size=16, model_name=cfg.name, amp=True)
    acc = sum(r["correct"] for r in recs) / len(recs)
    tf = sum(r["correct_teacher_forced"] for r in recs) / len(recs)
    print(f"passkey 4K: generated {acc:.3f} teacher-forced {tf:.3f} over {len(recs)} samples", flush=True)
    with open(work / "eval_4k.jsonl", "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    for name in ("config.json", "model.safetensors"):
        shutil.copy(ckpt / name, out / name)
    for name in ("log.jsonl", "curves.png", "summary.json", "eval_4k.jsonl"):
        if (work / name).exists():
            shutil.copy(work / name, out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
