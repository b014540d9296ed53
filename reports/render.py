"""Report from a results folder: report.md (+ plots/*.png) and a self-contained report.html (PNGs inlined as
base64). Both are rendered from one list of blocks, so they always say the same thing."""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ramba.evals.lengths import format_length
from ramba.evals.checks import check_writable
from ramba.evals.lock import effective_status
from ramba.atomic import atomic_write_text
from ramba.reports import plots
from ramba.reports.load import load_results
from ramba.reports.stats import accuracy_table, compare, efficiency_table, has_partial_scores

_STATUS_NOTE = {
    "interrupted": " (the run stopped before finishing: Ctrl-C, kill or crash; rerun the same command to resume)",
    "running": " (a run is writing to this folder now)",
    "failed": "",
}


@dataclass
class Block:
    kind: str                  # "h1" | "h2" | "p" | "table" | "img"
    text: str = ""
    table: pd.DataFrame | None = None
    path: Path | None = None


def _mib(x) -> str:
    return f"{x / (1 << 20):,.1f}"


def shown_text(text: str, ids, tokenizer: str | None) -> str:
    """A prediction as a reader should see it: quoted, control characters and undecodable bytes escaped
    (`\\xe4`, `\\n`) instead of U+FFFD replacement characters. Byte-tokenizer predictions are re-decoded from
    their ids, so a cut multi-byte character shows its bytes."""
    if tokenizer == "byte" and isinstance(ids, list) and ids and all(isinstance(i, int) and 0 <= i < 256 for i in ids):
        text = bytes(ids).decode("utf-8", errors="backslashreplace")
    out = "".join(c if c.isprintable() and c != "\ufffd" else c.encode("unicode_escape").decode("ascii")
                  for c in str(text))
    return f"'{out}'"


def _acc_rows(acc: pd.DataFrame, keys: list[str], partial: bool = False) -> pd.DataFrame:
    out = pd.DataFrame({k: acc[k] for k in keys})
    if "length" in out:
        out["length"] = [format_length(int(v)) for v in out["length"]]
    out["accuracy"] = [f"{a:.1%}" for a in acc["acc"]]
    if partial:  # RULER's string_match_all mean: the fraction of expected values found, beside all-or-nothing
        out["mean score"] = [f"{a:.1%}" for a in acc["score"]]
    out["95% CI"] = [f"[{lo:.1%}, {hi:.1%}]" for lo, hi in zip(acc["lo"], acc["hi"])]
    out["correct / n"] = [f"{k}/{n}" for k, n in zip(acc["k"], acc["n"])]
    return out


def _distributed_blocks(meta: dict) -> list[Block]:
    """A torchrun run: how many ranks, and which samples have no records (a rank died; a rerun resumes)."""
    dist, missing = meta.get("distributed") or {}, meta.get("missing") or []
    out = []
    if dist:
        ranks = dist.get("ranks") or []
        per = ", ".join(f"rank {r['rank']} {r['written']}/{r['planned']} samples in {r['wall_s']:.1f} s "
                        f"({r['status']})" for r in ranks if r)
        out.append(Block("p", f"Ran under {dist.get('launcher', 'torchrun')} on {dist.get('world_size')} ranks "
                              f"({dist.get('backend')}; plan imbalance {dist.get('plan_imbalance')})"
                              + (f": {per}." if per else ".")))
    if missing:
        shown = ", ".join(f"`{m}`" for m in missing[:20]) + (f", ... ({len(missing) - 20} more)"
                                                            if len(missing) > 20 else "")
        out.append(Block("p", f"**Missing samples ({len(missing)})**, without records (their rank stopped before "
                              f"finishing them; rerun the same command to resume): {shown}."))
    return out


