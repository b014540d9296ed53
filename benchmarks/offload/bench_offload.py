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

Passkey stages of the one-call GPU script (benchmarks/offload/issue10_gpu.sh; each takes --deadline, a Unix
time: a sub-run projected to end past it is skipped and said so, so a hard wall-clock limit cuts between runs):
  p64       probe (gpu 1M: activation bytes -> the segment that keeps host 64M under 4 GiB), passkey 64M host,
            64M gpu (same segment, same sample), host at --sweep lengths (flatness), then a second 64M sample of
            each (pinned blocks reused) if time is left
  disk      passkey disk at each of --lengths (default 16M,64M) in order while time is left
  256m      the 1G budget line (fits or what it needs), then passkey 256M host (--memory-dtype, default bf16),
            one sample per seed while time is left
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


def m370(out: Path, device: str, lengths: str = "1M,16M", model: str = "ramba:370m", decode: int = 8,
         placements: str = "gpu,host,disk") -> dict:
    rows = _bench(out / "370m", model=model, lengths=lengths, placements=placements, device=device,
                  dtype="bfloat16", memory_dtype="bfloat16", decode_tokens=decode)
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


# ---------------------------------------------------------------- passkey stages of issue10_gpu.sh (one call)
TINY_DIR = Path("checkpoints/ramba-tiny")
HOST_TARGET = 3.5 * G          # the host 64M run aims below 4 GiB of GPU memory, with a margin
PIN_S_PER_GIB = 0.6            # pinned host allocation, measured (perf-targets §4a: 8 GiB 4.6 s)


def _left(deadline: float | None) -> float:
    return float("inf") if deadline is None else deadline - time.time()


def _save(out: Path, stage: str, res: dict) -> None:
    """summary-<stage>.json after every sub-run: a run killed at its wall-clock limit keeps what it did."""
    from ramba.atomic import atomic_write_text
    atomic_write_text(out / f"summary-{stage}.json", json.dumps({"stage": stage, **res}, indent=2, default=str) + "\n")


def _header(out: Path, device: str) -> None:
    import os
    from ramba.atomic import atomic_write_text
    from ramba.evals import env
    from ramba.evals.backends import resolve_device
    from ramba.evals.defaults import REPO_ROOT
    dev = resolve_device(device)
    h = {"git_sha": env.git_sha(REPO_ROOT) or os.environ.get("ISSUE10_GIT_SHA"), "packages": env.package_versions(),
         "env": env.device_info(dev), "host_mem_available": _meminfo("MemAvailable"),
         "host_mem_total": _meminfo("MemTotal"), "cgroup_memory_max": _cgroup_max()}
    atomic_write_text(out / "header.json", json.dumps(h, indent=2, default=str) + "\n")


def _meminfo(key: str) -> int | None:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cgroup_max() -> str | None:
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            return open(f).read().strip()
        except OSError:
            continue
    return None


def _pk(out: Path, name: str, device: str, lengths, placement: str, samples: int = 1, seed: int = 0,
        segment: int | None = None, memory_dtype: str | None = None, model: str = TINY, depth: str = "0.5",
        memory_dir: str | None = None) -> dict:
    """One `ramba-eval passkey` run in out/name; per-sample numbers of the generated convention."""
    from ramba.evals.config import RunConfig
    from ramba.evals.records import read_records
    from ramba.evals.runner import run
    folder = out / name
    t0 = time.time()
    run(RunConfig(model=model, lengths=lengths, depths=depth, samples=samples, seed=seed, device=device,
                  memory=placement, memory_dtype=memory_dtype, segment=segment,
                  memory_dir=memory_dir or str(out / "memory"), out=str(folder), report=False), progress=False)
    rows = [r for r in read_records(folder / "records.jsonl") if r["convention"] == "generated"]
    meta = json.loads((folder / "meta.json").read_text())
    return {"name": name, "placement": placement, "requested": placement, "chosen": meta["backend"].get("memory"),
            "memory_line": meta["backend"].get("memory_line"), "memory_dtype": meta["backend"].get("memory_dtype"),
            "dtype": meta["backend"].get("dtype"), "segment": meta.get("segment"), "seed": seed,
            "wall_s": time.time() - t0,
            "samples": [{k: r[k] for k in ("length", "correct", "prefill_s", "latency_s", "prompt_s", "warmup_s",
                                           "peak_gpu_bytes", "peak_host_bytes", "state_bytes", "prediction",
                                           "answer", "sample_id")} for r in rows]}


