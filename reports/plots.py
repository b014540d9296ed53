"""PNG plots (matplotlib Agg, no display needed). Each function draws one figure and returns its path."""
from __future__ import annotations

from pathlib import Path

import matplotlib

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


def depth_length_heatmap(acc: pd.DataFrame, path: Path, title: str) -> Path:
    """acc: accuracy_table(by=[convention, depth, length]); one panel per convention, cells annotated acc/n."""
    convs = sorted(acc["convention"].unique())
    fig, axes = plt.subplots(1, len(convs), figsize=(4.8 * len(convs), 4), squeeze=False)
    for ax, conv in zip(axes[0], convs):
        g = acc[acc["convention"] == conv]
        grid = g.pivot(index="depth", columns="length", values="acc").sort_index(ascending=False)
        n = g.pivot(index="depth", columns="length", values="n").reindex_like(grid)
        im = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [format_length(int(x)) for x in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [f"{d:g}" for d in grid.index])
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                v = grid.iat[i, j]
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.0%}\nn={int(n.iat[i, j])}", ha="center", va="center", fontsize=7)
        ax.set_xlabel("prompt length (tokens)")
        ax.set_ylabel("needle depth (0 = start)")
        ax.set_title(f"{title} · {conv}")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="accuracy")
    return _save(fig, path, tight=False)  # tight_layout fights the shared colorbar


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
        ax.scatter(bad["length"] * 1.04, bad["acc"], s=220, facecolors="none", edgecolors="red", linewidths=2,
                   label="CIs do not overlap")
        _length_axis(ax, g["length"])
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel("accuracy (95% Wilson CI)")
        ax.set_title(f"{title} · {conv}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)
