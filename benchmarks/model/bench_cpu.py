"""CPU figures for the tiny preset: training step (forward + backward) at 4K and prefill throughput.

    python benchmarks/model/bench_cpu.py --out benchmarks/records [--threads 2]

Writes model-cpu.json (machine header + rows): median and min seconds per fwd+bwd step at T=4096 (batch 1,
mamba_segment 512, fp32), and prefill(logits="last") tokens/s over 64K tokens in 16K segments. The header
keeps the load average: on a shared machine other processes inflate the times.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time

import torch


def git_sha():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from ramba import RambaConfig, RambaModel
    torch.manual_seed(0)
    model = RambaModel(RambaConfig.from_preset("tiny", mamba_segment=512))
    rows = []
    ids = torch.randint(0, 256, (1, 4096))

    def step():
        logits = model(ids)
        torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:]).backward()
    step()                                                        # warm-up (allocator, first-call costs)
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    rows.append(dict(section="train_step", preset="tiny", length=4096, batch=1, dtype="float32",
                     seconds_median=round(statistics.median(times), 3), seconds_min=round(min(times), 3),
                     seconds_all=[round(x, 3) for x in times]))
    print(rows[-1], flush=True)
    model.eval()
    long = torch.randint(0, 256, (1, 1 << 16))
    state = model.allocate_state(1)
    t = time.perf_counter()
    for s in range(0, long.shape[1], 1 << 14):
        model.prefill(long[:, s:s + (1 << 14)], state, logits="last")
    el = time.perf_counter() - t
    rows.append(dict(section="prefill_last", preset="tiny", length=long.shape[1], segment=1 << 14,
                     mamba_segment=512, tokens_per_s=round(long.shape[1] / el)))
    print(rows[-1], flush=True)
    rec = dict(kind="model-cpu", header=dict(machine=platform.machine(), processor=platform.processor(),
                                             cpus=os.cpu_count(), threads=args.threads, torch=torch.__version__,
                                             python=platform.python_version(), git_sha=git_sha(),
                                             loadavg_1m_at_end=round(os.getloadavg()[0], 2),
                                             date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
               rows=rows)
    os.makedirs(args.out, exist_ok=True)
    from ramba.atomic import atomic_write_text
    atomic_write_text(os.path.join(args.out, "model-cpu.json"), json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