def _tok_s(res: dict, placement: str | None = None) -> float | None:
    """Slowest measured prefill tokens/s of the runs so far (of one placement, when it has any)."""
    rates = {}
    for run_ in res.get("runs", []):
        for smp in run_["samples"]:
            if smp["length"] >= (1 << 20):
                rates.setdefault(run_["placement"], []).append(smp["length"] / max(smp["prefill_s"], 1e-9))
    pool = rates.get(placement) or [x for v in rates.values() for x in v]
    return min(pool) if pool else None


def _fits_in_time(res: dict, deadline, length: int, placement: str, extra_s: float = 0.0, tok_s=None) -> bool:
    """Start a run only if its projection (slowest rate seen, +20%, + warm-up and extra_s) ends before the deadline."""
    tok_s = tok_s or _tok_s(res, placement)
    need = (1.2 * length / tok_s if tok_s else 0.0) + 5.0 + extra_s
    ok = need <= _left(deadline)
    if not ok:
        res.setdefault("skipped", []).append(f"{placement} {length:,}: needs ~{need:.0f} s, {_left(deadline):.0f} s left")
        print(f"skip {placement} {length:,}: projected {need:.0f} s > {_left(deadline):.0f} s left", flush=True)
    return ok


def _act_segment(probe: dict, length: int, memory_dtype: str | None) -> tuple[int, dict]:
    """The largest segment (64K down to 8K, halving) with landmarks(length) + activations <= HOST_TARGET,
    activations scaled from the probe (peak - state at a 64K segment, proportional to the segment)."""
    from ramba.budget import chunk_memory_bytes
    cfg = json.loads((TINY_DIR / "config.json").read_text())
    item = 2 if memory_dtype in ("bfloat16", "bf16", "float16", "fp16") else 4
    lmk = chunk_memory_bytes(cfg, length, 1, item)[1]
    smp = probe["samples"][0]
    act = max(0, smp["peak_gpu_bytes"] - smp["state_bytes"])
    seg = 1 << 16
    while seg > (1 << 13) and lmk + act * seg / (1 << 16) > HOST_TARGET:
        seg //= 2
    return seg, {"probe_act_bytes_at_64k": act, "landmark_bytes": lmk, "segment": seg,
                 "projected_host_peak_gpu_bytes": lmk + act * seg / (1 << 16)}


def _probe_segment(out: Path, device: str, res: dict, length: int, probe_length: str, memory_dtype) -> int:
    """A gpu run at probe_length (activation bytes) -> the segment that keeps a host run at `length` under
    HOST_TARGET; the probe and the choice go into res."""
    probe = _pk(out, f"probe-{probe_length}-gpu", device, probe_length, "gpu", segment=1 << 16,
                memory_dtype=memory_dtype)
    res["probe"] = probe
    segment, res["segment_choice"] = _act_segment(probe, length, memory_dtype)
    return segment


def p64(out: Path, device: str, length: str = "64M", sweep_lengths: str = "1M,4M,16M", segment: int = 0,
        deadline: float | None = None, memory_dtype: str | None = None, second: bool = True,
        probe_length: str = "1M") -> dict:
    from ramba.evals.lengths import parse_lengths
    L = parse_lengths(length)[0]
    res: dict = {"length": L, "runs": []}
    res["segment"] = segment or _probe_segment(out, device, res, L, probe_length, memory_dtype)
    _save(out, "p64", res)
    kw = dict(segment=res["segment"], memory_dtype=memory_dtype)
    plan = [("host", length, 0), ("gpu", length, 0), ("host", sweep_lengths, 0)]
    if second:
        plan += [("host", length, 1), ("gpu", length, 1)]
    for placement, lens, seed in plan:
        total = sum(parse_lengths(lens))
        # the first host run at this length allocates its pinned blocks (~0.6 s/GiB); later ones reuse them
        pin = 0.0 if placement != "host" or seed else PIN_S_PER_GIB * total * 272 / G
        if res["runs"] and not _fits_in_time(res, deadline, total, placement, extra_s=pin):
            continue
        tag = lens.replace(",", "-")
        res["runs"].append(_pk(out, f"passkey-{tag}-{placement}-s{seed}", device, lens, placement, seed=seed, **kw))
        _save(out, "p64", res)
    return res


