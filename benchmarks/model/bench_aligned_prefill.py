"""Long-prompt prefill in pieces: fixed pieces with logits="last" (the evaluation path before reset-aligned
pieces) against model.prefill_stream (pieces re-cut on reset boundaries, logits="none" for all but the last call:
today's path), same prompt, same process, per chunk-memory placement. The fixed path runs retrieval + the upper stack on every piece's tail
after its last reset boundary (and, offloaded, one host gather per piece); the aligned path runs them once.

    python benchmarks/model/bench_aligned_prefill.py --out benchmarks/records/aligned-prefill [--device cuda]
        [--length 256K] [--piece 16K] [--placements gpu,host] [--rounds 2]

Writes aligned-prefill-<device>.json: header (device, versions, git sha, load) + one row per (round, path,
placement): seconds, tokens/s, host gathers, and max |logit difference| of the last token against the fixed path.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch


def feed(model, ids, placement: str, piece: int, aligned: bool, device: str):
    """Prefill ids [1, L] in pieces; -> (seconds, last logits [V], host gathers)."""
    from ramba.evals.env import sync
    state = model.allocate_state(1, device=device, memory=placement, prompt_length=ids.shape[1])
    L = ids.shape[1]
    pieces = [ids[:, s:s + piece] for s in range(0, L, piece)]                           # [1, piece] each
    sync(device)
    t = time.perf_counter()
    if aligned:
        out, state = model.prefill_stream(pieces, state)
    else:
        for x in pieces:
            out, state = model.prefill(x, state, logits="last")
    sync(device)
    el = time.perf_counter() - t
    gathers = getattr(state.memory, "gathers", None)
    state.memory.close()
    return el, out[0, -1].float().cpu(), gathers


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--checkpoint", default="checkpoints/ramba-tiny")
    ap.add_argument("--length", default="256K")
    ap.add_argument("--piece", default="16K")
    ap.add_argument("--placements", default="gpu,host")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    from ramba import RambaModel
    from ramba.atomic import atomic_write_text
    from ramba.evals import env
    from ramba.evals.defaults import REPO_ROOT
    from ramba.evals.lengths import parse_lengths
    if a.device == "cpu":
        torch.set_num_threads(a.threads)
    L, piece = parse_lengths(a.length)[0], parse_lengths(a.piece)[0]
    model = RambaModel.from_pretrained(a.checkpoint, device=a.device).eval()
    ids = torch.randint(0, 256, (1, L), generator=torch.Generator().manual_seed(0)).to(a.device)
    rows = []
    with torch.inference_mode():
        feed(model, ids[:, :4096], "gpu", 1024, True, a.device)                       # warm-up
        for rnd in range(a.rounds):
            for placement in a.placements.split(","):
                ref = None
                for aligned in (False, True):                                         # alternate: load drifts
                    el, last, gathers = feed(model, ids, placement, piece, aligned, a.device)
                    ref = last if ref is None else ref
                    rows.append(dict(round=rnd, path="aligned-none" if aligned else "fixed-last",
                                     placement=placement, length=L, piece=piece, seconds=round(el, 3),
                                     tokens_per_s=round(L / el), host_gathers=gathers,
                                     max_abs_logit_diff_vs_fixed=float((last - ref).abs().max())))
                    print(rows[-1], flush=True)
    speedups = {}
    for placement in a.placements.split(","):
        t = {p: min(r["seconds"] for r in rows if r["placement"] == placement and r["path"] == p)
             for p in ("fixed-last", "aligned-none")}
        speedups[placement] = round(t["fixed-last"] / t["aligned-none"], 3)
    rec = dict(kind="aligned-prefill", header=dict(git_sha=env.git_sha(REPO_ROOT), packages=env.package_versions(),
                                                   env=env.device_info(a.device), threads=a.threads,
                                                   loadavg_1m_at_end=round(os.getloadavg()[0], 2),
                                                   date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
               speedup_best_of_rounds=speedups, rows=rows)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"aligned-prefill-{a.device}.json", json.dumps(rec, indent=1, default=str) + "\n")
    print("speedup (fixed / aligned, best of rounds):", speedups)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
