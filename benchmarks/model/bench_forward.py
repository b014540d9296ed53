"""RAMba model forward throughput on one GPU, after the model's GPU agreement tests.

    source benchmarks/gpu_setup.sh && python benchmarks/model/bench_forward.py --out $OUT --git-sha SHA

Sections (default all, in order):
  tests    pytest -m gpu tests/model (mamba-ssm SSD vs our SSD; whole model fast path vs reference)
  forward  model(ids) tokens/s, batch 1, bf16, presets tiny and 370m, L = 4K..64K, on the fast path
           (mamba-ssm SSD + Triton HSA ops) and, for comparison, on our own torch SSD + reference HSA ops
  prefill  prefill(ids, state, logits="last") with mamba_segment 512 (the evaluation path), same lengths
  conv     370m forward with the depthwise conv as cuDNN conv1d vs shifted multiply-adds; a CUDA profile
Writes model-forward.json (machine header + one row per measurement) into --out, rewritten atomically after
every row so a run cut short still returns what it measured. Timing: CUDA events, median of --reps calls
after one warm-up call (compilation and autotuning stay out of the numbers).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

LENGTHS = (4096, 8192, 16384, 32768, 65536)


def header(args):
    import triton
    try:
        import selective_scan_cuda  # noqa: F401
    except ImportError:
        import types
        sys.modules.setdefault("selective_scan_cuda", types.ModuleType("selective_scan_cuda"))
    try:
        import mamba_ssm
        mver = mamba_ssm.__version__
    except Exception as e:  # recorded, not fatal: the torch path still runs
        mver = f"unavailable ({type(e).__name__})"
    p = torch.cuda.get_device_properties(0)
    return dict(device=torch.cuda.get_device_name(0), sms=p.multi_processor_count,
                memory_gib=round(p.total_memory / 2 ** 30, 1), torch=torch.__version__, triton=triton.__version__,
                mamba_ssm=mver, cuda=torch.version.cuda, python=platform.python_version(), git_sha=args.git_sha,
                date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def write(out_dir, record):
    path = os.path.join(out_dir, "model-forward.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, path)


def time_call(fn, reps):
    fn()                                      # warm-up: compile / autotune
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def build(preset, **over):
    from ramba import RambaConfig, RambaModel
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = RambaModel(RambaConfig.from_preset(preset, **over))
    return model.to(torch.bfloat16).eval()


def run_forward(args, record, out):
    paths = {"fast": ("mamba_ssm", "triton"), "torch": ("torch", "reference")}
    for preset in args.presets:
        model = build(preset)
        for path in args.paths:
            ssd, ops = paths[path]
            model.set_ssd_impl(ssd)
            model.ops_backend = ops
            for L in args.lengths:
                if path == "torch" and L > args.torch_max_len:
                    continue
                ids = torch.randint(0, model.cfg.vocab_size, (1, L), device="cuda")
                torch.cuda.reset_peak_memory_stats()
                with torch.inference_mode():
                    ms = time_call(lambda: model(ids), args.reps)
                row = dict(section="forward", preset=preset, path=path, ssd=ssd, ops=ops, length=L, batch=1,
                           dtype="bfloat16", ms=round(ms, 3), tokens_per_s=round(L / ms * 1e3),
                           peak_gib=round(torch.cuda.max_memory_allocated() / 2 ** 30, 2))
                print(json.dumps(row), flush=True)
                record["rows"].append(row)
                write(out, record)
        del model
        torch.cuda.empty_cache()


def run_prefill(args, record, out):
    for preset in args.presets:
        model = build(preset, mamba_segment=512)
        model.set_ssd_impl("mamba_ssm")
        model.ops_backend = "triton"
        for L in args.lengths:
            ids = torch.randint(0, model.cfg.vocab_size, (1, L), device="cuda")

            def call():
                state = model.allocate_state(1)
                return model.prefill(ids, state, logits="last")
            torch.cuda.reset_peak_memory_stats()
            ms = time_call(call, args.reps)
            row = dict(section="prefill_last", preset=preset, path="fast", mamba_segment=512, length=L, batch=1,
                       dtype="bfloat16", ms=round(ms, 3), tokens_per_s=round(L / ms * 1e3),
                       peak_gib=round(torch.cuda.max_memory_allocated() / 2 ** 30, 2))
            print(json.dumps(row), flush=True)
            record["rows"].append(row)
            write(out, record)
        del model
        torch.cuda.empty_cache()


def set_conv(model, impl):
    from ramba.mamba2 import Mamba2Mixer
    for m in model.modules():
        if isinstance(m, Mamba2Mixer):
            m.conv_impl = impl


def run_conv(args, record, out):
    """The depthwise conv as F.conv1d (cuDNN) vs K shifted multiply-adds, 370m fast path."""
    model = build("370m")
    model.set_ssd_impl("mamba_ssm")
    model.ops_backend = "triton"
    for L in (16384, 65536):
        ids = torch.randint(0, model.cfg.vocab_size, (1, L), device="cuda")
        for impl in ("conv1d", "shift"):
            set_conv(model, impl)
            with torch.inference_mode():
                ms = time_call(lambda: model(ids), args.reps)
            row = dict(section="conv_impl", preset="370m", conv_impl=impl, length=L, ms=round(ms, 3),
                       tokens_per_s=round(L / ms * 1e3))
            print(json.dumps(row), flush=True)
            record["rows"].append(row)
            write(out, record)
    set_conv(model, "conv1d")
    ids = torch.randint(0, model.cfg.vocab_size, (1, 16384), device="cuda")
    from torch.profiler import ProfilerActivity, profile
    with torch.inference_mode():
        model(ids)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            model(ids)
            torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60)
    print(table, flush=True)
    record["profile_370m_16k"] = table
    write(out, record)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--git-sha", default="unknown")
    ap.add_argument("--sections", default="tests,forward,prefill,conv")
    ap.add_argument("--presets", default="tiny,370m")
    ap.add_argument("--paths", default="fast,torch")
    ap.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    ap.add_argument("--torch-max-len", type=int, default=16384)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tests-timeout", type=int, default=240)
    args = ap.parse_args()
    args.presets = args.presets.split(",")
    args.paths = args.paths.split(",")
    args.lengths = [int(x) for x in args.lengths.split(",")]
    os.makedirs(args.out, exist_ok=True)
    record = dict(kind="model-forward", header=header(args), rows=[])
    write(args.out, record)
    sections = args.sections.split(",")
    if "tests" in sections:
        t = time.time()
        try:
            # -P: the checkout's ramba/ folder must not shadow the installed namespace (ramba.kernels)
            res = subprocess.run([sys.executable, "-P", "-m", "pytest", "-q", "-s", "-m", "gpu", "-p",
                                  "no:cacheprovider", "tests/model/test_model_gpu.py"], capture_output=True, text=True,
                                 timeout=args.tests_timeout)
            rc, tail = res.returncode, (res.stdout + res.stderr)[-4000:]
        except subprocess.TimeoutExpired as e:
            rc, tail = "timeout", str(e.stdout or "")[-4000:]
        print(tail, flush=True)
        record["gpu_tests"] = dict(returncode=rc, seconds=round(time.time() - t, 1), output_tail=tail)
        write(args.out, record)
    if "forward" in sections:
        run_forward(args, record, args.out)
    if "prefill" in sections:
        run_prefill(args, record, args.out)
    if "conv" in sections:
        run_conv(args, record, args.out)


if __name__ == "__main__":
    main()
