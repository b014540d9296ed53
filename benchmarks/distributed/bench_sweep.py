"""Issue 14's record: one passkey + RULER sweep on 1 GPU (one process), then on N GPUs under torchrun.

    source benchmarks/gpu_setup.sh && python3 benchmarks/distributed/bench_sweep.py --record $OUT/dist-2gpu.json
    python3 benchmarks/distributed/bench_sweep.py --smoke --record /tmp/dist-smoke.json     # CPU, gloo, seconds

Both timed runs are the user's own commands (`ramba-eval run SWEEP` and `ramba-eval run SWEEP --launcher
torchrun --nproc N`), timed end to end: start-up, model loads, warm-ups, prompt building and the merge are all
in. Each gets a fresh prompt cache; an untimed priming sweep (one sample per task and length) compiles the GPU
kernels into the shared on-disk Triton cache first, so neither timed run pays first compilation. The record
(JSON: machine header, git sha, the sweep, both wall times, the speed-up against the 1.8x target, and whether
both runs wrote the same records, timings aside) goes to --record; the results folders stay under --work.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TIMING = {"prompt_s", "latency_s", "prefill_s", "prefill_tok_s", "peak_gpu_bytes", "peak_host_bytes", "warmup_s"}
RULER = ("niah_single_1", "niah_single_2", "niah_multikey_1", "vt")
TARGET = 1.8


def sweep(args, prime: bool = False) -> dict:
    """The suite: passkey over many lengths and depths, and RULER tasks at a few lengths."""
    n, depths_pk, depths_r = (1, 1, 1) if prime else (args.samples, args.depths, 3)
    runs = [{"task": "passkey", "lengths": args.passkey_lengths, "depths": depths_pk, "samples": n}]
    runs += [{"task": t, "lengths": args.ruler_lengths, "depths": depths_r, "samples": n} for t in args.ruler]
    return {"suite": "dist-prime" if prime else "dist-sweep",
            "defaults": {"model": args.model, "device": args.device, "seed": 0, "report": False}, "runs": runs}


def timed(cmd: list[str], env: dict, log) -> float:
    print("$ " + " ".join(cmd), file=log, flush=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    print(f"-> rc {res.returncode} in {wall:.1f} s", file=log, flush=True)
    if res.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed with rc {res.returncode}; see the log")
    return wall


def summarize(suite_dir: Path) -> dict:
    """Samples, tokens and model seconds of a suite folder, plus what each torchrun rank did."""
    runs, samples, tokens, model_s = {}, 0, 0, 0.0
    for run in sorted(p for p in suite_dir.iterdir() if (p / "meta.json").is_file()):
        meta = json.loads((run / "meta.json").read_text())
        rows = [json.loads(x) for x in open(run / "records.jsonl")]
        gen = [r for r in rows if r["convention"] == "generated"]
        samples += len(gen)
        tokens += sum(r["achieved_length"] for r in gen)
        model_s += sum(r["latency_s"] for r in gen)
        dist = meta.get("distributed") or {}
        runs[run.name] = {"status": meta["status"], "samples": len(gen),
                          "accuracy": round(sum(r["correct"] for r in gen) / max(len(gen), 1), 4),
                          "plan_imbalance": dist.get("plan_imbalance"),
                          "rank_wall_s": [r["wall_s"] for r in dist.get("ranks") or []]}
    return {"samples": samples, "prompt_tokens": tokens, "model_s": round(model_s, 3), "runs": runs}


def same_records(a: Path, b: Path) -> dict:
    """Row-by-row equality of two suite folders' records, timings and memory peaks aside."""
    total = equal = 0
    for run in sorted(p.name for p in a.iterdir() if (p / "records.jsonl").is_file()):
        ra = [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in open(a / run / "records.jsonl")]
        rb = [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in open(b / run / "records.jsonl")]
        total += max(len(ra), len(rb))
        equal += sum(x == y for x, y in zip(ra, rb))
    return {"rows": total, "equal": equal, "identical": total > 0 and equal == total}


