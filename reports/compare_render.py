"""`ramba-eval compare` output: compare.md (fit for a pull-request comment), a self-contained compare.html,
compare.json (every cell, for tools) and two plots, all written atomically into one folder."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ramba.atomic import atomic_write_text
from ramba.evals.checks import check_writable
from ramba.evals.lengths import format_length
from ramba.reports import plots
from ramba.reports.compare import ALL, Comparison, compare_runs
from ramba.reports.render import Block, to_html, to_markdown


@dataclass
class CompareResult:
    comparison: Comparison
    paths: dict

    @property
    def regressions(self) -> list[str]:
        return self.comparison.regressions

    def summary_lines(self) -> list[str]:
        c = self.comparison
        n = int((c.cells["length"] != ALL).sum())
        verdict = f"{len(c.regressions)} regression(s)" if c.regressions else "no regression beyond the noise band"
        lines = [f"compare: {c.baseline_path} -> {c.new_path}: {len(c.tasks)} task(s), {n} accuracy cell(s), "
                 f"{verdict}"]
        lines += [f"note: {x}" for x in c.notes]
        return lines

    def regression_lines(self) -> list[str]:
        return self.regressions + [f"see {self.paths['md']} for every cell; if the change is intended, regenerate "
                                   "the baseline"]


def _acc(acc: float, k: int, n: int) -> str:
    return f"{acc:.1%} ({k}/{n})"


def _verdict(flag: str) -> str:
    return {"regression": "❌ regression", "improvement": "✅ improvement"}.get(flag, "ok (within noise)")


def _cell_rows(cells: pd.DataFrame, with_length: bool) -> pd.DataFrame:
    rows = pd.DataFrame({"task": cells["task"], "convention": cells["convention"]})
    if with_length:
        rows["length"] = [format_length(int(x)) for x in cells["length"]]
    rows["baseline"] = [_acc(a, k, n) for a, k, n in zip(cells["acc_base"], cells["k_base"], cells["n_base"])]
    rows["new"] = [_acc(a, k, n) for a, k, n in zip(cells["acc"], cells["k"], cells["n"])]
    rows["change, points (95% interval)"] = [f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
                                             for d, lo, hi in zip(cells["d"], cells["d_lo"], cells["d_hi"])]
    rows["verdict"] = [_verdict(f) for f in cells["flag"]]
    return rows


def _ratio(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}x"


def _eff_rows(eff: pd.DataFrame) -> pd.DataFrame:
    mib = 1 << 20
    rows = pd.DataFrame({
        "task": eff["task"], "length": [format_length(int(x)) for x in eff["length"]],
        "prefill tok/s (median) baseline -> new": [f"{a:,.0f} -> {b:,.0f}" for a, b in
                                                   zip(eff["prefill_tok_s_base"], eff["prefill_tok_s"])],
        "speed ratio": [_ratio(x) for x in eff["tok_s_ratio"]],
        "peak host MiB": [f"{a / mib:,.0f} -> {b / mib:,.0f}" for a, b in
                          zip(eff["peak_host_bytes_base"], eff["peak_host_bytes"])],
        "state MiB": [f"{a / mib:,.2f} -> {b / mib:,.2f}" for a, b in zip(eff["state_bytes_base"], eff["state_bytes"])],
    })
    if (eff["peak_gpu_bytes"] > 0).any() or (eff["peak_gpu_bytes_base"] > 0).any():
        rows["peak GPU MiB"] = [f"{a / mib:,.0f} -> {b / mib:,.0f}" for a, b in
                                zip(eff["peak_gpu_bytes_base"], eff["peak_gpu_bytes"])]
    return rows


def _git(r) -> str:
    sha = str(r.meta.get("git_sha") or "unknown")
    return sha[:10] + ("-dirty" if sha.endswith("-dirty") else "")


def _gate_text(gates: dict) -> str:
    gated = []
    if gates.get("max_slowdown"):
        gated.append(f"median prefill tokens/s more than {gates['max_slowdown']:g}x slower")
    if gates.get("max_memory_growth"):
        gated.append(f"model state more than {gates['max_memory_growth']:g}x larger")
    if not gated:
        return "Throughput and memory are reported, not gated."
    return "Throughput and memory are reported; also a regression: " + " or ".join(gated) + "."


def build_blocks(c: Comparison, plot_dir: Path) -> list[Block]:
    n_reg = len(c.regressions)
    head = f"❌ {n_reg} regression(s)" if n_reg else "✅ no regression beyond the noise band"
    any_new = next(iter(c.new.values()))
    any_base = next(iter(c.baseline.values()))
    pooled = c.cells[c.cells["length"] == ALL]
    per = c.cells[c.cells["length"] != ALL]
    blocks = [
        Block("h1", f"ramba-eval compare: {head}"),
        Block("p", f"Baseline `{c.baseline_path}` (git {_git(any_base)}, model `{any_base.meta['config'].get('model')}`) "
                   f"vs new `{c.new_path}` (git {_git(any_new)}, model `{any_new.meta['config'].get('model')}`): "
                   f"{len(c.tasks)} task(s), {len(per)} cells. A cell is a regression when the 95% Newcomb "
                   "interval of new - baseline lies entirely below 0 (a drop larger than the sampling noise of "
                   "both runs). " + _gate_text(c.gates)),
    ]
    if c.regressions:
        blocks += [Block("h2", "Regressions")] + [Block("p", f"`{line}`") for line in c.regressions]
    blocks += [Block("h2", "Accuracy per task (all shared lengths)"), Block("table", table=_cell_rows(pooled, False)),
               Block("h2", "Accuracy per length"), Block("table", table=_cell_rows(per, True)),
               Block("img", "accuracy, baseline vs new", path=plots.compare_accuracy(
                   per, plot_dir / "compare_accuracy.png")),
               Block("h2", "Throughput and memory"), Block("table", table=_eff_rows(c.efficiency)),
               Block("img", "throughput and memory, new / baseline", path=plots.compare_efficiency(
                   c.efficiency, plot_dir / "compare_efficiency.png"))]
    if c.notes:
        blocks += [Block("h2", "Notes")] + [Block("p", n) for n in c.notes]
    return blocks


def _json(c: Comparison) -> str:
    def records(df: pd.DataFrame) -> list[dict]:
        return json.loads(df.to_json(orient="records"))
    return json.dumps({"baseline": str(c.baseline_path), "new": str(c.new_path), "tasks": c.tasks,
                       "regressions": c.regressions, "notes": c.notes, "gates": c.gates,
                       "cells": records(c.cells), "efficiency": records(c.efficiency)}, indent=1) + "\n"


def write_comparison(baseline, new, out_dir=None, tasks=None, max_slowdown=None,
                     max_memory_growth=None) -> CompareResult:
    c = compare_runs(baseline, new, tasks=tasks, max_slowdown=max_slowdown, max_memory_growth=max_memory_growth)
    out = Path(out_dir) if out_dir else Path(new) / "compare"
    check_writable(out, "compare folder", "pass --out a writable folder")
    out.mkdir(parents=True, exist_ok=True)
    blocks = build_blocks(c, out)
    paths = {"md": out / "compare.md", "html": out / "compare.html", "json": out / "compare.json",
             "plots": [b.path for b in blocks if b.kind == "img"]}
    atomic_write_text(paths["md"], to_markdown(blocks, out))
    atomic_write_text(paths["html"], to_html(blocks))
    atomic_write_text(paths["json"], _json(c))
    return CompareResult(c, paths)
