"""A suite: several run configs evaluated together, one results folder each under one suite folder.

```yaml
suite: ci-cpu                  # name (default: the file's stem)
defaults: {model: ramba:checkpoints/ramba-tiny, device: cpu, seed: 0}
runs:
  - {task: passkey, lengths: "1K,4K,16K", depths: 3, samples: 2}
  - {name: niah1, task: niah_single_1, lengths: "1K,4K", depths: 2, samples: 2}
```
Each run is `defaults` + its own keys (RunConfig's fields; what both leave out gets the `passkey` defaults), and
writes to `<suite out>/<name>` (name defaults to the task). `ramba-eval compare` pairs two suite folders run by
run. Every run passes its preflight before the first one starts, so a typo in the last run writes nothing.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ramba.errors import BadInputError
from ramba.evals.config import RunConfig, with_passkey_defaults

SUITE_FILE = "suite.yaml"
_KEYS = {"suite", "defaults", "runs", "out"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class SuiteRun:
    name: str          # folder name under the suite folder
    cfg: RunConfig


@dataclass(frozen=True)
class Suite:
    name: str
    runs: tuple[SuiteRun, ...]
    out: str | None = None

    def suite_hash(self) -> str:
        blob = ",".join(f"{r.name}={r.cfg.config_hash()}" for r in self.runs)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("results") / f"{self.name}-{self.suite_hash()}"

    def with_out(self, out: str | None) -> "Suite":
        """Point the suite (and every run in it) at `out`."""
        base = Path(out) if out else self.out_dir()
        runs = tuple(SuiteRun(r.name, r.cfg.replace(out=str(base / r.name))) for r in self.runs)
        return Suite(self.name, runs, str(base))

    def only(self, names: list[str]) -> "Suite":
        known = [r.name for r in self.runs]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise BadInputError(f"suite {self.name!r} has no run(s) {', '.join(unknown)}; its runs are "
                                f"{', '.join(known)}")
        return Suite(self.name, tuple(r for r in self.runs if r.name in names), self.out)

    def to_dict(self) -> dict:
        """The resolved suite (written as suite.yaml in the suite folder; no machine paths)."""
        runs = []
        for r in self.runs:
            d = r.cfg.to_dict()
            d.pop("out")
            runs.append({"name": r.name, **d})
        return {"suite": self.name, "runs": runs}


def is_suite_data(data: dict) -> bool:
    return "runs" in data


def suite_from_data(data: dict, path: Path) -> Suite:
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise BadInputError(f"unknown suite key(s) {', '.join(unknown)} in {str(path)!r}; a suite has "
                            f"{', '.join(sorted(_KEYS))}")
    name = data.get("suite", path.stem)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise BadInputError(f"suite name {name!r} must be letters, digits, '_', '-' or '.'")
    defaults = data.get("defaults") or {}
    runs = data.get("runs")
    if not isinstance(defaults, dict):
        raise BadInputError(f"suite `defaults` in {str(path)!r} must be a mapping of run config keys")
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        raise BadInputError(f"suite `runs` in {str(path)!r} must be a non-empty list of run configs")
    if "out" in defaults or any("out" in r for r in runs):
        raise BadInputError("suite runs cannot set `out`: each run writes to <suite folder>/<name>; set the "
                            "suite's own `out` or pass --out")
    out, seen = [], set()
    for i, r in enumerate(runs):
        merged = {**defaults, **r}
        run_name = merged.pop("name", None) or merged.get("task") or "passkey"
        if not isinstance(run_name, str) or not _NAME_RE.match(run_name):
            raise BadInputError(f"suite run {i + 1} name {run_name!r} must be letters, digits, '_', '-' or '.'")
        if run_name in seen:
            raise BadInputError(f"suite {name!r} has two runs named {run_name!r}; give one a `name:`")
        seen.add(run_name)
        try:
            cfg = RunConfig.from_dict(with_passkey_defaults(merged))
        except BadInputError as e:
            raise BadInputError(f"suite run {run_name!r}: {e}") from None
        out.append(SuiteRun(run_name, cfg))
    suite_out = data.get("out")
    if suite_out is not None and not isinstance(suite_out, str):
        raise BadInputError(f"suite `out` must be a folder path, got {suite_out!r}")
    return Suite(name, tuple(out), suite_out).with_out(suite_out)


def write_suite_file(suite: Suite) -> Path:
    import yaml
    from ramba.atomic import atomic_write_text
    path = suite.out_dir() / SUITE_FILE
    atomic_write_text(path, yaml.safe_dump(suite.to_dict(), sort_keys=False))
    return path
