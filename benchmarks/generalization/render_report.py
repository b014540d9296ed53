"""Render the generalization report of the shipped models from committed records (no model runs):
RULER task x length heatmaps, the NIAH macro average, held-out vs in-distribution wordings, passkey vs length,
and the passkey length-residue plot.

    python benchmarks/generalization/render_report.py --out reports/generalization

Inputs (all under benchmarks/records/generalization/): gpu-h200/{ruler,baselines,heldout,passkey}/*.jsonl and
gpu-h200/call1/ruler-4k.jsonl (one line per sample, ruler_gpu.py), cpu/ruler/*.jsonl (CPU runs of ruler_gpu.py),
length-sweep-*.jsonl (length_sweep.py). A sample measured twice (same sample_id, model) counts once.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REC = Path(__file__).resolve().parents[2] / "benchmarks" / "records" / "generalization"
NIAH = ["niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2", "niah_multikey_3",
        "niah_multivalue", "niah_multiquery"]
ORDER = NIAH + ["vt", "cwe", "fwe"]
# records keep the name a model had when it was measured; the report names them as shipped now
LABELS = {"ramba-tiny-sel03-avg50": "ramba-tiny (shipped: parts 1-5)",
          "ramba-tiny-soup30": "ramba-tiny parts 1-4, averaged (previous)",
          "ramba-tiny-sel03": "ramba-tiny part 5 alone (sel03)",
          "ramba-tiny-v7ft": "ramba-tiny part 4 alone (v7ft)",
          "ramba-tiny-v6ft-rw0": "ramba-tiny parts 1-3",
          "ramba-tiny-v4ft-rw0": "ramba-tiny parts 1-2", "ramba-tiny": "ramba-tiny-v2 (part 1)",
          "swa-hsa-tiny-v2-ft2": "swa-hsa-tiny (shipped: parts 1-3)",
          "mamba2-tiny-v2-ft2": "mamba2-tiny (shipped: parts 1-3)",
          "swa-hsa-tiny-v2-ft": "swa-hsa-tiny parts 1-2", "mamba2-tiny-v2-ft": "mamba2-tiny parts 1-2",
          "swa-hsa-tiny-avg30": "swa-hsa-tiny parts 1-4, averaged (not shipped)",
          "mamba2-tiny-avg30": "mamba2-tiny parts 1-4, averaged (not shipped)",
          "swa-hsa-tiny": "swa-hsa-tiny-v1 (previous, passkey-only)",
          "mamba2-tiny": "mamba2-tiny-v1 (previous, passkey-only)"}
# the heatmap shows the models shipped now (transformer-tiny: its only recipe, the passkey-only one); tables show all
HEATMAP = ([LABELS[m] for m in ("ramba-tiny-sel03-avg50", "swa-hsa-tiny-v2-ft2", "mamba2-tiny-v2-ft2")]
           + ["transformer-tiny"])
HELDOUT_PAIRS = [("heldout_niah_single_2", "niah_single_2"), ("heldout_niah_multikey_1", "niah_multikey_1"),
                 ("heldout_niah_multivalue", "niah_multivalue"), ("heldout_niah_multiquery", "niah_multiquery"),
                 ("heldout_niah_single_3", "niah_single_3"), ("heldout_vt", "vt"),
                 ("heldout_filler_niah_single", "niah_single_2"), ("heldout_filler_niah_multikey", "niah_multikey_1")]


def read_jsonl(paths) -> pd.DataFrame:
    rows = []
    for p in paths:
        for line in Path(p).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r.get("kind") != "summary":
                    rows.append(r)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["model"] = df["model"].replace(LABELS)
    return df.drop_duplicates(subset=["model", "sample_id"], keep="last")


def fmt_len(n: int) -> str:
    from ramba.evals.lengths import format_length
    return format_length(int(n))


def cell_table(df: pd.DataFrame, value: str) -> pd.DataFrame:
    """model x task x length -> mean of `value`, n, and whether the cell was measured on CPU (fp32)."""
    on_cpu = (df["device"] == "cpu") if "device" in df else pd.Series(False, index=df.index)
    return (df.assign(on_cpu=on_cpu).groupby(["model", "task", "length"])
            .agg(v=(value, "mean"), n=(value, "size"), cpu=("on_cpu", "all")).reset_index())


def ruler_markdown(cells: pd.DataFrame, exact: pd.DataFrame) -> str:
    lines = []
    for model, g in cells.groupby("model"):
        lengths = sorted(g["length"].unique())
        lines += [f"### {model}", "",
                  "| task | " + " | ".join(fmt_len(L) for L in lengths) + " |",
                  "|---|" + "---|" * len(lengths)]
        ex = exact[exact["model"] == model]
        for task in [t for t in ORDER if t in set(g["task"])]:
            row = []
            for L in lengths:
                c = g[(g["task"] == task) & (g["length"] == L)]
                e = ex[(ex["task"] == task) & (ex["length"] == L)]
                where = ", CPU" if not c.empty and c.cpu.iloc[0] else ""
                row.append("–" if c.empty else
                           f"{100 * c.v.iloc[0]:.0f} / {100 * e.v.iloc[0]:.0f} (n={c.n.iloc[0]}{where})")
            lines.append(f"| {task} | " + " | ".join(row) + " |")
        macro = []
        for L in lengths:
            c = g[(g["length"] == L) & g["task"].isin(NIAH)]
            e = ex[(ex["length"] == L) & ex["task"].isin(NIAH)]
            macro.append(f"**{100 * c.v.mean():.0f} / {100 * e.v.mean():.0f}**" if len(c) == len(NIAH) else
                         f"({len(c)}/8 variants)")
        lines += ["| NIAH macro (8 variants) | " + " | ".join(macro) + " |", ""]
    return "\n".join(lines)


def heatmaps(cells: pd.DataFrame, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = [m for m in HEATMAP if m in set(cells["model"])]
    fig, axes = plt.subplots(1, len(models), figsize=(3.2 + 2.2 * len(models), 5.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        g = cells[cells["model"] == model]
        lengths = sorted(g["length"].unique())
        tasks = [t for t in ORDER if t in set(g["task"])]
        grid = np.full((len(tasks), len(lengths)), np.nan)
        for i, t in enumerate(tasks):
            for j, L in enumerate(lengths):
                c = g[(g["task"] == t) & (g["length"] == L)]
                if not c.empty:
                    grid[i, j] = 100 * c.v.iloc[0]
        im = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for i in range(len(tasks)):
            for j in range(len(lengths)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=8,
                            color="black" if grid[i, j] > 60 else "white")
        ax.set_xticks(range(len(lengths)), [fmt_len(L) for L in lengths], rotation=45 if len(lengths) > 3 else 0)
        ax.set_yticks(range(len(tasks)), tasks if ax is axes[0][0] else [""] * len(tasks))
        ax.set_title(model.replace(" (", "\n("), fontsize=10)   # two lines: the labels are wider than a panel
        ax.set_xlabel("context length (tokens)")
    fig.colorbar(im, ax=axes[0].tolist(), label="RULER score (string_match_all, %)", shrink=0.8)
    fig.savefig(out / "ruler_heatmap.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def residue_plot(sweeps: dict[str, pd.DataFrame], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for label, df in sweeps.items():
        acc = df.groupby("length")["correct"].mean()
        for ax, (lo, hi) in zip(axes, [(3808, 3871), (4128, 4191)]):
            a = acc[(acc.index >= lo) & (acc.index <= hi)]
            ax.plot(a.index, 100 * a.values, marker="o", ms=3, lw=1, label=label)
    for ax in axes:
        ax.set_xlabel("prompt length (tokens)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("passkey accuracy (%)")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Passkey accuracy at every length next to 4K (2 samples per length, CPU)", fontsize=10)
    fig.savefig(out / "passkey_length_residue.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gpu = REC / "gpu-h200"
    prev, prev_ft = gpu / "candidate-v4ft-rw0", gpu / "finetune-v4ft"   # parts 1-2
    v6, v6ft = gpu / "candidate-v6ft-rw0", gpu / "finetune-v6ft"   # parts 1-3 (part 3: bank 4), shipped until 2026-12-02
    # parts 1-4 averaged (shipped until the parts-1-5 average): 64K-64M on the H200, 4K on CPU (fp32) and on the
    # H200 (the selection-term call, which wins for a sample measured twice); part 5 alone (sel03): 4K and 64K in
    # that call, 64K-64M in its candidate call; the shipped weights (parts 1-5): 64K-64M on the H200, 4K on CPU
    soup, soup_cpu = gpu / "candidate-soup30", REC / "cpu" / "soup30"
    sel, sel_ft = gpu / "candidate-sel03", gpu / "selection-term"
    shipped, shipped_cpu = gpu / "candidate-sel03-avg50", REC / "cpu" / "sel03-averages"
    base4 = gpu / "baselines-p4"   # the baselines' parts 1-4 averaged (not shipped)
    v7, v7ft = gpu / "candidate-v7ft", gpu / "finetune-ft3-v5-v7"   # part 4 alone
    base2 = gpu / "baselines-v2"   # the baselines on the shipped recipe (parts 1-2 and 1-3)
    ruler = read_jsonl(sorted((gpu / "ruler").glob("*.jsonl")) + sorted((gpu / "baselines").glob("*.jsonl"))
                       + [gpu / "call1" / "ruler-4k.jsonl"] + sorted((REC / "cpu" / "ruler").glob("*.jsonl"))
                       + [prev / "ruler.jsonl", prev_ft / "ramba-tiny-v4ft-rw0-ruler-4k.jsonl",
                          v6 / "ruler.jsonl", v6ft / "ramba-tiny-v6ft-rw0-ruler-4k.jsonl",
                          soup / "ruler.jsonl", soup_cpu / "ruler-4k.jsonl",
                          v7 / "ruler.jsonl", v7ft / "ramba-tiny-v7ft-ruler-4k.jsonl",
                          sel_ft / "ramba-tiny-soup30-shipped-4k.jsonl", sel_ft / "ramba-tiny-sel03-ruler-4k.jsonl",
                          sel_ft / "ramba-tiny-sel03-ruler-64k.jsonl", sel / "ruler.jsonl",
                          shipped / "ruler.jsonl", shipped_cpu / "ramba-tiny-sel03-avg50-ruler-4k.jsonl",
                          shipped_cpu / "ramba-tiny-sel03-avg50-cwe-fwe-4k.jsonl"]
                       + sorted(base2.glob("ruler-*.jsonl")) + sorted(base4.glob("*-ruler.jsonl")))
    ruler = ruler[ruler["task"].isin(ORDER)]
    if ruler.empty:
        print("no RULER records", file=sys.stderr)
        return 2
    cells, exact = cell_table(ruler, "score"), cell_table(ruler, "correct")
    heatmaps(cells, out)
    md = ["# RULER family and held-out wordings: results", "",
          "Generated by `python benchmarks/generalization/render_report.py --out reports/generalization` from the "
          "records in `benchmarks/records/generalization/`. Cells: RULER score (string_match_all over the greedy "
          "answer, %) / exact (all references, %) (n = samples).", "", ruler_markdown(cells, exact)]
    held = read_jsonl(sorted((gpu / "heldout").glob("*.jsonl")) + [prev_ft / "ramba-tiny-v4ft-rw0-heldout-4k.jsonl",
                                                                   v6ft / "ramba-tiny-v6ft-rw0-heldout-4k.jsonl",
                                                                   soup_cpu / "heldout-4k.jsonl",
                                                                   v7ft / "ramba-tiny-v7ft-heldout-4k.jsonl",
                                                                   sel_ft / "ramba-tiny-soup30-shipped-4k.jsonl",
                                                                   sel_ft / "ramba-tiny-sel03-heldout-4k.jsonl",
                                                                   shipped_cpu / "ramba-tiny-sel03-avg50-heldout-4k.jsonl"])
    if not held.empty:
        md += ["## Held-out wordings and filler (4K)", ""]
        for model, g in held.groupby("model"):
            md += [f"### {model}", "", "| held-out task | score / exact | in-distribution twin | score / exact |",
                   "|---|---|---|---|"]
            for h, ind in HELDOUT_PAIRS:
                a, b = g[g["task"] == h], g[g["task"] == ind]
                if a.empty or b.empty:
                    continue
                md.append(f"| {h} (n={len(a)}) | {100 * a.score.mean():.0f} / {100 * a.correct.mean():.0f} | {ind} "
                          f"(n={len(b)}) | {100 * b.score.mean():.0f} / {100 * b.correct.mean():.0f} |")
            md.append("")
    pk = read_jsonl(sorted((gpu / "passkey").glob("*.jsonl")) + [prev / "passkey.jsonl", v6 / "passkey.jsonl",
                                                                       soup / "passkey.jsonl", v7 / "passkey.jsonl",
                                                                       sel / "passkey.jsonl", shipped / "passkey.jsonl"]
                    + sorted(base2.glob("passkey-*.jsonl")) + sorted(base4.glob("*-passkey.jsonl")))
    if not pk.empty:
        pk = pk[pk["task"] == "passkey"]
        md += ["## Passkey vs length", "", "| model | " + " | ".join(fmt_len(L) for L in sorted(pk.length.unique()))
               + " |", "|---|" + "---|" * pk.length.nunique()]
        for model, g in pk.groupby("model"):
            acc = g.groupby("length")["correct"].agg(["mean", "size"])
            md.append(f"| {model} | " + " | ".join(
                f"{100 * acc.loc[L, 'mean']:.0f}% (n={acc.loc[L, 'size']})" if L in acc.index else "–"
                for L in sorted(pk.length.unique())) + " |")
        md.append("")
    sweeps = {}
    for p, label in [(REC / "length-sweep-ramba-tiny-v1-absolute.jsonl", "v1, absolute reset grid (old rule)"),
                     (REC / "length-sweep-ramba-tiny-v1-tail256.jsonl", "v1, grid anchored (tail 256)"),
                     (REC / "length-sweep-ramba-tiny.jsonl", "v2, grid anchored (tail 352)"),
                     (REC / "cpu" / "length-sweep-v4ft-rw0.jsonl", "parts 1-2, grid anchored (tail 352)"),
                     (REC / "cpu" / "length-sweep-v6ft-rw0.jsonl", "parts 1-3, grid anchored (tail 352)"),
                     (REC / "cpu" / "length-sweep-soup30.jsonl", "parts 1-4 averaged, grid anchored (tail 352)"),
                     (REC / "cpu" / "length-sweep-sel03.jsonl", "part 5 alone (sel03), grid anchored (tail 352)"),
                     (REC / "cpu" / "length-sweep-sel03-avg50.jsonl", "shipped (parts 1-5), grid anchored (tail 352)")]:
        if p.is_file():
            sweeps[label] = read_jsonl([p])
    if sweeps:
        residue_plot(sweeps, out)
        md += ["## Passkey at every length next to 4K (CPU)", "", "| model and reset rule | samples | accuracy | "
               "failed lengths |", "|---|---|---|---|"]
        for label, df in sweeps.items():
            bad = sorted(df[~df["correct"].astype(bool)]["length"].unique())
            md.append(f"| {label} | {len(df)} | {100 * df.correct.mean():.1f}% | "
                      f"{', '.join(map(str, bad[:12]))}{' ...' if len(bad) > 12 else ''} |")
        md.append("")
    from ramba.atomic import atomic_write_text
    atomic_write_text(out / "ruler_results.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
