"""PNG plots (matplotlib Agg, no display needed). Each function draws one figure and returns its path."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ramba.evals.lengths import format_length  # noqa: E402

_COLORS = {"generated": "tab:blue", "teacher_forced": "tab:orange"}


def _length_axis(ax, lengths) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(lengths))
    ax.set_xticklabels([format_length(int(x)) for x in lengths])
    ax.minorticks_off()
    ax.set_xlabel("prompt length (tokens)")


def _save(fig, path: Path, tight: bool = True) -> Path:
    """Write via a temp file + rename, so a report never links a half-written PNG."""
    import os
    if tight:
        fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def accuracy_vs_length(acc: pd.DataFrame, path: Path, title: str) -> Path:
    """acc: accuracy_table(by=[convention, length]); error bars are the 95% Wilson intervals."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    groups = list(acc.groupby("convention"))
    for i, (conv, g) in enumerate(groups):
        yerr = np.clip(np.vstack([g["acc"] - g["lo"], g["hi"] - g["acc"]]), 0, None)
        shift = 1.0 + 0.04 * (i - (len(groups) - 1) / 2)  # side by side on the log axis, so equal curves stay visible
        ax.errorbar(g["length"] * shift, g["acc"], yerr=yerr, marker="o", capsize=4, label=conv,
                    color=_COLORS.get(conv))
    _length_axis(ax, sorted(acc["length"].unique()))
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("accuracy (95% Wilson CI)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def text_color(rgba) -> str:
    """Black or white, whichever reads better on a cell of this colour (WCAG relative luminance)."""
    def lin(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(float(c)) for c in rgba[:3])
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # Contrast against black is (L + 0.05) / 0.05, against white 1.05 / (L + 0.05): pick the larger.
    return "black" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "white"


def depth_length_heatmap(acc: pd.DataFrame, path: Path, title: str) -> Path:
    """acc: accuracy_table(by=[convention, depth, length]); one panel per convention, cells annotated acc/n.
    The panels share the depth axis (one y label, on the left) and one colorbar; text is black or white by the
    cell's luminance, so it stays readable on dark red and dark green."""
    convs = sorted(acc["convention"].unique())
    cmap = matplotlib.colormaps["RdYlGn"]
    fig, axes = plt.subplots(1, len(convs), figsize=(4.2 * len(convs) + 1.2, 4), squeeze=False, sharey=True,
                             layout="constrained")
    im = None
    for k, (ax, conv) in enumerate(zip(axes[0], convs)):
        g = acc[acc["convention"] == conv]
        grid = g.pivot(index="depth", columns="length", values="acc").sort_index(ascending=False)
        n = g.pivot(index="depth", columns="length", values="n").reindex_like(grid)
        im = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap=cmap, aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [format_length(int(x)) for x in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [f"{d:g}" for d in grid.index])
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                v = grid.iat[i, j]
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.0%}\nn={int(n.iat[i, j])}", ha="center", va="center", fontsize=7,
                            color=text_color(cmap(float(v))))
        ax.set_xlabel("prompt length (tokens)")
        if k == 0:
            ax.set_ylabel("needle depth (0 = start)")
        ax.set_title(f"{title} · {conv}", fontsize=10)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="accuracy")
    return _save(fig, path, tight=False)  # constrained layout already placed the panels and the colorbar


