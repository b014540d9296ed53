"""HSA kernel benchmarks on one GPU (perf-targets.md §6, kernel level), after the GPU correctness tests.

    source benchmarks/gpu_setup.sh && python benchmarks/kernels/bench_hsa.py --out $OUT [--sections ...]

Sections (default: all, in this order):
  tests   pytest -m gpu tests/kernels (compiled kernels, bf16/fp32 against the reference); result recorded
  tune    small launch-parameter sweeps (attend fwd, dk/dv, select) via RAMBA_HSA_* overrides
  attend  HSA fwd and fwd+bwd, shape A (HQ 16, Hkv 1, d 64, S 64, K 8) and B (32/2/128, K 16), L 4K..1M
          (fwd of shape A also 4M), uniform-random and locality-biased indices, batch 1
  dense   SDPA causal attention (cuDNN and flash backends), same L and heads as shape A/B (16 KV heads)
  select  fused selection vs einsum + topk, dr 1024, K 8, S 64
  decode  CUDA-graphed landmark scan + top-8 vs number of chunks (16K..1M), single-token HSA
Writes kernels-bench.json (machine header + every row) and kernels-bench.md (tables) into --out.
Timing: triton.testing.do_bench (CUDA events, median), after a warm-up call that compiles everything.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time

import torch
import triton

SECTIONS = ("tests", "tune", "attend", "dense", "select", "decode")
LENGTHS = (4096, 16384, 65536, 262144, 1048576)
SHAPES = {"A": dict(HQ=16, HKV=1, D=64, S=64, K=8), "B": dict(HQ=32, HKV=2, D=128, S=64, K=16)}


def header(args):
    p = torch.cuda.get_device_properties(0)
    return dict(device=torch.cuda.get_device_name(0), sms=p.multi_processor_count,
                memory_gib=round(p.total_memory / 2 ** 30, 1), torch=torch.__version__, triton=triton.__version__,
                cuda=torch.version.cuda, python=platform.python_version(), git_sha=args.git_sha,
                date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def bench(fn, rep_ms=200, warmup_ms=50):
    """Median ms over CUDA-event timed repeats (compile/autotune stay out: caller warms up first)."""
    return triton.testing.do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median")


def fwd_bwd_step(q, k, v, idx, w, S):
    """A closure running hsa_attend forward + backward on leaf copies of q/k/v/w (grads dropped each call)."""
    from ramba.kernels.hsa.attend import hsa_attend
    qg, kg, vg, wg = (x.detach().clone().requires_grad_() for x in (q, k, v, w))
    do = torch.randn_like(q)

    def fb():
        hsa_attend(qg, kg, vg, idx, wg, S).backward(do)
        qg.grad = kg.grad = vg.grad = wg.grad = None
    return fb


def peak_gib(fn):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2 ** 30


def make_indices(L, Hkv, K, S, mode, device, gen):
    """Past-chunk indices [1, L, Hkv, K] sorted descending (-1 where fewer chunks are visible).

    uniform: K uniform draws among the visible chunks (worst locality). local: half the slots among the 32 most
    recent chunks, half uniform (a locality-biased mix, as a trained selector tends to produce)."""
    t = torch.arange(L, device=device)
    n = (t // S).view(L, 1, 1)                                   # visible chunks per token
    u = torch.rand(L, Hkv, K, device=device, generator=gen)
    idx = (u * n).long()
    if mode == "local":
        recent = n - 1 - (torch.rand(L, Hkv, K, device=device, generator=gen) * n.clamp(max=32)).long()
        idx = torch.where(torch.arange(K, device=device) < K // 2, recent, idx)
    slot = torch.arange(K, device=device).view(1, 1, K)
    idx = torch.where((n > 0) & (slot < n), idx, torch.full_like(idx, -1))
    return idx.sort(dim=-1, descending=True).values.unsqueeze(0).contiguous()


def hsa_inputs(shape, L, mode, dtype=torch.bfloat16, seed=0):
    from ramba.kernels.hsa.reference import chunk_weights
    s = SHAPES[shape]
    dev = "cuda"
    gen = torch.Generator(device=dev).manual_seed(seed)
    C = L // s["S"]
    q = torch.randn(1, L, s["HQ"], s["D"], device=dev, dtype=dtype, generator=gen)
    k = torch.randn(1, C * s["S"], s["HKV"], s["D"], device=dev, dtype=dtype, generator=gen)
    v = torch.randn(1, C * s["S"], s["HKV"], s["D"], device=dev, dtype=dtype, generator=gen)
    idx = make_indices(L, s["HKV"], s["K"], s["S"], mode, dev, gen)
    sc = torch.randn(idx.shape, device=dev, generator=gen).masked_fill(idx < 0, float("-inf"))
    w = chunk_weights(sc)
    return q, k, v, idx, w


def useful_tflops(shape, L, ms):
    s = SHAPES[shape]
    return 4 * s["HQ"] * s["K"] * s["S"] * s["D"] * L / (ms * 1e-3) / 1e12


# ---------------------------------------------------------------------------------------------------- sections
def run_tests(rows, args):
    t = time.time()
    cmd = [sys.executable, "-P", "-m", "pytest", "-m", "gpu", "tests/kernels", "-q", "-p", "no:cacheprovider", "-x"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    tail = (res.stdout + res.stderr).strip().splitlines()[-15:]
    print("\n".join(tail))
    rows.append(dict(section="tests", rc=res.returncode, summary=tail[-1] if tail else "", seconds=time.time() - t,
                     tail="\n".join(tail)))


@contextlib.contextmanager
def env_overrides(overrides):
    """Environment variables set for the body (the kernels read their RAMBA_HSA_* launch overrides at call time)."""
    old = {k: os.environ.get(k) for k in overrides}
    os.environ.update({k: str(v) for k, v in overrides.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _with_env(env, fn):
    with env_overrides(env):
        return fn()


def run_tune(rows, args):
    from ramba.kernels.hsa.attend import hsa_attend, hsa_backward, hsa_forward
    from ramba.kernels.hsa.select import select_chunks
    ops = args.tune_ops.split(",")
    L = 65536
    for shape in (("A", "B") if "attend" in ops else ()):
        q, k, v, idx, w = hsa_inputs(shape, L, "uniform")
        S = SHAPES[shape]["S"]
        for warps, stages, unroll, spi in [(4, 1, 1, 1), (2, 1, 1, 1), (4, 2, 1, 1), (4, 1, 2, 1), (4, 1, 8, 1),
                                           (4, 1, 1, 2), (4, 2, 1, 2), (8, 1, 1, 2), (4, 1, 1, 4), (8, 2, 1, 4)]:
            env = dict(RAMBA_HSA_WARPS=warps, RAMBA_HSA_STAGES=stages, RAMBA_HSA_UNROLL=unroll, RAMBA_HSA_SPI=spi)
            _tune_one(rows, "attend_fwd", env, lambda: hsa_attend(q, k, v, idx, w, S), shape=shape, L=L)
        o, lse = hsa_forward(q, k, v, idx, w, S)
        do = torch.randn_like(o)
        for block_e, warps, seg in [(2, 4, 512), (4, 4, 512), (8, 4, 512), (16, 4, 512), (8, 4, 2048), (4, 8, 512)]:
            env = dict(RAMBA_HSA_BLOCK_E=block_e, RAMBA_HSA_DKDV_WARPS=warps, RAMBA_HSA_SEG=seg)
            _tune_one(rows, "attend_bwd", env, lambda: hsa_backward(do, q, k, v, idx, w, lse, S), shape=shape, L=L)
        del q, k, v, idx, w, o, lse, do
    if "attend2" in ops:     # second look around the run-2 winner (shape A, fwd only)
        q, k, v, idx, w = hsa_inputs("A", L, "uniform")
        for warps, stages, unroll, spi in [(4, 2, 1, 2), (2, 2, 1, 2), (2, 1, 1, 2), (4, 3, 1, 2), (2, 2, 1, 4)]:
            env = dict(RAMBA_HSA_WARPS=warps, RAMBA_HSA_STAGES=stages, RAMBA_HSA_UNROLL=unroll, RAMBA_HSA_SPI=spi)
            _tune_one(rows, "attend_fwd", env, lambda: hsa_attend(q, k, v, idx, w, 64), shape="A", L=L)
        del q, k, v, idx, w
    if "select" not in ops:
        return
    L, dr = 262144, 1024
    r = torch.randn(1, L, 1, dr, device="cuda", dtype=torch.bfloat16)
    lmk = torch.randn(1, L // 64, 1, dr, device="cuda", dtype=torch.bfloat16)
    for bq, bc, bdr, warps, stages, f32 in [(128, 128, 32, 8, 4, 0), (128, 128, 32, 8, 4, 1),
                                            (128, 128, 32, 8, 5, 1), (128, 128, 64, 8, 4, 1),
                                            (128, 256, 32, 8, 3, 1), (256, 128, 32, 8, 3, 1),
                                            (64, 128, 32, 4, 4, 1), (128, 64, 32, 4, 4, 1)]:
        env = dict(RAMBA_HSA_SEL_BQ=bq, RAMBA_HSA_SEL_BC=bc, RAMBA_HSA_SEL_BDR=bdr, RAMBA_HSA_SEL_WARPS=warps,
                   RAMBA_HSA_SEL_STAGES=stages, RAMBA_HSA_SEL_F32=f32)
        _tune_one(rows, "select", env, lambda: select_chunks(r, lmk, 8, 64), L=L, dr=dr)


def _tune_one(rows, op, env, fn, **meta):
    """Time fn under the RAMBA_HSA_* overrides in env; a config that fails to compile is recorded as NaN."""
    try:
        call = lambda: _with_env(env, fn)   # noqa: E731
        call()
        ms = bench(call, rep_ms=100)
    except Exception as e:
        ms = float("nan")
        print("tune", op, env, "failed:", str(e)[:300])
    rows.append(dict(section="tune", op=op, ms=ms, **meta, **env))
    print(f"tune {op} {meta} {env}: {ms:.3f} ms", flush=True)


def run_attend(rows, args):
    from ramba.kernels.hsa.attend import hsa_attend
    for shape in ("A", "B"):
        lengths = list(LENGTHS) + ([4 * 1048576] if shape == "A" else [])
        for L in lengths:
            if L > args.max_len:
                continue
            for mode in ("uniform", "local"):
                if mode == "local" and L not in (65536, 262144):
                    continue
                q, k, v, idx, w = hsa_inputs(shape, L, mode)
                S = SHAPES[shape]["S"]
                fwd = lambda: hsa_attend(q, k, v, idx, w, S)    # noqa: E731
                fwd()
                ms_f = bench(fwd, rep_ms=args.rep)
                mem_f = peak_gib(fwd)
                row = dict(section="attend", shape=shape, L=L, mode=mode, fwd_ms=ms_f,
                           fwd_tflops=useful_tflops(shape, L, ms_f), fwd_mtok_s=L / ms_f / 1e3, fwd_peak_gib=mem_f)
                if L <= 1048576:
                    fb = fwd_bwd_step(q, k, v, idx, w, S)
                    fb()
                    ms_fb = bench(fb, rep_ms=args.rep)
                    row.update(fwdbwd_ms=ms_fb, fwdbwd_peak_gib=peak_gib(fb))
                    del fb
                rows.append(row)
                print(f"attend {shape} L={L} {mode}: fwd {ms_f:.3f} ms ({row['fwd_tflops']:.0f} TF/s), "
                      f"fwd+bwd {row.get('fwdbwd_ms', float('nan')):.3f} ms")
                del q, k, v, idx, w
                torch.cuda.empty_cache()


def run_dense(rows, args):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    F = torch.nn.functional
    for shape in ("A", "B"):
        s = SHAPES[shape]
        for L in LENGTHS:
            if L > min(args.max_len, 262144):
                continue
            q = torch.randn(1, s["HQ"], L, s["D"], device="cuda", dtype=torch.bfloat16)
            k, v = torch.randn_like(q), torch.randn_like(q)
            for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
                row = dict(section="dense", shape=shape, L=L, backend=name)
                try:
                    with sdpa_kernel([backend]):
                        fwd = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)   # noqa: E731
                        fwd()
                        rep = args.rep if L <= 65536 else 3 * args.rep
                        row["fwd_ms"] = bench(fwd, rep_ms=rep)
                        if L <= 65536:
                            qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
                            do = torch.randn_like(q)

                            def fb():
                                F.scaled_dot_product_attention(qg, kg, vg, is_causal=True).backward(do)
                                qg.grad = kg.grad = vg.grad = None
                            fb()
                            row["fwdbwd_ms"] = bench(fb, rep_ms=rep)
                    flops = 2 * 2 * s["HQ"] * s["D"] * L * L / 2
                    row["fwd_tflops"] = flops / (row["fwd_ms"] * 1e-3) / 1e12
                except Exception as e:
                    row["error"] = str(e)[:200]
                rows.append(row)
                print(f"dense {shape} L={L} {name}: {row}")
            del q, k, v
            torch.cuda.empty_cache()


def run_select(rows, args):
    from ramba.kernels.hsa.select import select_chunks
    dr, K, S = 1024, 8, 64
    for L in LENGTHS:
        if L > args.max_len:
            continue
        C = L // S
        r = torch.randn(1, L, 1, dr, device="cuda", dtype=torch.bfloat16)
        lmk = torch.randn(1, C, 1, dr, device="cuda", dtype=torch.bfloat16)
        fused = lambda: select_chunks(r, lmk, K, S)   # noqa: E731
        fused()
        ms = bench(fused, rep_ms=args.rep)
        flops = 2 * dr * sum_visible(L, S)
        row = dict(section="select", L=L, C=C, dr=dr, K=K, fused_ms=ms, fused_tflops=flops / (ms * 1e-3) / 1e12,
                   fused_peak_gib=peak_gib(fused))
        if L <= 262144:
            vis = torch.arange(C, device="cuda")[None, :] < (torch.arange(L, device="cuda") // S)[:, None]

            def naive():       # the authors' way: full score matrix, mask, torch.topk
                sc = torch.einsum("bthd,bchd->bthc", r, lmk).float() / math.sqrt(dr)
                sc.masked_fill_(~vis[None, :, None, :], float("-inf"))
                return sc.topk(K, dim=-1)
            naive()
            row["einsum_topk_ms"] = bench(naive, rep_ms=args.rep)
            row["einsum_topk_peak_gib"] = peak_gib(naive)
            del vis
        rows.append(row)
        print(f"select L={L}: {row}")
        del r, lmk
        torch.cuda.empty_cache()


def sum_visible(L, S):
    """Number of (token, visible chunk) pairs of a causal prefill: sum_t floor(t / S)."""
    C = L // S
    return S * C * (C - 1) // 2 + (L - C * S) * C


def graphed(fn):
    """Capture fn in a CUDA graph; returns a replay callable (decode is launch-bound without graphs)."""
    fn()
    torch.cuda.synchronize()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


def run_decode(rows, args):
    from ramba.kernels.hsa.decode import hsa_attend_decode, select_chunks_decode
    from ramba.kernels.hsa.reference import chunk_weights
    dr, K, S = 1024, 8, 64
    for C in (16384, 65536, 262144, 1048576):
        r = torch.randn(1, 1, 1, dr, device="cuda", dtype=torch.bfloat16)
        lmk = torch.randn(1, C, 1, dr, device="cuda", dtype=torch.bfloat16)
        pos = torch.tensor([C * S], device="cuda")
        scan = graphed(lambda: select_chunks_decode(r, lmk, K, S, pos))
        ms = bench(scan, rep_ms=args.rep)

        def naive():
            return (torch.matmul(lmk[0, :, 0], r[0, 0, 0]).float() / math.sqrt(dr)).topk(K)
        naive_ms = bench(graphed(naive), rep_ms=args.rep)
        row = dict(section="decode", op="select", C=C, dr=dr, K=K, ms=ms, matvec_topk_ms=naive_ms,
                   landmark_gbs=C * dr * 2 / (ms * 1e-3) / 1e9)
        rows.append(row)
        print(f"decode select C={C}: {row}")
        del lmk
        torch.cuda.empty_cache()
    for shape in ("A", "B"):
        s = SHAPES[shape]
        C = 16384
        q = torch.randn(1, 1, s["HQ"], s["D"], device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, C * S, s["HKV"], s["D"], device="cuda", dtype=torch.bfloat16)
        v = torch.randn_like(k)
        idx = torch.randint(0, C, (1, 1, s["HKV"], s["K"]), device="cuda").sort(-1, descending=True).values
        w = chunk_weights(torch.randn(idx.shape, device="cuda"))
        att = graphed(lambda: hsa_attend_decode(q, k, v, idx, w, S))
        ms = bench(att, rep_ms=args.rep)
        rows.append(dict(section="decode", op="attend", shape=shape, C=C, ms=ms))
        print(f"decode attend {shape}: {ms * 1e3:.1f} us")


# ---------------------------------------------------------------------------------------------------- report
def fmt(x, nd=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def markdown(hdr, rows):
    out = [f"# HSA kernel benchmarks ({hdr['device']})", "",
           f"torch {hdr['torch']}, Triton {hdr['triton']}, CUDA {hdr['cuda']}, git {hdr['git_sha']}, {hdr['date']}. "
           "bf16, batch 1, median of CUDA-event timings (triton.testing.do_bench). Useful TFLOP/s = "
           "4·HQ·K·S·d per token.", ""]
    tests = [r for r in rows if r["section"] == "tests"]
    if tests:
        out += [f"GPU correctness tests (`pytest -m gpu tests/kernels`): rc={tests[0]['rc']}, {tests[0]['summary']}", ""]
    dense = {(r["shape"], r["L"], r["backend"]): r for r in rows if r["section"] == "dense"}
    att = [r for r in rows if r["section"] == "attend" and "fwd_ms" in r]
    if att:
        out += ["## HSA attention vs dense causal SDPA", "",
                "| shape | L | indices | fwd ms | useful TF/s | fwd+bwd ms | peak GiB (f+b) | cuDNN fwd ms | "
                "flash fwd ms | fwd speedup vs cuDNN | cuDNN f+b ms | f+b speedup vs cuDNN |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in att:
            cd = dense.get((r["shape"], r["L"], "cudnn"), {})
            fl = dense.get((r["shape"], r["L"], "flash"), {})
            sp = cd.get("fwd_ms", float("nan")) / r["fwd_ms"]
            spb = cd.get("fwdbwd_ms", float("nan")) / r.get("fwdbwd_ms", float("nan"))
            out.append(f"| {r['shape']} | {r['L']} | {r['mode']} | {fmt(r['fwd_ms'])} | {fmt(r['fwd_tflops'], 0)} | "
                       f"{fmt(r.get('fwdbwd_ms'))} | {fmt(r.get('fwdbwd_peak_gib'), 2)} | {fmt(cd.get('fwd_ms'))} | "
                       f"{fmt(fl.get('fwd_ms'))} | {fmt(sp, 1)} | {fmt(cd.get('fwdbwd_ms'))} | {fmt(spb, 1)} |")
        out.append("")
    sel = [r for r in rows if r["section"] == "select" and "fused_ms" in r]
    if sel:
        out += ["## Fused selection vs einsum + topk (dr 1024, K 8, S 64)", "",
                "| L | chunks | fused ms | fused TF/s | einsum+topk ms | speedup | fused peak GiB | einsum peak GiB |",
                "|---|---|---|---|---|---|---|---|"]
        for r in sel:
            sp = r.get("einsum_topk_ms", float("nan")) / r["fused_ms"]
            out.append(f"| {r['L']} | {r['C']} | {fmt(r['fused_ms'])} | {fmt(r['fused_tflops'], 0)} | "
                       f"{fmt(r.get('einsum_topk_ms'))} | {fmt(sp, 1)} | {fmt(r['fused_peak_gib'], 2)} | "
                       f"{fmt(r.get('einsum_topk_peak_gib'), 2)} |")
        out.append("")
    dec = [r for r in rows if r["section"] == "decode" and "ms" in r]
    if dec:
        out += ["## Decode (CUDA-graphed, batch 1)", "", "| op | chunks | ms | torch matvec+topk ms | landmark GB/s |",
                "|---|---|---|---|---|"]
        for r in dec:
            name = "select top-8, dr 1024" if r["op"] == "select" else f"hsa_attend_decode shape {r['shape']}"
            out.append(f"| {name} | {r['C']} | {fmt(r['ms'], 4)} | {fmt(r.get('matvec_topk_ms'), 4)} | "
                       f"{fmt(r.get('landmark_gbs'), 0)} |")
        out.append("")
    tune = [r for r in rows if r["section"] == "tune" and "ms" in r]
    if tune:
        out += ["## Tuning sweep (L 64K for attend, 256K for select; the tables above use the defaults in kernels/autotune.py)", "", "| op | shape | knobs | ms |", "|---|---|---|---|"]
        for r in tune:
            knobs = ", ".join(f"{k[10:]}={v}" for k, v in r.items() if k.startswith("RAMBA_HSA_"))
            out.append(f"| {r['op']} | {r.get('shape', '')} | {knobs} | {fmt(r['ms'])} |")
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--max-len", type=int, default=4 * 1048576)
    ap.add_argument("--rep", type=int, default=200, help="do_bench repeat budget in ms")
    ap.add_argument("--git-sha", default=os.environ.get("GIT_SHA", "unknown"))
    ap.add_argument("--tune-ops", default="attend,select", help="which sweeps the tune section runs")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    hdr = header(args)
    print(hdr)
    rows = []
    todo = args.sections.split(",")
    for name in SECTIONS:
        if name not in todo:
            continue
        t = time.time()
        try:
            globals()[f"run_{name}"](rows, args)
        except Exception as e:   # keep what earlier sections measured
            import traceback
            traceback.print_exc()
            rows.append(dict(section=name, error=repr(e)[:500]))
        print(f"== section {name}: {time.time() - t:.1f} s", flush=True)
        with open(os.path.join(args.out, "kernels-bench.json"), "w") as f:
            json.dump(dict(header=hdr, rows=rows), f, indent=1)
        with open(os.path.join(args.out, "kernels-bench.md"), "w") as f:
            f.write(markdown(hdr, rows))
    print(markdown(hdr, rows))


if __name__ == "__main__":
    main()
