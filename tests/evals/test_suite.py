"""Suites: one folder per run under one suite folder, every run checked before the first starts, `--only`,
and `compare` pairs two suite folders run by run."""

from ramba.evals.defaults import REPO_ROOT
from ramba.evals.suite import suite_from_data
from ramba.evals.config import read_config_file
from .cli_helpers import run_cli as _cli

SUITE = """suite: small
defaults: {model: oracle, depths: 0.5, samples: 1, report: false}
runs:
  - {task: passkey, lengths: 1K}
  - {name: pk-2k, task: passkey, lengths: 2K}
  - {task: niah_single_1, lengths: 1K}
"""



def test_suite_runs_resumes_and_compares(tmp_path, capsys):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(SUITE)
    code, out, err = _cli(["run", str(cfg), "--out", str(tmp_path / "a"), "--no-progress"], capsys)
    assert code == 0, err
    for name in ("passkey", "pk-2k", "niah_single_1"):
        assert (tmp_path / "a" / name / "records.jsonl").exists()
    assert (tmp_path / "a" / "suite.yaml").exists() and str(tmp_path) not in (tmp_path / "a" / "suite.yaml").read_text()
    code, out, err = _cli(["run", str(cfg), "--out", str(tmp_path / "a"), "--no-progress"], capsys)  # resumes
    assert code == 0, err
    code, out, err = _cli(["run", str(cfg), "--out", str(tmp_path / "b"), "--only", "pk-2k", "--no-progress"], capsys)
    assert code == 0 and [p.name for p in (tmp_path / "b").iterdir() if p.is_dir()] == ["pk-2k"]
    code, out, err = _cli(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(tmp_path / "c")], capsys)
    assert code == 0 and "3 task(s)" in out and "no regression" in out, (out, err)
    code, out, err = _cli(["run", str(cfg), "--dry-run"], capsys)
    assert code == 0 and out.count("plan for run") == 3


def test_the_ci_suite_is_valid_and_small():
    path = REPO_ROOT / "configs" / "ci-suite.yaml"
    suite = suite_from_data(read_config_file(path), path)
    assert {r.cfg.task for r in suite.runs} >= {"passkey", "niah_single_1"}
    assert all(r.cfg.device == "cpu" and r.cfg.model == "ramba:checkpoints/ramba-tiny" for r in suite.runs)
    samples = sum(len(r.cfg.lengths) * len(r.cfg.depths) * r.cfg.samples for r in suite.runs)
    assert 40 <= samples <= 120 and max(max(r.cfg.lengths) for r in suite.runs) <= 16384
    baseline = REPO_ROOT / "reports" / "baselines" / "ci-suite"
    assert sorted(p.name for p in baseline.iterdir() if p.is_dir()) == sorted(r.name for r in suite.runs)
