"""`ramba-eval bench`: prefill tokens/s, decode ms/token (p50/p99), peak GPU and host memory against context
length, per chunk-memory placement, plus where the time goes (mixers, chunk encoder, selection, HSA, transfers).

One record per (placement, length) in bench.jsonl (resumable: done pairs are skipped), meta.json with the
machine and versions, and bench.md + bench.png (curves per placement). Prompts are random token ids: speed and
memory do not depend on them. The breakdown profiles the final prefill segment (at full context) and the decode
steps, synchronizing around each section; the rest of the prefill runs unprofiled, as in an evaluation.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ramba.errors import BadInputError, RambaEvalError
from ramba.evals import env
from ramba.evals.records import append_records, read_records

BENCH_FILE = "bench.jsonl"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class BenchRecord:
    schema_version: int
    model: str
    device: str
    placement: str                 # where the chunk memory lived
    requested: str                 # what was asked (auto resolves to a placement)
    length: int                    # prompt tokens
    segment: int                   # prompt tokens per prefill call
    dtype: str
    memory_dtype: str
    prefill_s: float
    prefill_tok_s: float
    decode_tokens: int
    decode_ms_p50: float | None
    decode_ms_p99: float | None
    peak_gpu_bytes: int            # 0 on CPU
    peak_host_bytes: int           # peak RSS of the process during this record
    state_device_bytes: int
    state_host_bytes: int
    state_disk_bytes: int
    written_bytes: int             # chunk K/V written out to the tier
    gathered_chunks: int           # chunks fetched back to the compute device
    breakdown_prefill_s: dict = field(default_factory=dict)   # final segment, seconds per section
    breakdown_decode_ms: dict = field(default_factory=dict)   # per decode token, ms per section
    memory_line: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch
        torch.cuda.synchronize(device)


def bench_one(be, length: int, placement: str, decode_tokens: int = 32, seed: int = 0) -> BenchRecord:
    """Prefill `length` random tokens then greedy-decode `decode_tokens`, on a RambaBackend `be`."""
    import torch
    from ramba.profile import Profile
    be.requested_memory, be.placement = placement, None
    line = be.check_fits(length)                          # raises DoesNotFitError before allocating
    be.close()
    dev = be.device
    env.reset_peak_host()
    env.reset_peak_gpu(dev)
    be.reset(prompt_length=length)
    rng = np.random.default_rng(seed)
    vocab = be.model.cfg.vocab_size
    seg = be.segment
    cuda = dev.startswith("cuda")
    last_start = ((length - 1) // seg) * seg
    _sync(dev)
    t0 = time.perf_counter()
    for s in range(0, last_start, seg):          # as the runner feeds a prompt: no logits until the last piece
        be.consume_more(rng.integers(0, vocab, size=min(seg, length - s), dtype=np.int64))
    with Profile(cuda=cuda) as pp:
        logits = be.consume(rng.integers(0, vocab, size=length - last_start, dtype=np.int64))
    _sync(dev)
    prefill_s = time.perf_counter() - t0
    times = []
    with Profile(cuda=cuda) as pd:
        for _ in range(decode_tokens):
            t = time.perf_counter()
            logits = be.step(int(torch.argmax(logits)))
            _sync(dev)
            times.append((time.perf_counter() - t) * 1e3)
    mem = be.state.memory
    store = getattr(mem, "store", None)
    rec = BenchRecord(
        schema_version=SCHEMA_VERSION, model=be.model_id, device=dev, placement=be.placement,
        requested=placement, length=length, segment=seg, dtype=be.dtype, memory_dtype=be.memory_dtype,
        prefill_s=prefill_s, prefill_tok_s=length / max(prefill_s, 1e-9), decode_tokens=decode_tokens,
        decode_ms_p50=float(np.percentile(times, 50)) if times else None,
        decode_ms_p99=float(np.percentile(times, 99)) if times else None,
        peak_gpu_bytes=env.peak_gpu_bytes(dev), peak_host_bytes=env.peak_host_bytes(),
        state_device_bytes=0 if mem is None else int(mem.device_nbytes()),
        state_host_bytes=0 if mem is None else int(mem.host_nbytes()),
        state_disk_bytes=0 if mem is None else int(mem.disk_nbytes()),
        written_bytes=int(getattr(store, "bytes_written", 0)),
        gathered_chunks=int(getattr(mem, "gathered_chunks", 0)),
        breakdown_prefill_s={k: round(v, 6) for k, v in pp.seconds.items()},
        breakdown_decode_ms={k: round(1e3 * v / max(1, decode_tokens), 4) for k, v in pd.seconds.items()},
        memory_line=line)
    be.close()
    return rec


def _meta(be, args: dict) -> dict:
    from ramba.evals.defaults import REPO_ROOT
    return {"schema_version": SCHEMA_VERSION, "kind": "bench", "args": args,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_sha": env.git_sha(REPO_ROOT), "packages": env.package_versions(), "env": env.device_info(be.device),
            "model_config": be.model.cfg.to_dict(), "backend": be.meta(), "torch_threads": _threads()}


def _threads() -> int:
    import torch
    return torch.get_num_threads()


def run_bench(model: str, lengths, placements, out, device: str = "auto", dtype: str | None = None,
              memory_dtype: str | None = None, segment: int | None = None, decode_tokens: int = 32,
              memory_dir: str | None = None, seed: int = 0, echo=print) -> Path:
    from ramba.atomic import atomic_write_text
    from ramba.evals.backends import load_backend, parse_model_spec, resolve_device
    from ramba.evals.lengths import parse_lengths
    from ramba.evals.runner import resolve_model_id
    from ramba.budget import CHOICES
    lengths = parse_lengths(lengths)
    placements = tuple(placements.split(",")) if isinstance(placements, str) else tuple(placements)
    for p in placements:
        if p not in CHOICES:
            raise BadInputError(f"unknown memory placement {p!r}; use {', '.join(CHOICES)} (comma-separated)")
    name, model_id = parse_model_spec(model)
    if name != "ramba":
        raise BadInputError("bench measures the ramba backend: --model ramba:PATH_OR_PRESET")
    out = Path(out)
    device = resolve_device(device)
    # tokenizer "byte": bench prefills random ids over the model's own vocabulary, so no tokenizer is used, and the
    # random-weight presets (370m, 3b) ship none
    kw = dict(dtype=dtype, memory_dtype=memory_dtype, memory_dir=memory_dir or str(out / "memory"), tokenizer="byte")
    if segment:
        kw["segment"] = int(segment)
    be = load_backend(name, resolve_model_id(model_id), device=device, **kw)
    out.mkdir(parents=True, exist_ok=True)
    args = dict(model=model, lengths=list(lengths), placements=list(placements), device=device, dtype=dtype,
                memory_dtype=memory_dtype, segment=be.segment, decode_tokens=decode_tokens, seed=seed)
    atomic_write_text(out / "meta.json", json.dumps(_meta(be, args), indent=2, sort_keys=True, default=str) + "\n")
    path = out / BENCH_FILE
    done = {(r["requested"], r["length"], r["dtype"], r["memory_dtype"]) for r in read_records(path, repair=True)}
    try:
        for placement in placements:
            warm = False
            for length in lengths:
                if (placement, length, be.dtype, be.memory_dtype) in done:
                    continue
                try:
                    if not warm:     # kernels compile / autotune and lazy inits run outside the timed pass
                        bench_one(be, min(length, 2 * be.segment), placement, min(decode_tokens, 4), seed)
                        warm = True
                    rec = bench_one(be, length, placement, decode_tokens, seed)
                except RambaEvalError as e:         # does not fit this tier: say so, go on with the others
                    echo(f"skip {placement} at {length:,}: {' '.join(str(e).split())}")
                    continue
                append_records(path, [rec])
                echo(f"{rec.placement:>4} L={length:>11,}  prefill {rec.prefill_tok_s:>12,.0f} tok/s  "
                     f"decode p50 {rec.decode_ms_p50 or 0:.2f} ms  peak GPU {rec.peak_gpu_bytes / 2**30:.2f} GiB  "
                     f"host {rec.peak_host_bytes / 2**30:.2f} GiB")
    finally:
        be.close()
        mem_dir = out / "memory"
        if mem_dir.is_dir() and not any(mem_dir.iterdir()):
            mem_dir.rmdir()
    write_bench_report(out)
    return out


def write_bench_report(out) -> dict:
    """bench.md (a table) and bench.png (tokens/s, decode ms, peak GPU memory vs length per placement)."""
    from ramba.atomic import atomic_write_text
    from ramba.budget import human
    out = Path(out)
    rows = read_records(out / BENCH_FILE)
    lines = ["# ramba-eval bench", "", "| placement | dtype / memory | length | prefill tok/s | decode p50 / p99 ms "
             "| peak GPU | peak host | state dev / host / disk | breakdown (final segment, s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["placement"], r["dtype"], r["memory_dtype"], r["length"])):
        bd = ", ".join(f"{k} {v:.3f}" for k, v in sorted(r["breakdown_prefill_s"].items(), key=lambda kv: -kv[1]))
        lines.append(f"| {r['placement']} | {r['dtype']} / {r['memory_dtype']} | {r['length']:,} | "
                     f"{r['prefill_tok_s']:,.0f} | {r['decode_ms_p50'] or 0:.2f} / {r['decode_ms_p99'] or 0:.2f} | "
                     f"{human(r['peak_gpu_bytes'])} | {human(r['peak_host_bytes'])} | "
                     f"{human(r['state_device_bytes'])} / {human(r['state_host_bytes'])} / "
                     f"{human(r['state_disk_bytes'])} | {bd} |")
    paths = {"md": out / "bench.md"}
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        series = {}
        for r in rows:
            series.setdefault(f"{r['placement']} {r['memory_dtype']}", []).append(r)
        for label, rs in sorted(series.items()):
            rs = sorted(rs, key=lambda r: r["length"])
            x = [r["length"] for r in rs]
            axes[0].plot(x, [r["prefill_tok_s"] for r in rs], "o-", label=label)
            axes[1].plot(x, [r["decode_ms_p50"] or 0 for r in rs], "o-", label=label)
            axes[2].plot(x, [r["peak_gpu_bytes"] / 2**30 for r in rs], "o-", label=label)
        for ax, title in zip(axes, ("prefill tokens/s", "decode ms/token (p50)", "peak GPU memory (GiB)")):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("context length (tokens)")
            ax.set_title(title)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "bench.png", dpi=110)
        plt.close(fig)
        paths["png"] = out / "bench.png"
        lines += ["", "![bench](bench.png)"]
    except ImportError:
        lines += ["", "(matplotlib is not installed: no plot)"]
    atomic_write_text(paths["md"], "\n".join(lines) + "\n")
    return paths