def machine(device: str) -> dict:
    import torch
    info = {"host": socket.gethostname(), "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        import triton
        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if device == "cuda":
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    else:
        info["cpus"] = os.cpu_count()
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    info["git_sha"] = sha or None
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nproc", type=int, default=2, help="ranks (GPUs) of the distributed run")
    ap.add_argument("--device", default=None, help="cuda (default when a GPU is visible) or cpu")
    ap.add_argument("--model", default=None, help="BACKEND[:ID] (default ramba:checkpoints/ramba-tiny; smoke: oracle)")
    ap.add_argument("--passkey-lengths", default="4K..16M")
    ap.add_argument("--ruler-lengths", default="4K,64K,1M")
    ap.add_argument("--ruler", default=",".join(RULER), help="RULER tasks (comma-separated)")
    ap.add_argument("--depths", type=int, default=4, help="passkey depths")
    ap.add_argument("--samples", type=int, default=2, help="samples per task, length and depth")
    ap.add_argument("--smoke", action="store_true", help="CPU smoke: oracle model, 1K-2K, gloo")
    ap.add_argument("--no-prime", action="store_true", help="skip the untimed kernel-compiling sweep")
    ap.add_argument("--work", default="/tmp/ramba-dist-bench", help="results folders and prompt caches")
    ap.add_argument("--record", default=None, help="where the JSON record goes (its .log beside it)")
    args = ap.parse_args(argv)
    import torch
    if args.smoke:
        args.device = args.device or "cpu"
        args.model = args.model or "oracle"
        args.passkey_lengths, args.ruler_lengths, args.ruler = "1K,2K", "1K", "niah_single_1"
        args.depths, args.samples, args.no_prime = 3, 2, True
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.model = args.model or "ramba:checkpoints/ramba-tiny"
    args.ruler = [t for t in args.ruler.split(",") if t]
    if args.device == "cuda" and torch.cuda.device_count() < args.nproc:
        raise SystemExit(f"bench: {args.nproc} GPUs asked for, {torch.cuda.device_count()} visible")
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    record_path = Path(args.record) if args.record else work / "distributed-sweep.json"
    record_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(record_path.with_suffix(".log"), "w")
    for name, prime in (("prime", True), ("sweep", False)):
        (work / f"{name}.yaml").write_text(yaml.safe_dump(sweep(args, prime), sort_keys=False))
    cli = [sys.executable, "-m", "ramba.evals.cli", "run"]
    gpus = lambda k: {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(k))} if args.device == "cuda" else {}
    # Triton's compile cache is shared by both runs (primed below); prompt caches are each run's own.
    # PYTHONSAFEPATH: the checkout's ramba/ must not shadow the installed namespace (gpu_setup.sh's --target
    # install) in any process, torchrun's workers included. NVLink multicast stays off (shared GPUs).
    env = {"TRITON_CACHE_DIR": str(work / "triton-cache"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "PYTHONSAFEPATH": "1", "NCCL_NVLS_ENABLE": os.environ.get("NCCL_NVLS_ENABLE", "0"),
           "TORCH_SYMM_MEM_DISABLE_MULTICAST": os.environ.get("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"),
           "NVSHMEM_DISABLE_NVLS": os.environ.get("NVSHMEM_DISABLE_NVLS", "1")}
    if not args.no_prime:
        timed(cli + [str(work / "prime.yaml"), "--out", str(work / "prime"), "--no-progress"],
              {**env, **gpus(1), "RAMBA_EVAL_CACHE": str(work / "cache-prime")}, log)
    one = timed(cli + [str(work / "sweep.yaml"), "--out", str(work / "one"), "--no-progress"],
                {**env, **gpus(1), "RAMBA_EVAL_CACHE": str(work / "cache-one")}, log)
    many = timed(cli + [str(work / "sweep.yaml"), "--out", str(work / "many"), "--no-progress",
                        "--launcher", "torchrun", "--nproc", str(args.nproc)],
                 {**env, **gpus(args.nproc), "RAMBA_EVAL_CACHE": str(work / "cache-many")}, log)
    speedup = one / many
    record = {
        "kind": "distributed-sweep", "issue": 14, "machine": machine(args.device), "device": args.device,
        "nproc": args.nproc, "smoke": args.smoke, "sweep": sweep(args),
        "one_process": {"wall_s": round(one, 3), **summarize(work / "one")},
        "torchrun": {"wall_s": round(many, 3), "backend": "nccl" if args.device == "cuda" else "gloo",
                     **summarize(work / "many")},
        "speedup": round(speedup, 3), "target": TARGET, "meets_target": speedup >= TARGET,
        "records_match": same_records(work / "one", work / "many"),
        "note": "wall time of the whole command, start-up, model loads, warm-ups, prompt building and merge included; "
                "kernels primed (Triton disk cache) for both; a fresh prompt cache for each",
    }
    record_path.write_text(json.dumps(record, indent=1) + "\n")
    for k in ("cache-prime", "cache-one", "cache-many"):
        shutil.rmtree(work / k, ignore_errors=True)
    print(f"bench: 1 process {one:.1f} s, {args.nproc} ranks {many:.1f} s: speed-up {speedup:.2f}x "
          f"(target {TARGET}x); records identical: {record['records_match']['identical']}; record {record_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