def hostab(out: Path, device: str, length: str = "64M", segment: int = 0, deadline: float | None = None,
           memory_dtype: str | None = None, probe_length: str = "1M", modes=("pageable", "pinned")) -> dict:
    """The host placement's two block modes (RAMBA_HOST_PINNED) against gpu at one length, in one process:
    probe (segment), then per seed: host in each mode, gpu. Seed 0 of `pinned` pins its blocks (~1 s/GiB);
    seed 1 reuses them (torch's pinned cache); pageable blocks are fresh memory every run."""
    import os
    from ramba.evals.lengths import parse_lengths
    L = parse_lengths(length)[0]
    res: dict = {"length": L, "runs": [], "modes": list(modes)}
    res["segment"] = segment or _probe_segment(out, device, res, L, probe_length, memory_dtype)
    _save(out, "hostab", res)
    kw = dict(segment=res["segment"], memory_dtype=memory_dtype)
    plan = [(f"host-{m}", m, seed) for seed in (0, 1) for m in modes]
    plan = plan[:len(modes)] + [("gpu", None, 0)] + plan[len(modes):] + [("gpu", None, 1)]
    for tag, mode, seed in plan:
        placement = "gpu" if mode is None else "host"
        pin = PIN_S_PER_GIB * L * 272 / G if mode == "pinned" and seed == 0 else 0.0
        if res["runs"] and not _fits_in_time(res, deadline, L, placement, extra_s=pin):
            continue
        before = os.environ.get("RAMBA_HOST_PINNED")
        if mode is not None:       # "pageable" (the default) / "pinned"
            os.environ["RAMBA_HOST_PINNED"] = "1" if mode == "pinned" else "0"
        try:
            run_ = _pk(out, f"passkey-{length}-{tag}-s{seed}", device, length, placement, seed=seed, **kw)
        finally:                   # the caller's setting back
            if before is None:
                os.environ.pop("RAMBA_HOST_PINNED", None)
            else:
                os.environ["RAMBA_HOST_PINNED"] = before
        run_["host_blocks"] = mode
        res["runs"].append(run_)
        _save(out, "hostab", res)
    return res


def disk(out: Path, device: str, lengths: str = "16M,64M", segment: int | None = None,
         deadline: float | None = None, memory_dtype: str | None = None) -> dict:
    from ramba.evals.lengths import parse_lengths
    res: dict = {"runs": []}
    for L in parse_lengths(lengths):
        if res["runs"] and not _fits_in_time(res, deadline, L, "disk"):
            break
        res["runs"].append(_pk(out, f"passkey-{L}-disk-s0", device, str(L), "disk", segment=segment,
                               memory_dtype=memory_dtype))
        _save(out, "disk", res)
    return res


def m256(out: Path, device: str, length: str = "256M", samples: int = 3, segment: int | None = None,
         deadline: float | None = None, memory_dtype: str | None = "bfloat16", placement: str = "host",
         plan_length: str = "1G", tok_s: float | None = None) -> dict:
    """The budget line for plan_length (no allocation), then `samples` passkey samples (one seed each) at length."""
    from ramba.errors import DoesNotFitError
    from ramba.evals.backends import load_backend
    from ramba.evals.lengths import parse_lengths
    L, PL = parse_lengths(length)[0], parse_lengths(plan_length)[0]
    res: dict = {"length": L, "runs": [], "plan": {}}
    be = load_backend("ramba", str(TINY_DIR.resolve()), device=device, memory="auto",
                      memory_dtype=memory_dtype, memory_dir=str(out / "memory"))
    try:
        for md in sorted({memory_dtype or "float32", "float32", "bfloat16"}):
            be.memory_dtype = md
            try:
                res["plan"][f"{plan_length} {md}"] = "fits: " + be.check_fits(PL)
            except DoesNotFitError as e:
                res["plan"][f"{plan_length} {md}"] = "does not fit: " + " ".join(str(e).split())
    finally:
        be.close()
        del be
    _save(out, "256m", res)
    item = 2 if memory_dtype in ("bfloat16", "bf16") else 4
    for seed in range(samples):
        pin = PIN_S_PER_GIB * L * 256 * item / 4 / G if (placement == "host" and not res["runs"]) else 0.0
        if not _fits_in_time(res, deadline, L, placement, extra_s=pin, tok_s=None if res["runs"] else tok_s):
            break
        res["runs"].append(_pk(out, f"passkey-{L}-{placement}-s{seed}", device, str(L), placement, seed=seed,
                               segment=segment, memory_dtype=memory_dtype))
        _save(out, "256m", res)
    return res