def build_blocks(results_dir: Path, plot_dir: Path, baseline: Path | None) -> tuple[list[Block], int]:
    meta, df = load_results(results_dir)
    cfg = meta.get("config", {})
    be = meta.get("backend", {})
    planned = len(cfg.get("lengths", [])) * len(cfg.get("depths", [])) * cfg.get("samples", 0)
    done = df["sample_id"].nunique()
    title = f"{cfg.get('task', '?')} · {be.get('name', '?')}"
    status = effective_status(results_dir, meta)
    failed = f" ({meta['error']})" if status == "failed" and meta.get("error") else ""
    blocks = [
        Block("h1", f"ramba-eval report: {meta.get('run_id', results_dir.name)}"),
        Block("p", f"Task **{cfg.get('task')}**, model `{cfg.get('model')}` (backend {be.get('name')}, tokenizer "
                   f"{be.get('tokenizer')}), device {meta.get('env', {}).get('device')}, seed {cfg.get('seed')}. "
                   f"Status **{status}**{_STATUS_NOTE.get(status, '')}{failed}: {done} of {planned} samples. "
                   f"git {meta.get('git_sha')}, updated {meta.get('updated_at')}."),
    ]
    blocks += _distributed_blocks(meta)
    blocks += [
        Block("p", "Conventions: *generated* = greedy output "
                   + ("of the task's own length budget (RULER's tokens_to_generate; `--gen-tokens task`) "
                      if meta.get("gen_tokens") == "task" else "of the answer's length ")
                   + "scored by the task; *teacher_forced* = the argmax "
                   "matches the answer at every answer position with the answer fed in. Both come from one "
                   "prefill per sample. Intervals are 95% Wilson score intervals."
                   + (" *mean score* is the task's partial score averaged over samples (RULER's "
                      "string_match_all: the fraction of expected values found); accuracy counts a sample only "
                      "when all are found." if has_partial_scores(df) else "")),
    ]
    partial = has_partial_scores(df)
    overall = accuracy_table(df, ["convention"])
    by_len = accuracy_table(df, ["convention", "length"])
    by_cell = accuracy_table(df, ["convention", "depth", "length"])
    eff = efficiency_table(df)
    blocks += [Block("h2", "Summary"), Block("table", table=_acc_rows(overall, ["convention"], partial)),
               Block("h2", "Accuracy by length"),
               Block("table", table=_acc_rows(by_len, ["convention", "length"], partial)),
               Block("img", "accuracy vs length", path=plots.accuracy_vs_length(
                   by_len, plot_dir / "accuracy_vs_length.png", title)),
               Block("h2", "Depth x length"),
               Block("img", "depth x length heatmap", path=plots.depth_length_heatmap(
                   by_cell, plot_dir / "depth_length_heatmap.png", title))]
    eff_rows = pd.DataFrame({
        "length": [format_length(int(v)) for v in eff["length"]], "samples": eff["samples"],
        "prefill tok/s (median)": [f"{v:,.0f}" for v in eff["prefill_tok_s"]],
        "latency s (median)": [f"{v:.3f}" for v in eff["latency_s"]],
        "peak host MiB": [_mib(v) for v in eff["peak_host_bytes"]]})
    if (eff["peak_gpu_bytes"] > 0).any():  # a CPU run has no GPU memory to show (not "0.0")
        eff_rows["peak GPU MiB"] = [_mib(v) for v in eff["peak_gpu_bytes"]]
    eff_rows["state MiB"] = [_mib(v) for v in eff["state_bytes"]]
    blocks += [Block("h2", "Throughput and memory"), Block("p", _timing_note(df, meta)),
               Block("table", table=eff_rows),
               Block("img", "prefill throughput vs length", path=plots.throughput_vs_length(
                   eff, plot_dir / "throughput_vs_length.png", title)),
               Block("img", "peak memory vs length", path=plots.memory_vs_length(
                   eff, plot_dir / "memory_vs_length.png", title))]
    wrong = df[(df["convention"] == "generated") & ~df["correct"]]
    if len(wrong):
        ex = wrong.sort_values(["length", "depth", "index"]).head(10)
        blocks += [Block("h2", "Wrong answers (generated, first 10)"),
                   Block("table", table=pd.DataFrame({
                       "length": [format_length(int(v)) for v in ex["length"]], "depth": ex["depth"],
                       "index": ex["index"], "answer": [shown_text(a, None, None) for a in ex["answer"]],
                       "prediction": [shown_text(p, i, be.get("tokenizer")) for p, i in
                                      zip(ex["prediction"], ex["prediction_ids"])]}))]
    regressions = 0
    if baseline is not None:
        bmeta, bdf = load_results(baseline)
        cmp = compare(by_len, accuracy_table(bdf, ["convention", "length"]))
        regressions = int((cmp["flag"] == "regression").sum())
        blocks.append(Block("h2", f"Regression check against {bmeta.get('run_id', baseline.name)}"))
        if cmp.empty:
            blocks.append(Block("p", "The baseline shares no (convention, length) cell with this run."))
        else:
            rows = pd.DataFrame({
                "convention": cmp["convention"], "length": [format_length(int(v)) for v in cmp["length"]],
                "now": [f"{a:.1%} [{lo:.1%}, {hi:.1%}] n={n}" for a, lo, hi, n in
                        zip(cmp["acc"], cmp["lo"], cmp["hi"], cmp["n"])],
                "baseline": [f"{a:.1%} [{lo:.1%}, {hi:.1%}] n={n}" for a, lo, hi, n in
                             zip(cmp["acc_base"], cmp["lo_base"], cmp["hi_base"], cmp["n_base"])],
                "change, points (95% interval)": [f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
                                                  for d, lo, hi in zip(cmp["d"], cmp["d_lo"], cmp["d_hi"])],
                "flag": [f.upper() if f else "ok" for f in cmp["flag"]]})
            flagged = int((cmp["flag"] != "").sum())
            blocks += [Block("p", f"{flagged} cell(s) changed beyond the noise band ({regressions} regression(s)): "
                                  "the 95% Newcomb interval of now - baseline excludes 0. Other cells are within "
                                  "the sampling noise of the two runs."),
                       Block("table", table=rows),
                       Block("img", "accuracy now vs baseline", path=plots.regression_plot(
                           cmp, plot_dir / "regression_vs_baseline.png", title))]
    return blocks, regressions


