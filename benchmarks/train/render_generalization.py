"""Render reports/generalization/ from the JSONL records of eval_long.py: accuracy against length for every
model (one PNG), a depth x length heatmap per model, and a Markdown table (README.md there is written by hand
around it; this writes results.md).

    python benchmarks/train/render_generalization.py reports/generalization/records/*.jsonl \
        --out reports/generalization
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("records", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ramba.evals.lengths import format_length
    from ramba.reports.plots import _save, depth_length_heatmap
    from ramba.reports.stats import accuracy_table

    rows = [json.loads(line) for p in args.records for line in Path(p).read_text().splitlines() if line.strip()]
    if not rows:
        print("no records", file=sys.stderr)
        return 2
    df = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    acc = accuracy_table(df, ["model", "length"])
    # accuracy vs length, all models: one panel per scoring convention; models are spread a little along x so
    # that curves sitting on top of each other at 100% stay visible
    models = sorted(df["model"].unique())
    lengths = sorted(acc["length"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharey=True)
    for ax, (col, lab) in zip(axes, (("correct_generated", "generated"), ("correct_teacher_forced", "teacher-forced"))):
        for i, name in enumerate(models):
            g = df[df["model"] == name]
            t = accuracy_table(g.assign(correct=g[col]), ["length"])
            yerr = [(t["acc"] - t["lo"]).clip(lower=0), (t["hi"] - t["acc"]).clip(lower=0)]
            shift = 2 ** (0.09 * (i - (len(models) - 1) / 2))
            ax.errorbar(t["length"] * shift, t["acc"], yerr=yerr, marker="o", ms=4, capsize=2, lw=1.3,
                        color=f"C{i}", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [format_length(int(x)) for x in lengths])
        ax.minorticks_off()
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("prompt length (tokens)")
        ax.axvline(4096, color="gray", ls=":", lw=1)
        ax.grid(alpha=0.3)
        ax.set_title(f"{lab} scoring")
    axes[0].set_ylabel("passkey accuracy (95% Wilson CI)")
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("passkey accuracy vs length (trained on rows of at most 4096 tokens, dotted line)")
    fig.tight_layout()
    _save(fig, out / "passkey_vs_length.png")
    # both scoring conventions side by side (one greedy pass gives both, see ramba/train/evaluate.py)
    both = pd.concat([df.assign(convention="generated", correct=df["correct_generated"]),
                      df.assign(convention="teacher_forced", correct=df["correct_teacher_forced"])])
    for name, g in both.groupby("model"):
        t = accuracy_table(g, ["convention", "depth", "length"])
        depth_length_heatmap(t, out / f"heatmap_{name}.png", f"{name} passkey")
    # table
    acc2 = accuracy_table(both, ["model", "convention", "length"])
    acc2["row"] = acc2["model"] + " (" + acc2["convention"].str.replace("_", "-") + ")"
    tab = acc2.pivot(index="row", columns="length", values="acc")
    n = acc2.pivot(index="row", columns="length", values="n")
    lines = ["| model (scoring) | " + " | ".join(format_length(int(c)) for c in tab.columns) + " |",
             "|---|" + "---|" * len(tab.columns)]
    for m in tab.index:
        cells = [f"{tab.at[m, c]:.0%} (n={int(n.at[m, c])})" if pd.notna(tab.at[m, c]) else "–" for c in tab.columns]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
