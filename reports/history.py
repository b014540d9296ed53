"""`ramba-eval history RUN...`: accuracy, throughput and memory across runs (e.g. one per commit) as line plots
in a self-contained HTML report (and Markdown). Each RUN is a results folder or a suite folder; the x axis is
the order given, labelled by each run's git commit unless --labels says otherwise."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ramba.atomic import atomic_write_text
from ramba.errors import BadInputError
from ramba.evals.checks import check_writable
from ramba.evals.lengths import format_length
from ramba.reports import plots
from ramba.reports.compare import load_side
from ramba.reports.render import Block, to_html, to_markdown
from ramba.reports.stats import accuracy_table, efficiency_table


def _label(meta: dict, fallback: str) -> str:
    sha = meta.get("git_sha")
    if not sha:
        return fallback
    return sha[:8] + ("*" if str(sha).endswith("-dirty") else "")


def collect(runs: list[str], labels: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(accuracy, efficiency, overview) long tables with a `run` position and a `label` per input."""
    if labels is not None and len(labels) != len(runs):
        raise BadInputError(f"--labels has {len(labels)} label(s) for {len(runs)} run(s); give one per run")
    acc_rows, eff_rows, over = [], [], []
    for i, path in enumerate(runs):
        side = load_side(path)
        first = next(iter(side.values()))
        label = labels[i] if labels else _label(first.meta, Path(path).name)
        for task, r in sorted(side.items()):
            by_len = accuracy_table(r.df, ["convention", "length"])
            pooled = accuracy_table(r.df, ["convention"])
            for row in by_len.itertuples():
                acc_rows.append({"run": i, "label": label, "task": task, "convention": row.convention,
                                 "length": int(row.length), "acc": row.acc, "lo": row.lo, "hi": row.hi, "n": row.n})
            for row in pooled.itertuples():
                acc_rows.append({"run": i, "label": label, "task": task, "convention": row.convention,
                                 "length": 0, "acc": row.acc, "lo": row.lo, "hi": row.hi, "n": row.n})
            for row in efficiency_table(r.df).itertuples():
                eff_rows.append({"run": i, "label": label, "task": task, "length": int(row.length),
                                 "prefill_tok_s": row.prefill_tok_s, "peak_host_mib": row.peak_host_bytes / 2**20,
                                 "state_mib": row.state_bytes / 2**20, "peak_gpu_mib": row.peak_gpu_bytes / 2**20})
            gen = pooled[pooled["convention"] == "generated"]
            tf = pooled[pooled["convention"] == "teacher_forced"]
            over.append({"run": label, "folder": str(r.path), "task": task, "model": r.meta.get("config", {}).get("model"),
                         "git": str(r.meta.get("git_sha") or "")[:12], "updated": r.meta.get("updated_at"),
                         "generated": f"{gen['acc'].iloc[0]:.1%}" if len(gen) else "",
                         "teacher_forced": f"{tf['acc'].iloc[0]:.1%}" if len(tf) else ""})
    return pd.DataFrame(acc_rows), pd.DataFrame(eff_rows), pd.DataFrame(over)


def _lines(df: pd.DataFrame, name) -> pd.DataFrame:
    df = df.copy()
    df["line"] = [name(r) for r in df.itertuples()]
    return df


def write_history(runs: list[str], out_dir: str | Path, labels: list[str] | None = None) -> dict:
    if not runs:
        raise BadInputError("history needs at least one results folder")
    acc, eff, over = collect(runs, labels)
    out = Path(out_dir)
    check_writable(out, "history folder", "pass --out a writable folder")
    plot_dir = out / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    gen = acc[(acc["convention"] == "generated") | (acc["length"] == 0)]
    gen = _lines(gen, lambda r: f"all lengths ({r.convention})" if r.length == 0 else format_length(r.length))
    eff = _lines(eff, lambda r: format_length(r.length))
    blocks = [
        Block("h1", f"ramba-eval history: {len(runs)} run(s)"),
        Block("p", "Each point is one run (or suite) given on the command line, in that order; labels are git "
                   "commits (`*` = uncommitted changes) unless --labels set them. Accuracy per length is the "
                   "*generated* convention; the pooled lines cover both conventions."),
        Block("table", table=over),
        Block("h2", "Accuracy"),
        Block("img", "accuracy across runs", path=plots.history_lines(
            gen, "acc", plot_dir / "history_accuracy.png", "accuracy", ylim=(-0.05, 1.05))),
        Block("h2", "Prefill throughput"),
        Block("img", "median prefill tokens/s across runs", path=plots.history_lines(
            eff, "prefill_tok_s", plot_dir / "history_throughput.png", "prefill tokens/s (median)", log=True)),
        Block("h2", "Memory"),
        Block("img", "peak host memory across runs", path=plots.history_lines(
            eff, "peak_host_mib", plot_dir / "history_memory.png", "peak host MiB")),
    ]
    if (eff["peak_gpu_mib"] > 0).any():
        blocks.append(Block("img", "peak GPU memory across runs", path=plots.history_lines(
            eff, "peak_gpu_mib", plot_dir / "history_gpu_memory.png", "peak GPU MiB")))
    md, page = out / "history.md", out / "history.html"
    atomic_write_text(md, to_markdown(blocks, out))
    atomic_write_text(page, to_html(blocks))
    return {"md": md, "html": page, "plots": [b.path for b in blocks if b.kind == "img"]}
