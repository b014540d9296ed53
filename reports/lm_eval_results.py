"""Report from an lm-eval output folder (`--output_path`): results_*.json (+ samples_*.jsonl with --log_samples).

Tables: every task's metrics (lm-eval's -1 "other length" sentinels dropped); with logged samples, the score per
task and prompt length (our exported tasks: `score`; lm-eval's RULER tasks: the metric named by the doc's
length), drawn as score vs length.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ramba.atomic import atomic_write_text
from ramba.errors import BadInputError
from ramba.evals.lengths import format_length
from ramba.reports.render import Block, to_html, to_markdown


def find_results(folder: Path) -> list[Path]:
    return sorted(folder.rglob("results_*.json"))


def is_lm_eval_folder(folder) -> bool:
    folder = Path(folder)
    return folder.is_dir() and not (folder / "meta.json").exists() and bool(find_results(folder))


def load_lm_eval(folder: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    files = find_results(folder)
    if not files:
        raise BadInputError(f"{str(folder)!r} holds no lm-eval results_*.json; pass lm-eval's --output_path folder")
    res = json.loads(files[-1].read_text())          # the newest run (names carry the timestamp)
    rows = []
    for task, metrics in res.get("results", {}).items():
        for key, v in metrics.items():
            name, _, filt = key.partition(",")
            if not filt or name.endswith("_stderr") or not isinstance(v, (int, float)) or v == -1:
                continue
            err = metrics.get(f"{name}_stderr,{filt}")
            rows.append({"task": task, "metric": name, "filter": filt, "value": float(v),
                         "stderr": err if isinstance(err, (int, float)) else None})
    stamp = files[-1].stem[len("results_"):]
    samples = []
    for f in sorted(files[-1].parent.glob(f"samples_*_{stamp}.jsonl")):
        task = f.stem[len("samples_"):-len(stamp) - 1]
        for line in f.read_text().splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            doc = r.get("doc", {})
            length = doc.get("length", doc.get("max_length"))
            if length is None:
                continue
            score = r.get("score", r.get(str(doc.get("max_length", length))))
            if isinstance(score, (int, float)) and score != -1:
                samples.append({"task": task, "length": int(doc.get("max_length", length)), "score": float(score)})
    return res, pd.DataFrame(rows), pd.DataFrame(samples)


def score_vs_length(t: pd.DataFrame, path: Path, title: str) -> Path:
    from ramba.reports.plots import _length_axis, _save, plt
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for task, g in t.groupby("task"):
        ax.plot(g["length"], g["score"], marker="o", label=task)
    _length_axis(ax, sorted(t["length"].unique()))
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("mean score")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def write_lm_eval_report(folder, out_dir=None) -> dict:
    folder = Path(folder)
    res, metrics, samples = load_lm_eval(folder)
    out = Path(out_dir) if out_dir else folder
    (out / "plots").mkdir(parents=True, exist_ok=True)
    model = res.get("model_name", "?")
    blocks = [Block("h1", f"lm-eval results: {folder.name}"),
              Block("p", f"Model `{model}` ({res.get('config', {}).get('model_args')}), lm-eval "
                         f"{res.get('lm_eval_version', '?')}, {len(res.get('results', {}))} task(s); read from "
                         f"`{find_results(folder)[-1].name}`.")]
    if not metrics.empty:
        tab = metrics.copy()
        tab["value"] = [f"{v:.4g}" for v in tab["value"]]
        tab["stderr"] = [f"{e:.3g}" if isinstance(e, float) and e == e else "" for e in tab["stderr"]]
        blocks += [Block("h2", "Metrics"), Block("table", table=tab)]
    if not samples.empty:
        t = samples.groupby(["task", "length"]).agg(n=("score", "size"), score=("score", "mean")).reset_index()
        rows = pd.DataFrame({"task": t["task"], "length": [format_length(int(v)) for v in t["length"]],
                             "n": t["n"], "mean score": [f"{v:.1%}" for v in t["score"]]})
        blocks += [Block("h2", "Score by prompt length (logged samples)"), Block("table", table=rows),
                   Block("img", "score vs length", path=score_vs_length(t, out / "plots" / "lm_eval_score_vs_length.png",
                                                                        str(model)))]
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, to_markdown(blocks, out))
    atomic_write_text(page, to_html(blocks))
    return {"md": md, "html": page, "regressions": 0}
