"""Reports of the downstream suites: perplexity vs context length (`ramba-eval ppl`) and multiple choice
(`ramba-eval mc`). `ppl_plot` also draws several models on one figure (reports/generalization)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ramba.atomic import atomic_write_text
from ramba.evals.lengths import format_length
from ramba.reports.render import Block, to_html, to_markdown


def ppl_plot(curves: dict[str, pd.DataFrame], path: Path, title: str, trained: int | None = None) -> Path:
    """curves: label -> rows (mode, context_length, ppl); one line per (label, mode), log-2 x axis."""
    from ramba.reports.plots import _length_axis, _save, plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    lengths = set()
    for k, (label, df) in enumerate(curves.items()):   # one colour per model, the line style says the mode
        for mode, g in df.groupby("mode"):
            g = g.sort_values("context_length")
            ax.plot(g["context_length"], g["ppl"], marker="o", linestyle="-" if mode == "nonoverlapping" else "--",
                    color=f"C{k}", label=f"{label} ({mode})")
            lengths |= set(g["context_length"])
    if trained:
        ax.axvline(trained, color="grey", linewidth=0.8, linestyle=":")
        ax.text(trained, ax.get_ylim()[1], " trained length", fontsize=7, va="top", color="grey")
    _length_axis(ax, sorted(lengths))
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("perplexity (per token)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _write(out: Path, blocks: list[Block]) -> dict:
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, to_markdown(blocks, out))
    atomic_write_text(page, to_html(blocks))
    return {"md": md, "html": page, "regressions": 0}


def write_ppl_report(folder, out_dir=None) -> dict:
    from ramba.evals.perplexity import read_ppl
    folder = Path(folder)
    meta, rows = read_ppl(folder)
    out = Path(out_dir) if out_dir else folder
    (out / "plots").mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    tab = pd.DataFrame({"mode": df["mode"], "context": [format_length(int(v)) for v in df["context_length"]],
                        "windows": df["windows"], "tokens scored": df["tokens_scored"],
                        "perplexity": [f"{v:.3f}" for v in df["ppl"]],
                        "bits/token": [f"{v:.4f}" for v in df["bits_per_token"]],
                        "tokens/s": [f"{v:,.0f}" for v in df["tokens_per_s"]]})
    cfg = meta["config"]
    label = Path(str(meta["model"]).split(":", 1)[-1]).name or meta["model"]
    blocks = [Block("h1", f"perplexity vs context length: {folder.name}"),
              Block("p", f"Model `{meta['model']}` (tokenizer {meta['tokenizer']}), corpus **{cfg['corpus']}** "
                         f"({meta['corpus_tokens']:,} tokens), {cfg['windows']} window(s) per length, starting at evenly "
                         "spaced points of the text (the same for every length). *nonoverlapping*: every token "
                         "of a window after its first is scored; *sliding*: only its last "
                         f"{cfg['stride']:g} x L tokens (context >= {1 - cfg['stride']:g} x L). "
                         f"git {meta.get('git_sha')}."),
              Block("table", table=tab),
              Block("img", "perplexity vs context length",
                    path=ppl_plot({label: df}, out / "plots" / "ppl_vs_context.png", f"{label} on {cfg['corpus']}"))]
    return _write(out, blocks)


def write_mc_report(folder, out_dir=None) -> dict:
    from ramba.evals.multiple_choice import read_mc
    from ramba.reports.plots import _save, plt
    from ramba.reports.stats import wilson
    folder = Path(folder)
    meta, rows = read_mc(folder)
    out = Path(out_dir) if out_dir else folder
    (out / "plots").mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df["bucket"] = [1 << max(0, int(n - 1).bit_length()) for n in df["context_tokens"]]   # next power of 2
    g = df.groupby("bucket").agg(n=("correct", "size"), acc=("correct", "mean"), acc_norm=("correct_norm", "mean"))
    g = g.reset_index()
    tab = pd.DataFrame({"context <=": [format_length(int(b)) for b in g["bucket"]], "n": g["n"],
                        "acc": [f"{v:.1%}" for v in g["acc"]], "acc_norm": [f"{v:.1%}" for v in g["acc_norm"]]})
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for col in ("acc", "acc_norm"):
        ci = [wilson(int(round(a * n)), int(n)) for a, n in zip(g[col], g["n"])]
        ax.errorbar(range(len(g)), g[col], yerr=[[a - lo for a, (lo, _) in zip(g[col], ci)],
                                                 [hi - a for a, (_, hi) in zip(g[col], ci)]],
                    marker="o", capsize=3, label=col)
    ax.set_xticks(range(len(g)), [format_length(int(b)) for b in g["bucket"]])
    ax.set_xlabel("context length (tokens, bucket upper bound)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("accuracy")
    ax.legend()
    img = _save(fig, out / "plots" / "mc_accuracy.png")
    blocks = [Block("h1", f"multiple choice: {folder.name}"),
              Block("p", f"Model `{meta['model']}`, data `{meta['data']}` ({meta['items']} items): **acc "
                         f"{meta['acc']:.1%}**, acc_norm {meta['acc_norm']:.1%} (log-likelihood per byte of the "
                         "choice). Error bars: 95% Wilson intervals."),
              Block("table", table=tab), Block("img", "accuracy by context length", path=img)]
    return _write(out, blocks)
