"""Suite report: a folder of task runs (evals/ruler_suite.py) -> task x length table (accuracy, mean partial score,
teacher-forced accuracy) and a heatmap of the mean score; each task's own report is written into its folder."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ramba.atomic import atomic_write_text
from ramba.errors import BadInputError
from ramba.evals.lengths import format_length
from ramba.reports.load import load_results
from ramba.reports.render import Block, to_html, to_markdown, write_report


def load_suite(folder: Path) -> tuple[dict, pd.DataFrame]:
    from ramba.evals.ruler_suite import read_suite
    suite = read_suite(folder)
    if suite is None:
        raise BadInputError(f"{str(folder)!r} is not a suite folder (no suite.json)")
    frames = []
    for task, sub in suite["runs"].items():
        d = folder / sub
        if d.is_dir() and (d / "records.jsonl").is_file():
            _, df = load_results(d)
            frames.append(df)
    if not frames:
        raise BadInputError(f"{str(folder)!r} holds no finished task runs yet; run (or resume) the suite first")
    return suite, pd.concat(frames, ignore_index=True)


def suite_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per task and length: n, accuracy and mean score (generated), teacher-forced accuracy."""
    gen = df[df["convention"] == "generated"].groupby(["task", "length"])
    tf = df[df["convention"] == "teacher_forced"].groupby(["task", "length"])["correct"].mean()
    t = gen.agg(n=("correct", "size"), acc=("correct", "mean"), score=("score", "mean")).reset_index()
    t["tf_acc"] = [tf.get((a, b), float("nan")) for a, b in zip(t["task"], t["length"])]
    return t


def heatmap(t: pd.DataFrame, path: Path, title: str) -> Path:
    from ramba.reports.plots import _save, plt
    tasks = list(dict.fromkeys(t["task"]))
    lengths = sorted(t["length"].unique())
    val = {(a, b): s for a, b, s in zip(t["task"], t["length"], t["score"])}
    grid = [[val.get((a, L), float("nan")) for L in lengths] for a in tasks]
    fig, ax = plt.subplots(figsize=(1.0 * len(lengths) + 3, 0.45 * len(tasks) + 1.6))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v == v:
                ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=8, color="black" if v > 0.6 else "white")
    ax.set_xticks(range(len(lengths)), [format_length(int(L)) for L in lengths])
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_xlabel("prompt length (tokens)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="mean score (generated)")
    return _save(fig, path)


def write_suite_report(folder: str | Path, out_dir: str | Path | None = None) -> dict:
    folder = Path(folder)
    suite, df = load_suite(folder)
    out = Path(out_dir) if out_dir else folder
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for sub in suite["runs"].values():  # each task's full report in its own folder
        d = folder / sub
        if (d / "records.jsonl").is_file():
            write_report(d, out_dir=(out / sub) if out_dir else None)
    t = suite_table(df)
    cfg = suite.get("config", {})
    rows = pd.DataFrame({"task": t["task"], "length": [format_length(int(v)) for v in t["length"]], "n": t["n"],
                         "accuracy": [f"{v:.1%}" for v in t["acc"]], "mean score": [f"{v:.1%}" for v in t["score"]],
                         "teacher-forced": [f"{v:.1%}" if v == v else "–" for v in t["tf_acc"]]})
    per_task = t.groupby("task", sort=False).agg(acc=("acc", "mean"), score=("score", "mean")).reset_index()
    title = f"{suite.get('suite')} · {cfg.get('model')}"
    blocks = [Block("h1", f"ramba-eval suite report: {folder.name}"),
              Block("p", f"Suite **{suite.get('suite')}**, model `{cfg.get('model')}`, seed {cfg.get('seed')}, "
                         f"{len(suite['tasks'])} task(s): {', '.join(suite['tasks'])}. *accuracy*: every expected "
                         "value found in the greedy output; *mean score*: RULER's metric for the task "
                         "(string_match_all: the fraction of expected values found), averaged over samples; "
                         "*teacher-forced*: the argmax matches the answer at every position."),
              Block("h2", "Per task"),
              Block("table", table=pd.DataFrame({"task": per_task["task"],
                                                 "accuracy": [f"{v:.1%}" for v in per_task["acc"]],
                                                 "mean score": [f"{v:.1%}" for v in per_task["score"]]})),
              Block("h2", "Task x length"), Block("table", table=rows),
              Block("img", "mean score, task x length", path=heatmap(t, out / "plots" / "suite_heatmap.png", title))]
    blocks.append(Block("p", "Per-task reports: " + ", ".join(f"`{s}/report.md`" for s in suite["runs"].values())))
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, to_markdown(blocks, out))
    atomic_write_text(page, to_html(blocks))
    return {"md": md, "html": page, "regressions": 0}
