"""Summarise RULER-style runs (benchmarks/ruler/ruler_cpu.sh: one harness run folder per model and task) into a
slim committed record file, a Markdown table and one heatmap per model.

    python benchmarks/ruler/render_ruler.py /tmp/ruler-runs --out reports/generalization/ruler

Score = RULER's metric for the task (string_match_all: the fraction of expected values in the generated answer),
averaged over samples; generated convention (RULER scores free generation).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

KEEP = ("task", "length", "depth", "seed", "index", "model", "backend", "convention", "correct", "score",
        "prediction", "answer")


def load(runs: Path) -> pd.DataFrame:
    rows = []
    for rec in sorted(runs.glob("*/*/records.jsonl")):
        for line in rec.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r.get("convention") == "generated":
                    r["model"] = Path(r["model"]).name
                    rows.append({k: r.get(k) for k in KEEP})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", help="folder holding <model>/<task>/records.jsonl")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ramba.evals.lengths import format_length
    from ramba.reports.plots import _save

    df = load(Path(args.runs))
    if df.empty:
        print(f"no records under {args.runs}/<model>/<task>/records.jsonl", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "records.jsonl", "w") as f:
        for r in df.to_dict("records"):
            f.write(json.dumps(r) + "\n")
    tasks = list(dict.fromkeys(sorted(df["task"], key=lambda t: (not t.startswith("niah"), t))))
    models = sorted(df["model"].unique(), key=lambda m: (m != "ramba-tiny", m))
    lengths = sorted(df["length"].unique())
    mean = df.groupby(["model", "task", "length"])["score"].mean()
    n = df.groupby(["model", "task", "length"])["score"].size()
    head = "/".join(format_length(int(L)) for L in lengths)
    lines = [f"| task | " + " | ".join(f"{m} ({head})" for m in models) + " |", "|---|" + "---|" * len(models)]
    for t in tasks:
        cells = []
        for m in models:
            vals = [f"{mean[(m, t, L)]:.0%}" if (m, t, L) in mean.index else "–" for L in lengths]
            cells.append(" / ".join(vals))
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    counts = sorted(set(n.values.tolist()))
    lines += ["", f"Samples per cell: {', '.join(map(str, counts))} (5 depths; task seed 31)."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    # one heatmap per model: task x length
    fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models) + 1.5, 0.42 * len(tasks) + 1.6),
                             sharey=True, layout="constrained")
    for ax, m in zip(list(axes) if len(models) > 1 else [axes], models):
        grid = [[mean.get((m, t, L), float("nan")) for L in lengths] for t in tasks]
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if v == v:
                    ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=7,
                            color="black" if v > 0.6 else "white")
        ax.set_xticks(range(len(lengths)), [format_length(int(L)) for L in lengths])
        ax.set_yticks(range(len(tasks)), tasks)
        ax.set_title(m, fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.8, label="RULER score")
    fig.suptitle("RULER-style tasks by prompt length (CPU; models trained on rows of at most 4096 tokens)")
    _save(fig, out / "ruler_heatmap.png", tight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
