"""Training curves from a run's log.jsonl: losses, answer accuracy, retrieval diagnostics, held-out evals."""
from __future__ import annotations

import json
import os
from pathlib import Path


def read_log(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue   # a torn last line after a kill: skip it
    return rows


def plot_curves(log_path: Path, out_png: Path, title: str = "") -> Path | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(log_path)
    train = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    if not train:
        return None
    fig, ax = plt.subplots(1, 4, figsize=(18, 3.8))

    def series(rs, key):
        pts = [(r["step"], r[key]) for r in rs if key in r and r[key] is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    for key in ("lm_ce", "answer_ce"):
        ax[0].plot(*series(train, key), label=key)
    ax[0].set_yscale("log"); ax[0].set_title("cross-entropy (nats)"); ax[0].legend()
    for key in ("digit_acc", "exact"):
        ax[1].plot(*series(train, key), label=f"train {key}")
    ax[1].set_ylim(-0.02, 1.02); ax[1].set_title("train answer accuracy"); ax[1].legend()
    for key in ("needle_in_topk", "needle_weight"):
        ax[2].plot(*series(train, key), label=key)
    ax[2].set_ylim(-0.02, 1.02); ax[2].set_title("retrieval diagnostics"); ax[2].legend()
    for key, lab in (("eval_exact", "held-out exact, HSA on"), ("eval_exact_hsa_off", "held-out exact, HSA off"),
                     ("eval_digit_acc", "held-out digit acc")):
        x, y = series(evals, key)
        if x:
            ax[3].plot(x, y, marker="o", label=lab)
    ax[3].set_ylim(-0.02, 1.02); ax[3].set_title("held-out passkey at eval length"); ax[3].legend(fontsize=8)
    for a in ax:
        a.set_xlabel("step"); a.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_png = Path(out_png)
    tmp = out_png.with_name(out_png.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, out_png)
    return out_png
