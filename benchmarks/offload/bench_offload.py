"""Issue 10 GPU records: chunk-memory placements (gpu / host / disk) on one GPU. Each stage fits one 10-minute
device call and writes under OUT/<stage>/ (bench.jsonl + bench.md/png, or a passkey results folder), then
OUT/summary-<stage>.json with the Done-when checks it can decide.

Stages (python benchmarks/offload/bench_offload.py STAGE --out DIR):
  sweep     shipped ramba-tiny, bench 1M,4M,16M,64M x gpu,host,disk: GPU memory vs length (flat within 1.5x
            from 1M to 64M plus landmarks), 64M host peak GPU <= 4 GiB and time <= 1.25x gpu, disk completes
  passkey   ramba-eval passkey --length 64M with --memory host and gpu (accuracy + time in the records)
  long      passkey 256M x 3 samples (--memory auto), then 1G if the budget check says it fits, else its line
  dtype     accuracy of --memory-dtype bfloat16 and --dtype bfloat16 vs fp32: passkey 1M/4M, same samples
  370m      the 370m preset (random weights) in bf16: bench 1M,16M prefill x gpu,host,disk (+ 64M projection)
  smoke     CPU, tiny lengths, every placement: the script itself works (tests/evals/test_bench.py)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

TINY = "ramba:checkpoints/ramba-tiny"
G = 1 << 30


def _rows(folder: Path) -> list[dict]:
    from ramba.evals.records import read_records
    return read_records(folder / "bench.jsonl")


def _bench(out: Path, **kw) -> list[dict]:
    from ramba.evals.bench import run_bench
    run_bench(out=out, **kw)
    return _rows(out)


def _by(rows, placement, length):
    for r in rows:
        if r["placement"] == placement and r["length"] == length and r["requested"] != "auto":
            return r
    return None


def sweep(out: Path, device: str, lengths: str = "1M,4M,16M,64M", decode: int = 32) -> dict:
    rows = _bench(out / "sweep", model=TINY, lengths=lengths, placements="gpu,host,disk", device=device,
                  decode_tokens=decode)
    from ramba.evals.lengths import parse_lengths
    ls = parse_lengths(lengths)
    lo, hi = min(ls), max(ls)
    checks = {}
    g, h, d = _by(rows, "gpu", hi), _by(rows, "host", hi), _by(rows, "disk", hi)
    if h:
        checks["host_peak_gpu_gib"] = h["peak_gpu_bytes"] / G
        checks["host_peak_gpu_le_4gib"] = h["peak_gpu_bytes"] <= 4 * G
    if g and h:
        checks["host_over_gpu_time"] = h["prefill_s"] / g["prefill_s"]
        checks["host_time_le_1.25x_gpu"] = h["prefill_s"] <= 1.25 * g["prefill_s"]
    if d:
        checks["disk_completed_s"] = d["prefill_s"]
    for p in ("host", "disk"):
        a, b = _by(rows, p, lo), _by(rows, p, hi)
        if a and b:
            # flat within 1.5x "plus the landmarks": compare peaks with the landmark bytes taken out
            flat = (b["peak_gpu_bytes"] - b["state_device_bytes"]) / max(1, a["peak_gpu_bytes"] - a["state_device_bytes"])
            checks[f"{p}_gpu_mem_ratio_{hi}_over_{lo}_less_landmarks"] = flat
            checks[f"{p}_gpu_mem_flat_1.5x"] = flat <= 1.5
    return checks


def passkey(out: Path, device: str, length: str = "64M", samples: int = 2, placements=("host", "gpu")) -> dict:
    from ramba.evals.config import RunConfig
    from ramba.evals.records import read_records
    from ramba.evals.runner import run
    res = {}
    for p in placements:
        folder = out / f"passkey-{length}-{p}"
        t0 = time.time()
        run(RunConfig(model=TINY, lengths=length, depths="0.5", samples=samples, device=device, memory=p,
                      out=str(folder), report=False), progress=False)
        rows = [r for r in read_records(folder / "records.jsonl") if r["convention"] == "generated"]
        res[p] = {"correct": sum(r["correct"] for r in rows), "n": len(rows), "wall_s": time.time() - t0,
                  "prefill_s": [r["prefill_s"] for r in rows], "peak_gpu_gib": [r["peak_gpu_bytes"] / G for r in rows]}
    return res


def long(out: Path, device: str) -> dict:
    from ramba.errors import DoesNotFitError
    res = {"256M": passkey(out, device, "256M", samples=3, placements=("auto",))}
    from ramba.evals.backends import load_backend
    be = load_backend("ramba", str(Path("checkpoints/ramba-tiny").resolve()), device=device, memory="auto",
                      memory_dir=str(out / "memory"))
    try:
        res["1G_plan"] = be.check_fits(1 << 30)
    except DoesNotFitError as e:
        res["1G_plan"] = "does not fit: " + str(e)
        return res
    finally:
        be.close()
    res["1G"] = passkey(out, device, "1G", samples=1, placements=("auto",))
    return res


def dtype(out: Path, device: str, lengths: str = "1M,4M", samples: int = 5) -> dict:
    from ramba.evals.config import RunConfig
    from ramba.evals.records import read_records
    from ramba.evals.runner import run
    res = {}
    for name, kw in {"fp32": {}, "mem-bf16": {"memory_dtype": "bfloat16"},
                     "bf16": {"dtype": "bfloat16", "memory_dtype": "bfloat16"}}.items():
        folder = out / f"dtype-{name}"
        run(RunConfig(model=TINY, lengths=lengths, depths="5", samples=samples, device=device, memory="auto",
                      out=str(folder), report=False, **kw), progress=False)
        rows = read_records(folder / "records.jsonl")
        res[name] = {f"{r_len}": sum(r["correct"] for r in rows if r["length"] == r_len and r["convention"] == "generated")
                     for r_len in sorted({r["length"] for r in rows})}
        res[name]["n_per_length"] = len(rows) // (2 * len(res[name]))
    return res


def m370(out: Path, device: str, lengths: str = "1M,16M") -> dict:
    rows = _bench(out / "370m", model="ramba:370m", lengths=lengths, placements="gpu,host,disk", device=device,
                  dtype="bfloat16", memory_dtype="bfloat16", decode_tokens=8)
    proj = {}
    for p in ("gpu", "host", "disk"):
        a, b = _by(rows, p, 1 << 20), _by(rows, p, 1 << 24)
        if a and b:
            # selection grows ~L^2/S per token window, the rest ~L: fit t = a*L + b*L^2 through the two points
            L1, L2, t1, t2 = 1 << 20, 1 << 24, a["prefill_s"], b["prefill_s"]
            q = (t2 / L2 - t1 / L1) / (L2 - L1)
            lin = t1 / L1 - q * L1
            L = 1 << 26
            proj[p] = {"projected_64M_s": lin * L + q * L * L, "linear_only_s": t2 * 4}
    return {"projection": proj}


STAGES = {"sweep": sweep, "passkey": passkey, "long": long, "dtype": dtype, "370m": m370}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=[*STAGES, "smoke"])
    ap.add_argument("--out", default="results/offload")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.stage == "smoke":    # CPU, seconds: every stage's code path at tiny sizes
        res = {"sweep": sweep(out, "cpu", lengths="1K,2K", decode=2),
               "passkey": passkey(out, "cpu", length="1K", samples=1, placements=("host", "disk"))}
    else:
        res = STAGES[a.stage](out, a.device)
    res = {"stage": a.stage, "device": a.device, **res}
    (out / f"summary-{a.stage}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