def throughput_vs_length(eff: pd.DataFrame, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(eff["length"], eff["prefill_tok_s"], marker="o")
    _length_axis(ax, eff["length"])
    ax.set_yscale("log")
    ax.set_ylabel("prefill tokens/s (median)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def memory_vs_length(eff: pd.DataFrame, path: Path, title: str) -> Path:
    """Peak host RSS, peak GPU memory (only when a GPU was used) and the model state, per length."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    mib = 1 << 20
    ax.plot(eff["length"], eff["peak_host_bytes"] / mib, marker="o", label="peak host RSS")
    if (eff["peak_gpu_bytes"] > 0).any():
        ax.plot(eff["length"], eff["peak_gpu_bytes"] / mib, marker="s", label="peak GPU allocated")
    ax.plot(eff["length"], eff["state_bytes"] / mib, marker="^", label="model state / cache")
    _length_axis(ax, eff["length"])
    ax.set_yscale("log")
    ax.set_ylabel("MiB (max over samples)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def regression_plot(cmp: pd.DataFrame, path: Path, title: str) -> Path:
    """Accuracy per length now vs baseline, both with CIs; flagged cells (CIs apart) get a red ring."""
    convs = sorted(cmp["convention"].unique())
    fig, axes = plt.subplots(1, len(convs), figsize=(5.6 * len(convs), 4), squeeze=False)
    for ax, conv in zip(axes[0], convs):
        g = cmp[cmp["convention"] == conv].sort_values("length")
        x = g["length"].to_numpy(dtype=float)
        for suffix, label, shift, color in (("_base", "baseline", 0.96, "tab:gray"), ("", "now", 1.04, "tab:blue")):
            acc, lo, hi = g["acc" + suffix], g["lo" + suffix], g["hi" + suffix]
            ax.errorbar(x * shift, acc, yerr=np.clip(np.vstack([acc - lo, hi - acc]), 0, None), marker="o", capsize=4, label=label,
                        color=color, linestyle="--" if suffix else "-")
        bad = g[g["flag"] != ""]
        if len(bad):  # no legend entry for a marker that is not drawn
            ax.scatter(bad["length"] * 1.04, bad["acc"], s=220, facecolors="none", edgecolors="red", linewidths=2,
                       label="changed beyond the 95% noise band")
        _length_axis(ax, g["length"])
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel("accuracy (95% Wilson CI)")
        ax.set_title(f"{title} · {conv}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def compare_accuracy(cells: pd.DataFrame, path: Path) -> Path:
    """cells: per-length rows of a Comparison. One panel per (task, convention): baseline and new accuracy vs
    length with 95% Wilson intervals; cells whose difference is beyond the noise band get a red ring."""
    tasks = sorted(cells["task"].unique())
    convs = sorted(cells["convention"].unique())
    fig, axes = plt.subplots(len(tasks), len(convs), figsize=(4.6 * len(convs), 2.9 * len(tasks)), squeeze=False,
                             sharey=True, layout="constrained")
    for i, task in enumerate(tasks):
        for j, conv in enumerate(convs):
            ax = axes[i][j]
            g = cells[(cells["task"] == task) & (cells["convention"] == conv)].sort_values("length")
            x = g["length"].to_numpy(dtype=float)
            for suffix, label, shift, color in (("_base", "baseline", 0.96, "tab:gray"), ("", "new", 1.04, "tab:blue")):
                acc, lo, hi = g["acc" + suffix], g["lo" + suffix], g["hi" + suffix]
                ax.errorbar(x * shift, acc, yerr=np.clip(np.vstack([acc - lo, hi - acc]), 0, None), marker="o",
                            capsize=3, label=label, color=color, linestyle="--" if suffix else "-")
            bad = g[g["flag"] == "regression"]
            if len(bad):
                ax.scatter(bad["length"] * 1.04, bad["acc"], s=200, facecolors="none", edgecolors="red",
                           linewidths=2, label="regression", zorder=5)
            _length_axis(ax, sorted(g["length"].unique()))
            ax.set_ylim(-0.05, 1.05)
            if j == 0:
                ax.set_ylabel("accuracy")
            ax.set_title(f"{task} · {conv}", fontsize=9)
            ax.grid(alpha=0.3)
    _figure_legend(fig, axes)
    return _save(fig, path, tight=False)


def _figure_legend(fig, axes) -> None:
    """One legend above all panels (a legend per panel covers points at 0% or 100%)."""
    seen: dict[str, object] = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, h)
    fig.legend(list(seen.values()), list(seen), loc="outside upper center", ncol=len(seen), fontsize=8)


def compare_efficiency(eff: pd.DataFrame, path: Path) -> Path:
    """New / baseline ratios per length, one line per task: median prefill tokens/s, and model state bytes."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False, layout="constrained")
    lengths = sorted(eff["length"].unique())
    for ax, col, label in ((axes[0][0], "tok_s_ratio", "prefill tokens/s, new / baseline"),
                           (axes[0][1], "state_ratio", "model state bytes, new / baseline")):
        for task, g in eff.groupby("task"):
            g = g.sort_values("length")
            ax.plot(g["length"], g[col], marker="o", label=task)
        ax.axhline(1.0, color="black", linewidth=0.8)
        _length_axis(ax, lengths)
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    _figure_legend(fig, axes)
    return _save(fig, path, tight=False)


def history_lines(series: pd.DataFrame, value: str, path: Path, ylabel: str, log: bool = False,
                  ylim: tuple[float, float] | None = None) -> Path:
    """series: columns run (x position), label, task, line (legend label), value. One panel per task."""
    tasks = sorted(series["task"].unique())
    fig, axes = plt.subplots(len(tasks), 1, figsize=(9, 2.6 * len(tasks)), squeeze=False, layout="constrained")
    labels = series.drop_duplicates("run").sort_values("run")
    for ax, task in zip(axes[:, 0], tasks):
        g = series[series["task"] == task]
        for line, h in g.groupby("line", sort=False):
            h = h.sort_values("run")
            ax.plot(h["run"], h[value], marker="o", label=str(line))
        ax.set_xticks(labels["run"], labels["label"], rotation=30, ha="right", fontsize=8)
        if log:
            ax.set_yscale("log")
        if ylim:
            ax.set_ylim(*ylim)
        ax.set_ylabel(ylabel)
        ax.set_title(task, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the panel, not on the lines
    return _save(fig, path, tight=False)
