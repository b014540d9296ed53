"""Summarise `ramba-eval ppl` runs of several models (benchmarks/ppl/ppl_models.sh: one folder per model) into
a committed record, a Markdown table and one plot of perplexity vs context length with every model.

    python benchmarks/ppl/render_ppl.py /tmp/ppl-runs --out reports/generalization/ppl
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", help="folder holding <model>/ppl.jsonl")
    ap.add_argument("--out", required=True)
    ap.add_argument("--trained", type=int, default=4096, help="training row length, marked on the plot")
    args = ap.parse_args(argv)
    from ramba.evals.lengths import format_length
    from ramba.evals.perplexity import read_ppl
    from ramba.reports.downstream import ppl_plot

    curves, metas = {}, {}
    for d in sorted(p.parent for p in Path(args.runs).glob("*/ppl.jsonl")):
        meta, rows = read_ppl(d)
        curves[d.name], metas[d.name] = pd.DataFrame(rows), meta
    if not curves:
        print(f"no runs under {args.runs}/<model>/ppl.jsonl", file=sys.stderr)
        return 2
    order = sorted(curves, key=lambda m: (m != "ramba-tiny", m))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "records.jsonl", "w") as f:
        for m in order:
            for r in curves[m].to_dict("records"):
                f.write(json.dumps({**r, "model": m}) + "\n")
    lengths = sorted(set().union(*(set(c["context_length"]) for c in curves.values())))
    lines = []
    for mode in ("nonoverlapping", "sliding"):
        lines += [f"**{mode}** (perplexity per byte-token)", "",
                  "| model | " + " | ".join(format_length(int(L)) for L in lengths) + " |",
                  "|---|" + "---|" * len(lengths)]
        for m in order:
            c = curves[m][curves[m]["mode"] == mode].set_index("context_length")["ppl"]
            lines.append(f"| {m} | " + " | ".join(f"{c[L]:.2f}" if L in c.index else "–" for L in lengths) + " |")
        lines.append("")
    any_meta = metas[order[0]]
    cfg = any_meta["config"]
    lines.append(f"Corpus {cfg['corpus']} ({any_meta['corpus_tokens']:,} byte tokens), {cfg['windows']} windows per "
                 f"length, sliding stride {cfg['stride']:g} x L; CPU; git {any_meta.get('git_sha')}.")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    ppl_plot({m: curves[m] for m in order}, out / "ppl_vs_context.png",
             f"perplexity vs context length on {cfg['corpus']} (models trained on rows of <= {args.trained} tokens)",
             trained=args.trained)
    return 0


if __name__ == "__main__":
    sys.exit(main())