def _timing_note(df: pd.DataFrame, meta: dict) -> str:
    warm = df.drop_duplicates("sample_id")["warmup_s"].fillna(0) if "warmup_s" in df else pd.Series(dtype=float)
    if not len(warm) or warm.sum() <= 0:
        return ("Throughput is prompt tokens over prefill wall time; latency adds the answer positions. This run "
                "recorded no warm-up, so its first sample may include one-time compilation.")
    return (f"Throughput is prompt tokens over prefill wall time; latency adds the answer positions. Both exclude "
            f"the untimed warm-up run before the first sample{' of each length' if 'cuda' in str(meta.get('env', {}).get('device')) else ''} "
            f"({warm.sum():.2f} s in all: compilation, autotuning, first allocations).")


def _md_table(t: pd.DataFrame) -> str:
    cols = [str(c) for c in t.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in t.itertuples(index=False)]
    return "\n".join(lines)


def to_markdown(blocks: list[Block], base: Path) -> str:
    out = []
    for b in blocks:
        if b.kind == "h1":
            out.append(f"# {b.text}")
        elif b.kind == "h2":
            out.append(f"## {b.text}")
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "table":
            out.append(_md_table(b.table))
        elif b.kind == "img":
            out.append(f"![{b.text}]({b.path.relative_to(base).as_posix()})")
    return "\n\n".join(out) + "\n"


def _inline_md(text: str) -> str:
    """The two inline marks the blocks use: **bold** and `code`, on escaped text."""
    import re
    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"\*(.+?)\*", r"<i>\1</i>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


def to_html(blocks: list[Block]) -> str:
    body = []
    for b in blocks:
        if b.kind in ("h1", "h2"):
            body.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{_inline_md(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in b.table.columns)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>"
                           for r in b.table.itertuples(index=False))
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.kind == "img":
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(b.text)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(b.text)}</figcaption></figure>")
    title = html.escape(blocks[0].text) if blocks else "ramba-eval report"
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;"
             "text-align:right}th{background:#f3f3f3}img{max-width:100%}figure{margin:1em 0}"
             "code{background:#f3f3f3;padding:0 3px}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><style>{style}</style>"
            f"</head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(results_dir: str | Path, baseline: str | Path | None = None,
                 out_dir: str | Path | None = None) -> dict:
    """Writes report.md, report.html and plots/*.png into out_dir (default: the results folder)."""
    results_dir = Path(results_dir)
    out = Path(out_dir) if out_dir else results_dir
    # Validate both folders before creating anything.
    meta, df = load_results(results_dir)
    if baseline is not None:
        from ramba.reports.compare import RunData, check_pair
        bmeta, bdf = load_results(baseline)
        check_pair(RunData(Path(baseline), bmeta, bdf), RunData(results_dir, meta, df))
    check_writable(out, "report folder", "pass --out a writable folder")
    plot_dir = out / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    blocks, regressions = build_blocks(results_dir, plot_dir, Path(baseline) if baseline else None)
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, to_markdown(blocks, out))
    atomic_write_text(page, to_html(blocks))
    return {"md": md, "html": page, "plots": [b.path for b in blocks if b.kind == "img"], "regressions": regressions}
