"""A suite: several tasks with one grid (lengths x depths x samples) and one model, one run folder per task under a
suite folder, plus `suite.json` naming them. `ramba-eval ruler --tasks niah_multikey_2,vt --length 4K..1M` builds
one; `ramba-eval report SUITE_DIR` renders the task x length summary (reports/suite.py).

Each task's folder is an ordinary, resumable run (its own meta.json, config.yaml, records.jsonl), so a suite
resumes task by task and any one task can be reported alone.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ramba.atomic import atomic_write_text
from ramba.errors import BadInputError
from ramba.evals.config import RunConfig

SUITE_FILE = "suite.json"
RULER_TASKS = ("niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2",
               "niah_multikey_3", "niah_multivalue", "niah_multiquery", "vt", "cwe", "fwe", "qa_1", "qa_2")
ALIASES = {"ruler_vt": "vt", "ruler_cwe": "cwe", "ruler_fwe": "fwe", "ruler_qa_squad": "qa_1",
           "ruler_qa_hotpot": "qa_2"}   # lm-eval's names for the same tasks


@dataclass(frozen=True)
class Suite:
    name: str
    out: Path
    configs: tuple[RunConfig, ...]

    def to_dict(self) -> dict:
        return {"suite": self.name, "tasks": [c.task for c in self.configs],
                "runs": {c.task: Path(c.out).name for c in self.configs},
                "config": {k: v for k, v in self.configs[0].to_dict().items() if k not in ("task", "out")}}


def ruler_tasks() -> tuple[str, ...]:
    """The RULER family as registered in this install (qa_1/qa_2 need their module)."""
    from ramba.tasks import TASKS
    return tuple(t for t in RULER_TASKS if t in TASKS)


def parse_tasks(text: str, known: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """'niah_multikey_2,vt' | 'all' -> task names, checked against the RULER family (lm-eval aliases accepted)."""
    known = ruler_tasks() if known is None else known
    names = list(known) if text.strip() == "all" else [t.strip() for t in text.split(",") if t.strip()]
    out = []
    for t in names:
        t = ALIASES.get(t, t)
        if t not in known:
            raise BadInputError(f"unknown RULER task {t!r}; choose from {', '.join(known)} (or 'all')")
        if t in out:
            raise BadInputError(f"task {t!r} is listed twice")
        out.append(t)
    if not out:
        raise BadInputError("no tasks given: pass --tasks niah_single_1,vt (or all)")
    return tuple(out)


def build_suite(name: str, tasks: tuple[str, ...], out: str | None, **run_kw) -> Suite:
    """One RunConfig per task, sharing every other field; folder `out` (default results/<name>-<model>-<hash>)."""
    base = RunConfig(task=tasks[0], **run_kw)
    configs = [base.replace(task=t) for t in tasks]
    blob = json.dumps([c.hashed_dict() for c in configs], sort_keys=True)
    tag = base.run_id.split("-", 1)[1].rsplit("-", 1)[0]  # <backend>[-<model>] from the run id
    folder = Path(out) if out else Path("results") / f"{name}-{tag}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"
    configs = [c.replace(out=str(folder / re.sub(r"[^A-Za-z0-9_.-]", "-", c.task)), report=False) for c in configs]
    return Suite(name, folder, tuple(configs))


def read_suite(folder: str | Path) -> dict | None:
    f = Path(folder) / SUITE_FILE
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text())
    except ValueError:
        return None


def run_suite(suite: Suite, progress: bool = True, console=None) -> Path:
    """Prepare every task first (all input errors before anything runs), then run them one after another."""
    from ramba.evals.runner import execute, prepare
    first = prepare(suite.configs[0])
    prepared = [first] + [prepare(c, backend=first.backend) for c in suite.configs[1:]]
    suite.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(suite.out / SUITE_FILE, json.dumps(suite.to_dict(), indent=1) + "\n")
    for p in prepared:
        execute(p, progress=progress, console=console)
    return suite.out
