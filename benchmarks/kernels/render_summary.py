"""Markdown summary of the issue-13 record (issue13-kernels.json): target | measured | met? | reason, every cell
computed from the measured numbers. No torch needed, so it runs on the GPU machine after each section and
locally on the fetched record:

    python benchmarks/kernels/render_summary.py OUT/issue13-kernels.json --out OUT/kernels-h200-summary.md
    python benchmarks/kernels/render_summary.py REC --mark locality=124     # the shell marks a killed section
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys

TARGET_SELECT_MS = 2.5
TARGET_FWD_TFLOPS = 150.0
TARGET_DECODE_SPEEDUP = 2.0
TARGET_TOKENS_S = 250_000
CONFIG_LABELS = {"sel_bc256_st3": "selection 128 x 256 tiles, 3 stages", "sel_bdr64": "selection dr step 64",
                 "fwd_warps2": "attend fwd 2 warps, 2 stages, 2 slots per step"}
ELEMENTWISE = re.compile(r"elementwise|vectorized|reduce|copy|fill|cat|index|gather|scatter|where|mul|add", re.I)


def f(x, nd=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, (int,)) and not isinstance(x, bool):
        return f"{x:,}"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def sci(x):
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.2e}"


def kfmt(n):
    """Token or chunk counts: 65536 -> 64K, 1048576 -> 1M, 640 -> 640."""
    if not isinstance(n, int):
        return "?"
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}M"
    return f"{n >> 10}K" if n >= 1024 and n % 1024 == 0 else str(n)


def pct(x):
    return "–" if x is None else f"{100 * x:.0f}%"


def rows(rec, name, **match):
    sec = rec.get("sections", {}).get(name) or {}
    return [r for r in sec.get("rows", []) if all(r.get(k) == v for k, v in match.items())]


def one(rec, name, **match):
    found = rows(rec, name, **match)
    return found[0] if found else None


def not_measured(rec, name):
    """None when the section finished; else why its numbers are missing (timeout, error, skipped, absent)."""
    sec = rec.get("sections", {}).get(name)
    if sec is None:
        return f"section `{name}` did not run"
    st = sec.get("status")
    if st == "ok":
        return None
    why = f"section `{name}` {st}"
    if sec.get("error"):
        why += f": {sec['error'][:160]}"
    return why + f" after {f(sec.get('seconds'), 0)} s"


def partial(rec, name):
    why = not_measured(rec, name)
    return f" (partial: {why})" if why else ""


# ---------------------------------------------------------------------------------------------------- targets
def t_select(rec):
    target = f"fused selection ≤ {TARGET_SELECT_MS} ms at 256K (dr 1024, K 8, S 64), vs einsum + topk"
    d = one(rec, "select", op="fused", config="default")
    if not d or d.get("ms") is None:
        return target, "–", "not measured", not_measured(rec, "select") or (d or {}).get("error", "no row")
    gemm = one(rec, "select", op="gemm")
    naive = one(rec, "select", op="einsum_topk")
    flops = rec["sections"]["select"].get("flops")
    ok_cfgs = [r for r in rows(rec, "select", op="fused") if r.get("ms") is not None and r.get("correct")]
    best = min(ok_cfgs, key=lambda r: r["ms"]) if ok_cfgs else d
    measured = f"default {f(d['ms'])} ms ({f(d.get('tflops'), 0)} TF/s)"
    if best is not d:
        measured += f"; best checked config {CONFIG_LABELS.get(best['config'], best['config'])} {f(best['ms'])} ms"
    if naive and naive.get("ms") is not None:
        measured += f"; einsum + topk {f(naive['ms'])} ms ({f(naive['ms'] / d['ms'], 1)}× the fused time)"
    if d["ms"] <= TARGET_SELECT_MS and d.get("correct"):
        met = "yes"
    elif best["ms"] <= TARGET_SELECT_MS:
        met = f"yes with `{best['config']}` (not the default yet)"
    else:
        met = "no"
    need = flops / (TARGET_SELECT_MS * 1e-3) / 1e12 if flops else None
    reason = (f"{TARGET_SELECT_MS} ms needs {f(need, 0)} TF/s of score GEMM + merge; the best correct config runs "
              f"{f(best.get('tflops'), 0)} TF/s ({f(best['ms'] / TARGET_SELECT_MS, 2)}× the target time)")
    if gemm and gemm.get("tflops"):
        reason += (f", {pct(best.get('tflops', 0) / gemm['tflops'])} of this device's dense bf16 GEMM "
                   f"({f(gemm['tflops'], 0)} TF/s at {gemm['n']}³)")
    if met == "yes":
        reason = f"{f(d['ms'])} ms ≤ {TARGET_SELECT_MS} ms at {f(d.get('tflops'), 0)} TF/s"
    if not d.get("correct"):
        reason += f"; default failed its correctness check: {d.get('check_msg') or d.get('error')}"
    return target, measured, met, reason + partial(rec, "select")


def t_fb4k(rec):
    target = "HSA fwd+bwd at 4K ≤ cuDNN SDPA causal at 4K (16 heads, d 64), shape A"
    h = one(rec, "fb4k", op="hsa")
    c = one(rec, "fb4k", op="sdpa", backend="cudnn")
    fl = one(rec, "fb4k", op="sdpa", backend="flash")
    note = ""
    if (not c or c.get("fwdbwd_ms") is None) and fl and fl.get("fwdbwd_ms") is not None:
        note = f" (cuDNN failed: {(c or {}).get('error', 'no row')[:100]}; compared with flash)"
        c, fl = fl, None
    if not h or h.get("fwdbwd_ms") is None or not c or c.get("fwdbwd_ms") is None:
        why = not_measured(rec, "fb4k") or (c or {}).get("error") or "no rows"
        return target, f"HSA {f((h or {}).get('fwdbwd_ms'))} ms" if h else "–", "not measured", why
    fb, cu = h["fwdbwd_ms"], c["fwdbwd_ms"]
    name = "cuDNN" if c.get("backend") == "cudnn" else c.get("backend")
    measured = (f"HSA {f(fb)} ms (fwd {f(h.get('fwd_lse_ms'))} + bwd {f(h.get('bwd_ms'))}); {name} {f(cu)} ms"
                f" (fwd {f(c.get('fwd_ms'))})")
    if fl and fl.get("fwdbwd_ms") is not None:
        measured += f"; flash {f(fl['fwdbwd_ms'])} ms"
    met = "yes" if fb <= cu else "no"
    parts = [f"HSA is {f(fb / cu, 2)}× {name}{note}"]
    if h.get("bwd_ms"):
        parts.append(f"the backward is {pct(h['bwd_ms'] / fb)} of fwd+bwd")
        if h.get("chunk_lists_ms") is not None:
            parts.append(f"building its chunk lists (sort + bincount + scans) takes {f(h['chunk_lists_ms'])} ms = "
                         f"{pct(h['chunk_lists_ms'] / h['bwd_ms'])} of the backward")
    if h.get("fwdbwd_graphed_ms") is not None:
        g = h["fwdbwd_graphed_ms"]
        parts.append(f"in one CUDA graph fwd+bwd takes {f(g)} ms ({f(g / cu, 2)}× {name}), so host launch gaps "
                     f"account for {f(max(0.0, fb - g))} ms")
    elif h.get("graph_error"):
        parts.append(f"CUDA-graph capture failed ({h['graph_error'][:80]})")
    return target, measured, met, "; ".join(parts) + partial(rec, "fb4k")


def t_locality(rec):
    target = f"HSA fwd ≥ {TARGET_FWD_TFLOPS:.0f} useful TF/s at ≥ 64K with the locality of the trained selector"
    sec = rec.get("sections", {}).get("locality") or {}
    st = sec.get("model_stats") or {}
    cap = sec.get("capture") or {}
    model = [r for r in rows(rec, "locality", mode="model") if r.get("fwd_tflops") is not None]
    if not model:
        return target, "–", "not measured", not_measured(rec, "locality") or "no model-index rows"
    by = {(r["mode"], r["L"]): r for r in rows(rec, "locality") if r.get("fwd_tflops") is not None}
    lens = sorted({r["L"] for r in model})
    measured = "; ".join(
        f"{kfmt(L)}: model {f(by[('model', L)]['fwd_tflops'], 0)}"
        + (f", synth {f(by[('synth', L)]['fwd_tflops'], 0)}" if ("synth", L) in by else "")
        + (f", uniform {f(by[('uniform', L)]['fwd_tflops'], 0)}" if ("uniform", L) in by else "") + " TF/s"
        for L in lens)
    best = max(model, key=lambda r: r["fwd_tflops"])
    met = "yes" if best["fwd_tflops"] >= TARGET_FWD_TFLOPS and best["L"] >= 65536 else "no"
    L0 = lens[0]
    m, u = by[("model", L0)], by.get(("uniform", L0))
    parts = [f"ramba-tiny on a {f(cap.get('prompt_tokens'))}-token passkey prompt shares "
             f"{pct(st.get('share_prev'))} of a token's {st.get('K', '')} chunks with the previous token and picks "
             f"{f(st.get('distinct_per_64'), 0)} distinct chunks per 64 tokens "
             f"(each used {f(st.get('reuse_64'), 1)}×), "
             f"{pct(st.get('recent_frac'))} of slots within the {st.get('recent', 32)} newest chunks"]
    if u:
        parts.append(f"at {kfmt(L0)} its indices run {f(m['fwd_tflops'], 0)} vs {f(u['fwd_tflops'], 0)} TF/s uniform "
                     f"({f(m['fwd_tflops'] / u['fwd_tflops'], 2)}×), gathering {f(m.get('gather_tbs'), 1)} vs "
                     f"{f(u.get('gather_tbs'), 1)} TB/s of K/V")
    if met == "no":
        parts.append(f"{TARGET_FWD_TFLOPS:.0f} TF/s is {f(TARGET_FWD_TFLOPS / best['fwd_tflops'], 2)}× "
                     "the best measured "
                     f"({f(best['fwd_tflops'], 0)} at {kfmt(best['L'])}); loading each chunk once per 64-token "
                     f"tile would cut K/V loads by up to {f(st.get('reuse_64'), 1)}× on this pattern")
    if cap.get("passkey_teacher_forced") is not None:
        parts.append(f"(the model {'does' if cap['passkey_teacher_forced'] else 'does not'} recall this prompt's key, "
                     f"teacher-forced)")
    return target, measured, met, "; ".join(parts) + partial(rec, "locality")


def t_configs(rec):
    out = []
    sel_default = one(rec, "select", op="fused", config="default")
    att_default = one(rec, "configs", config="default")
    for name, label in CONFIG_LABELS.items():
        sec_name = "select" if name.startswith("sel_") else "configs"
        r = one(rec, sec_name, op="fused", config=name) if sec_name == "select" else one(rec, sec_name, config=name)
        base = sel_default if sec_name == "select" else att_default
        target = f"NOTES.md faster config: {label}, after a compiled correctness run"
        if not r:
            out.append((target, "–", "not measured", not_measured(rec, sec_name) or "no row"))
            continue
        if r.get("error"):
            out.append((target, "–", "no", f"failed: {r['error'][:200]}"))
            continue
        key = "ms" if sec_name == "select" else "fwd_ms"
        ms, b = r.get(key), (base or {}).get(key)
        sp = b / ms if (ms and b) else None
        measured = f"{f(ms)} ms vs default {f(b)} ms ({f(sp, 2)}×)"
        if sec_name == "configs" and r.get("fwdbwd_ms") is not None:
            measured += f"; fwd+bwd {f(r['fwdbwd_ms'])} vs {f((base or {}).get('fwdbwd_ms'))} ms"
        if sec_name == "select":
            check = (f"check at {kfmt(r.get('check_L'))} tokens vs reference: "
                     f"{pct(r.get('rows_identical'))} of rows identical, "
                     + ("the rest near-ties within 2e-4" if r.get("correct") else f"FAILED: {r.get('check_msg')}"))
        else:
            errs = r.get("rel_err") or {}
            worst = max(errs.items(), key=lambda kv: kv[1] if kv[1] is not None else math.inf) if errs else ("–", None)
            check = (f"GPU-test case {r.get('check_case')} fwd + bwd vs reference: worst relative RMSE "
                     f"{worst[0]} {sci(worst[1])} (tolerance {r.get('tol')})"
                     + ("" if r.get("correct") else " FAILED"))
        met = "yes" if (r.get("correct") and sp and sp > 1.0) else "no"
        reason = check + (f"; {f(sp, 2)}× the default's speed" if sp else "")
        if r.get("correct") and sp and sp <= 1.0:
            reason += " (correct but not faster here)"
        out.append((target, measured, met, reason + partial(rec, sec_name)))
    return out


def t_decode(rec):
    target = f"decode scan ≥ {TARGET_DECODE_SPEEDUP:.0f}× torch (matvec + topk) at 1M chunks"
    r = one(rec, "decode", op="scan", C=1048576) or (rows(rec, "decode", op="scan") or [None])[0]
    if not r or r.get("ms") is None:
        return target, "–", "not measured", not_measured(rec, "decode") or (r or {}).get("error", "no row")
    cp = one(rec, "decode", op="copy")
    sp = r["speedup"]
    measured = (f"{kfmt(r['C'])} chunks: scan {f(r['ms'], 4)} ms vs torch {f(r['matvec_topk_ms'], 4)} ms "
                f"({f(sp, 2)}×)")
    met = "yes" if sp >= TARGET_DECODE_SPEEDUP else "no"
    gib = r["landmark_bytes"] / 2 ** 30
    parts = [f"both read {f(gib, 2)} GiB of landmarks; the scan streams {f(r['landmark_tbs'], 2)} TB/s"]
    if cp and cp.get("tbs"):
        floor = r["landmark_bytes"] / (cp["tbs"] * 1e12) * 1e3
        parts.append(f"at this device's measured copy rate ({f(cp['tbs'], 2)} TB/s read + write) the read floor is "
                     f"{f(floor, 4)} ms, so torch's {f(r['matvec_topk_ms'], 4)} ms allows at most "
                     f"{f(r['matvec_topk_ms'] / floor, 2)}× (scan at {pct(floor / r['ms'])} of the floor)")
    if r.get("matvec_ms") is not None:
        parts.append(f"torch's matvec alone takes {f(r['matvec_ms'], 4)} ms, its topk "
                     f"{f(r['matvec_topk_ms'] - r['matvec_ms'], 4)} ms")
    return target, measured, met, "; ".join(parts) + partial(rec, "decode")


def t_model(rec):
    target = f"370m forward, bf16, 64K tokens ≥ {TARGET_TOKENS_S // 1000}K tokens/s"
    sec = rec.get("sections", {}).get("model370m") or {}
    r = one(rec, "model370m", op="forward")
    if not r:
        return target, "–", "not measured", not_measured(rec, "model370m") or "no row"
    tps = r["tokens_per_s"]
    measured = f"{f(tps / 1e3, 0)}K tokens/s ({f(r['ms'], 1)} ms, {r.get('ssd')} SSD, {r.get('ops')} HSA)"
    met = "yes" if tps >= TARGET_TOKENS_S and r.get("preset") == "370m" else "no"
    parts = [f"{f(TARGET_TOKENS_S / tps, 2)}× short" if tps < TARGET_TOKENS_S else "met"]
    p = sec.get("profile")
    if p and p.get("kernel_ms_total"):
        tot = p["kernel_ms_total"]
        parts.append(f"profiled call: {f(tot, 1)} ms of GPU kernels in {f(p['profiled_wall_ms'], 1)} ms wall "
                     f"({pct(tot / p['profiled_wall_ms'])} busy), {p['kernel_launches']:,} launches of "
                     f"{p['distinct_kernels']} kernels")
        top = p.get("top") or []
        parts.append("top: " + ", ".join(f"{short(t['name'])} {pct(t['frac'])}" for t in top[:4]))
        ew = sum(t["frac"] or 0 for t in top if ELEMENTWISE.search(t["name"]))
        parts.append(f"elementwise / copy / reduction kernels among the top 10: {pct(ew)} of GPU time")
    elif p:
        parts.append("profile has no GPU kernel times")
    return target, measured, met, "; ".join(parts) + partial(rec, "model370m")


def short(name, n=48):
    name = re.sub(r"\s+", " ", name)
    return name if len(name) <= n else name[:n - 1] + "…"


# ---------------------------------------------------------------------------------------------------- details
def detail_tables(rec):
    out = []
    sel = rows(rec, "select", op="fused")
    if sel:
        out += ["### Selection (256K, dr 1024, K 8)", "", "| config | correct | rows identical | ms | TF/s | peak GiB |",
                "|---|---|---|---|---|---|"]
        for r in sel:
            out.append(f"| {r['config']} | {r.get('correct', r.get('error', '–'))} | {pct(r.get('rows_identical'))} | "
                       f"{f(r.get('ms'))} | {f(r.get('tflops'), 0)} | {f(r.get('peak_gib'), 2)} |")
        for r in rows(rec, "select", op="einsum_topk"):
            out.append(f"| einsum + topk | – | – | {f(r.get('ms'))} | – | {f(r.get('peak_gib'), 2)} |")
        out.append("")
    loc = rows(rec, "locality")
    sec = rec.get("sections", {}).get("locality") or {}
    if sec.get("model_stats"):
        st = sec["model_stats"]
        out += ["### Locality of ramba-tiny's selection", "",
                "Capture: " + ", ".join(f"{k} {v}" for k, v in (sec.get("capture") or {}).items()), "",
                "| statistic | value |", "|---|---|"]
        out += [f"| {k} | {f(v, 4) if isinstance(v, float) else v} |" for k, v in st.items()]
        out.append("")
    if loc:
        out += ["### HSA forward by index pattern (shape A)", "",
                "| L | indices | fwd ms | useful TF/s | K/V gathered TB/s | share prev | distinct / 64 tok | reuse / 64 |",
                "|---|---|---|---|---|---|---|---|"]
        for r in loc:
            out.append(f"| {r['L']} | {r['mode']} | {f(r.get('fwd_ms'))} | {f(r.get('fwd_tflops'), 0)} | "
                       f"{f(r.get('gather_tbs'), 2)} | {f(r.get('share_prev'), 3)} | {f(r.get('distinct_per_64'), 1)} | "
                       f"{f(r.get('reuse_64'), 1)} |" + (f" error: {r['error'][:80]}" if r.get("error") else ""))
        out.append("")
    fb = rows(rec, "fb4k")
    if fb:
        out += ["### 4K fwd+bwd", "", "| op | fwd ms | fwd+bwd ms | details |", "|---|---|---|---|"]
        for r in fb:
            if r["op"] == "hsa":
                det = (f"fwd with LSE {f(r.get('fwd_lse_ms'))}, bwd {f(r.get('bwd_ms'))}, chunk lists "
                       f"{f(r.get('chunk_lists_ms'))}, graphed fwd+bwd {f(r.get('fwdbwd_graphed_ms'))}")
                out.append(f"| HSA | {f(r.get('fwd_ms'))} | {f(r.get('fwdbwd_ms'))} | {det} |")
            else:
                out.append(f"| SDPA {r['backend']} | {f(r.get('fwd_ms'))} | {f(r.get('fwdbwd_ms'))} | "
                           f"{(r.get('error') or '')[:80]} |")
        out.append("")
    cf = rows(rec, "configs")
    if cf:
        out += ["### Attend configs (64K, shape A, uniform indices)", "",
                "| config | correct | worst rel. RMSE | fwd ms | TF/s | fwd+bwd ms |", "|---|---|---|---|---|---|"]
        for r in cf:
            errs = r.get("rel_err") or {}
            w = max((v for v in errs.values() if v is not None), default=None)
            out.append(f"| {r['config']} | {r.get('correct', r.get('error', '–'))} | {sci(w)} | {f(r.get('fwd_ms'))} | "
                       f"{f(r.get('fwd_tflops'), 0)} | {f(r.get('fwdbwd_ms'))} |")
        out.append("")
    dec = rows(rec, "decode", op="scan")
    if dec:
        out += ["### Decode scan (CUDA-graphed)", "", "| chunks | scan ms | matvec+topk ms | matvec ms | speedup | TB/s |",
                "|---|---|---|---|---|---|"]
        for r in dec:
            out.append(f"| {r['C']} | {f(r.get('ms'), 4)} | {f(r.get('matvec_topk_ms'), 4)} | {f(r.get('matvec_ms'), 4)} | "
                       f"{f(r.get('speedup'), 2)} | {f(r.get('landmark_tbs'), 2)} |")
        out.append("")
    p = (rec.get("sections", {}).get("model370m") or {}).get("profile")
    if p and p.get("top"):
        out += [f"### 370m forward profile ({p['L']} tokens): top kernels by GPU time", "",
                "| kernel | GPU ms | calls | share |", "|---|---|---|---|"]
        for t in p["top"]:
            out.append(f"| `{short(t['name'], 90)}` | {f(t['gpu_ms'], 2)} | {t['calls']} | {pct(t['frac'])} |")
        out.append("")
    return out


def render(rec) -> str:
    h = rec.get("header") or {}
    out = [f"# Issue 13 performance targets on {h.get('device', '?')}", "",
           f"torch {h.get('torch')}, Triton {h.get('triton')}, CUDA {h.get('cuda')}, git {h.get('git_sha')}, "
           f"sources {h.get('source_hash')}, {h.get('date')}. bf16, batch 1, medians of CUDA-event timings "
           "(triton do_bench). Useful TF/s = 4·HQ·K·S·d per token (bench_hsa.py). Shape A: HQ 16, Hkv 1, d 64, S 64, K 8.",
           ""]
    if h.get("smoke"):
        out += ["**Smoke run on CPU with tiny shapes: the numbers below mean nothing.**", ""]
    status = ", ".join(f"{k} {v.get('status')} ({f(v.get('seconds'), 0)} s)" for k, v in rec.get("sections", {}).items())
    out += [f"Sections: {status}", "", "| target | measured | met? | reason |", "|---|---|---|---|"]
    table = [t_select(rec), t_fb4k(rec), t_locality(rec)] + t_configs(rec) + [t_decode(rec), t_model(rec)]
    for row in table:
        out.append("| " + " | ".join(str(c).replace("|", "/").replace("\n", " ") for c in row) + " |")
    out += ["", "## Details", ""] + detail_tables(rec)
    return "\n".join(out) + "\n"


def mark(rec, spec):
    """`section=rc` from the shell: a section still 'running' after its process ended was killed (124/137:
    timeout) or crashed; 'skipped' records a section the budget left no time for."""
    name, _, val = spec.partition("=")
    secs = rec.setdefault("sections", {})
    ent = secs.get(name)
    if val == "skipped":
        if ent is None:
            secs[name] = dict(status="skipped (no time left in the budget)", seconds=0, rows=[])
        return
    rc = int(val)
    if ent is None:
        secs[name] = dict(status="timeout" if rc in (124, 137) else f"failed before recording (rc {rc})",
                          seconds=0, rows=[])
    elif ent.get("status") == "running":
        ent["status"] = "timeout" if rc in (124, 137) else f"killed (rc {rc})"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("record")
    ap.add_argument("--out", help="markdown file (default: stdout)")
    ap.add_argument("--mark", action="append", default=[], help="section=rc or section=skipped")
    args = ap.parse_args(argv)
    try:
        with open(args.record) as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        rec = dict(kind="issue13-kernels", header=None, sections={})
    if args.mark:
        for spec in args.mark:
            mark(rec, spec)
        tmp = args.record + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(rec, fh, indent=1)
        os.replace(tmp, args.record)
    md = render(rec)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(md)
    else:
        sys.stdout.write(md)


if __name__ == "__main__":
    main()
