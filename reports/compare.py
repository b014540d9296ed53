"""Baseline vs new: which cells got worse beyond the noise, per task x convention x length.

Each side is a results folder or a suite folder of them; runs pair up by task. Runs of different tasks, or of
the same task under different tokenizers (different prompts), are refused: their accuracies are not comparable.

Accuracy: the difference new - baseline with its 95% Newcomb interval (`stats.newcomb`); a cell is a
regression when the whole interval lies below 0, i.e. the drop is larger than the sampling noise of both runs.
Cells are per (task, convention, length) and pooled per (task, convention) over the shared lengths, where more
samples give more power. Throughput and memory are reported; they are gated only when asked (CI machines differ
in speed, so a gate there must be loose, e.g. a 10x slowdown).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ramba.errors import BadInputError
from ramba.evals.lengths import format_length
from ramba.evals.lock import effective_status
from ramba.evals.records import META_FILE
from ramba.reports.load import load_results
from ramba.reports.stats import accuracy_table, compare as compare_tables, efficiency_table

ALL = 0  # the `length` of pooled rows


@dataclass(frozen=True)
class RunData:
    path: Path
    meta: dict
    df: pd.DataFrame

    @property
    def task(self) -> str:
        return str(self.meta.get("config", {}).get("task") or self.df["task"].iloc[0])

    @property
    def tokenizer(self) -> tuple[str, str]:
        be = self.meta.get("backend", {})
        return str(be.get("tokenizer")), str(be.get("tokenizer_fingerprint") or be.get("tokenizer"))

    @property
    def status(self) -> str:
        return effective_status(self.path, self.meta)

    @property
    def label(self) -> str:
        return str(self.meta.get("run_id") or self.path.name)


def run_folders(path: str | Path) -> list[Path]:
    """A results folder -> [it]; a suite folder -> its results subfolders (sorted)."""
    p = Path(path)
    if not p.is_dir():
        raise BadInputError(f"{str(p)!r} does not exist; pass a results folder or a suite folder of them")
    if (p / META_FILE).is_file():
        return [p]
    runs = sorted(d for d in p.iterdir() if d.is_dir() and (d / META_FILE).is_file())
    if not runs:
        raise BadInputError(f"{str(p)!r} is neither a results folder (meta.json + records.jsonl) nor a suite "
                            "folder of them")
    return runs


def load_side(path: str | Path) -> dict[str, RunData]:
    """name -> run, for one side of a comparison: a suite's runs by folder name (the suite's run names, which
    default to the task), a lone results folder by its task. Pairs must then hold the same task."""
    folders = run_folders(path)
    out: dict[str, RunData] = {}
    for d in folders:
        meta, df = load_results(d)
        r = RunData(d, meta, df)
        out[r.task if d == Path(path) else d.name] = r
    return out


@dataclass
class Comparison:
    baseline_path: Path
    new_path: Path
    baseline: dict[str, RunData]
    new: dict[str, RunData]
    cells: pd.DataFrame              # task, convention, length (ALL = pooled), k/n/acc/lo/hi (+ _base), d, d_lo, d_hi, flag
    efficiency: pd.DataFrame         # task, length, tok/s, latency, memory: base, new, ratio
    notes: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    gates: dict = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return sorted(self.new)


def _pick(side: dict[str, RunData], tasks: list[str] | None, what: str, path) -> dict[str, RunData]:
    """--tasks: keep the runs of these tasks (or of these run names)."""
    if tasks is None:
        return side
    kept = {k: r for k, r in side.items() if k in tasks or r.task in tasks}
    missing = [t for t in tasks if not any(k == t or r.task == t for k, r in kept.items())]
    if missing:
        raise BadInputError(f"{what} {str(path)!r} has no run of task(s) {', '.join(missing)}; it has "
                            f"{', '.join(sorted(side))}")
    return kept


def _check_pairing(base: dict[str, RunData], new: dict[str, RunData], bpath, npath) -> None:
    if len(base) == 1 and len(new) == 1:  # two lone folders (or one-run suites): pair them whatever their names
        (kb, rb), (kn, rn) = next(iter(base.items())), next(iter(new.items()))
        check_pair(rb, rn)
        if kb != kn:
            new.pop(kn)
            new[kb] = rn
        return
    if set(base) != set(new):
        only_b, only_n = sorted(set(base) - set(new)), sorted(set(new) - set(base))
        parts = []
        if only_b:
            parts.append(f"only the baseline has {', '.join(only_b)}")
        if only_n:
            parts.append(f"only the new runs have {', '.join(only_n)}")
        raise BadInputError(f"runs of different tasks cannot be compared ({'; '.join(parts)}); compare runs of the "
                            "same tasks, or pick them with --tasks")
    for t in sorted(base):
        check_pair(base[t], new[t])


def check_pair(base: RunData, new: RunData) -> None:
    """Two runs are comparable when they ran the same task with the same tokenizer (hence the same prompts)."""
    if base.task != new.task:
        raise BadInputError(f"runs of different tasks cannot be compared: {str(base.path)!r} is {base.task!r}, "
                            f"{str(new.path)!r} is {new.task!r}; compare runs of the same task")
    (bn, bf), (nn, nf) = base.tokenizer, new.tokenizer
    if bf != nf:
        raise BadInputError(f"task {new.task!r} was run with different tokenizers ({bn} in {str(base.path)!r}, {nn} "
                            f"in {str(new.path)!r}), so the prompts differ; compare runs that share a tokenizer")


def _notes(t: str, b: RunData, n: RunData) -> list[str]:
    out = []
    bc, nc = b.meta.get("config", {}), n.meta.get("config", {})
    if bc.get("model") != nc.get("model"):
        out.append(f"{t}: different models ({bc.get('model')} vs {nc.get('model')})")
    bfp, nfp = b.meta.get("model_fingerprint"), n.meta.get("model_fingerprint")
    if bfp and nfp and bfp != nfp and bc.get("model") == nc.get("model"):
        out.append(f"{t}: the weights under {nc.get('model')} changed since the baseline (fingerprint {bfp} -> "
                   f"{nfp}); if intended, regenerate the baseline")
    for key in ("seed", "samples", "depths"):
        if bc.get(key) != nc.get(key):
            out.append(f"{t}: {key} differ ({bc.get(key)} vs {nc.get(key)}): other samples, compared by their "
                       "intervals")
    bl, nl = set(b.df["length"]), set(n.df["length"])
    if bl != nl:
        lone = sorted(bl ^ nl)
        out.append(f"{t}: length(s) {', '.join(format_length(int(x)) for x in lone)} are in one run only and "
                   "are not compared")
    for side, r in (("baseline", b), ("new", n)):
        if r.status != "complete":
            out.append(f"{t}: the {side} run is {r.status}, so it compares the samples it finished")
        if r.meta.get("fault"):
            out.append(f"{t}: the {side} run had fault injection on (RAMBA_EVAL_FAULT={r.meta['fault']})")
    return out


def _accuracy_cells(t: str, b: RunData, n: RunData) -> pd.DataFrame:
    shared = sorted(set(b.df["length"]) & set(n.df["length"]))
    if not shared:
        raise BadInputError(f"task {t!r}: the baseline and the new run share no prompt length; nothing to compare")
    bd, nd = b.df[b.df["length"].isin(shared)], n.df[n.df["length"].isin(shared)]
    per = compare_tables(accuracy_table(nd, ["convention", "length"]), accuracy_table(bd, ["convention", "length"]))
    pooled = compare_tables(accuracy_table(nd, ["convention"]), accuracy_table(bd, ["convention"]), on=("convention",))
    pooled["length"] = ALL
    cells = pd.concat([per, pooled], ignore_index=True)
    cells.insert(0, "task", t)
    return cells


def _efficiency(t: str, b: RunData, n: RunData) -> pd.DataFrame:
    eb, en = efficiency_table(b.df), efficiency_table(n.df)
    m = en.merge(eb, on="length", suffixes=("", "_base"))
    m.insert(0, "task", t)
    m["tok_s_ratio"] = m["prefill_tok_s"] / m["prefill_tok_s_base"].where(m["prefill_tok_s_base"] > 0)
    m["state_ratio"] = m["state_bytes"] / m["state_bytes_base"].where(m["state_bytes_base"] > 0)
    m["host_ratio"] = m["peak_host_bytes"] / m["peak_host_bytes_base"].where(m["peak_host_bytes_base"] > 0)
    return m


def _pct(x: float) -> str:
    return f"{x:.1%}"


def cell_name(task: str, convention: str, length: int) -> str:
    where = "all lengths" if length == ALL else f"length {format_length(int(length))}"
    return f"{task} ({convention}, {where})"


def regression_line(r) -> str:
    return (f"REGRESSION {cell_name(r.task, r.convention, r.length)}: {_pct(r.acc_base)} ({r.k_base}/{r.n_base}) -> "
            f"{_pct(r.acc)} ({r.k}/{r.n}), change {100 * r.d:+.1f} points, 95% interval "
            f"[{100 * r.d_lo:+.1f}, {100 * r.d_hi:+.1f}] entirely below 0")


def compare_runs(baseline: str | Path, new: str | Path, tasks: list[str] | None = None,
                 max_slowdown: float | None = None, max_memory_growth: float | None = None) -> Comparison:
    for name, v in (("--max-slowdown", max_slowdown), ("--max-memory-growth", max_memory_growth)):
        if v is not None and not v > 1:
            raise BadInputError(f"{name} must be a factor above 1 (e.g. 10), got {v}")
    base = _pick(load_side(baseline), tasks, "baseline", baseline)
    nw = _pick(load_side(new), tasks, "new results", new)
    _check_pairing(base, nw, baseline, new)
    cells, eff, notes = [], [], []
    for t in sorted(nw):
        cells.append(_accuracy_cells(t, base[t], nw[t]))
        eff.append(_efficiency(t, base[t], nw[t]))
        notes += _notes(t, base[t], nw[t])
    c = Comparison(Path(baseline), Path(new), base, nw, pd.concat(cells, ignore_index=True),
                   pd.concat(eff, ignore_index=True), notes,
                   gates={"accuracy": "95% Newcomb interval of the difference entirely below 0",
                          "max_slowdown": max_slowdown, "max_memory_growth": max_memory_growth})
    c.regressions = [regression_line(r) for r in c.cells.itertuples() if r.flag == "regression"]
    for r in c.efficiency.itertuples():
        where = f"{r.task} at length {format_length(int(r.length))}"
        if max_slowdown and r.tok_s_ratio == r.tok_s_ratio and r.tok_s_ratio < 1 / max_slowdown:
            c.regressions.append(f"REGRESSION {where}: median prefill {r.prefill_tok_s_base:,.0f} -> "
                                 f"{r.prefill_tok_s:,.0f} tokens/s, {1 / r.tok_s_ratio:.1f}x slower "
                                 f"(gate: {max_slowdown:g}x)")
        if max_memory_growth and r.state_ratio == r.state_ratio and r.state_ratio > max_memory_growth:
            c.regressions.append(f"REGRESSION {where}: model state {r.state_bytes_base / 2**20:,.1f} -> "
                                 f"{r.state_bytes / 2**20:,.1f} MiB, {r.state_ratio:.1f}x larger "
                                 f"(gate: {max_memory_growth:g}x)")
    return c