STAGES = {"sweep": sweep, "passkey": passkey, "long": long, "dtype": dtype, "370m": m370,
          "p64": p64, "hostab": hostab, "disk": disk, "256m": m256}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=[*STAGES, "smoke"])
    ap.add_argument("--out", default="results/offload")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--lengths", default=None, help="p64: the long length (64M); disk, 370m: comma-separated; "
                    "256m: the length (256M)")
    ap.add_argument("--sweep", default="1M,4M,16M", help="p64: host lengths below --lengths (flatness)")
    ap.add_argument("--samples", type=int, default=3, help="256m: samples (one seed each)")
    ap.add_argument("--segment", type=int, default=0, help="prompt tokens per prefill call; p64: 0 = chosen "
                    "from the probe; others: 0 = the backend's (64K)")
    ap.add_argument("--memory-dtype", default=None, help="chunk memory dtype (256m: default bfloat16)")
    ap.add_argument("--deadline", type=float, default=None, help="Unix time: skip sub-runs projected past it")
    ap.add_argument("--probe", default="1M", help="p64: the gpu probe's length (activation bytes)")
    ap.add_argument("--no-second", action="store_true", help="p64: no second 64M sample per placement")
    ap.add_argument("--modes", default="pageable,pinned", help="hostab: host block modes to run, in order")
    ap.add_argument("--model", default=None, help="370m: the model (default ramba:370m)")
    ap.add_argument("--placements", default="gpu,host,disk", help="370m: placements, in order")
    ap.add_argument("--tok-s", type=float, default=None, help="256m: tokens/s to project the first sample "
                    "(default: from summary-p64.json in --out, if there)")
    a = ap.parse_args(argv)
    bad = [m for m in a.modes.split(",") if m not in ("pageable", "pinned")]
    if bad:                        # before anything is written
        ap.error(f"--modes: unknown host block mode(s) {', '.join(bad)}; use pageable and/or pinned")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.stage == "smoke":    # CPU, seconds: every stage's code path at tiny sizes
        res = {"sweep": sweep(out, "cpu", lengths="1K,2K", decode=2),
               "passkey": passkey(out, "cpu", length="1K", samples=1, placements=("host", "disk"))}
    elif a.stage in ("p64", "hostab", "disk", "256m"):
        _header(out, a.device)
        seg = a.segment or None
        if a.stage == "p64":
            res = p64(out, a.device, length=a.lengths or "64M", sweep_lengths=a.sweep, segment=a.segment,
                      deadline=a.deadline, memory_dtype=a.memory_dtype, second=not a.no_second,
                      probe_length=a.probe)
        elif a.stage == "hostab":
            res = hostab(out, a.device, length=a.lengths or "64M", segment=a.segment, deadline=a.deadline,
                         memory_dtype=a.memory_dtype, probe_length=a.probe, modes=tuple(a.modes.split(",")))
        elif a.stage == "disk":
            res = disk(out, a.device, lengths=a.lengths or "16M,64M", segment=seg, deadline=a.deadline,
                       memory_dtype=a.memory_dtype)
        else:
            tok_s = a.tok_s
            for prior in ("p64", "hostab"):
                if tok_s is None and (out / f"summary-{prior}.json").exists():
                    tok_s = _tok_s(json.loads((out / f"summary-{prior}.json").read_text()), "host")
            res = m256(out, a.device, length=a.lengths or "256M", samples=a.samples, segment=seg,
                       deadline=a.deadline, memory_dtype=a.memory_dtype or "bfloat16", tok_s=tok_s)
    elif a.stage == "370m":
        _header(out, a.device)
        res = m370(out, a.device, lengths=a.lengths or "1M,16M", model=a.model or "ramba:370m",
                   placements=a.placements)
    else:
        res = STAGES[a.stage](out, a.device)
    res = {"stage": a.stage, "device": a.device, **res}
    (out / f"summary-{a.stage}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(json.dumps(res, indent=2, default=str)[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
