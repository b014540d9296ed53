"""The CI regression gate (.ci/gate, run by .ci/run after the tests): a backend made worse fails it with a
readable message; differences inside the noise band do not."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ramba.evals.cli import main

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "reports" / "baselines" / "ci-suite"
CHECKPOINT = ROOT / "checkpoints" / "ramba-tiny"


@pytest.mark.skipif(not (CHECKPOINT / "model.safetensors").exists(), reason="no shipped ramba-tiny checkpoint")
def test_planted_regression_fails_the_gate(tmp_path):
    """Half of the passkey samples get corrupted logits (RAMBA_EVAL_FAULT): the gate must exit 1 and say which
    cells regressed, by how much, and what to do."""
    env = {**os.environ, "RAMBA_EVAL_FAULT": "corrupt_logits:0.5", "CI_GATE_ONLY": "passkey",
           "RAMBA_EVAL_CACHE": str(tmp_path / "cache"),
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    r = subprocess.run(["bash", str(ROOT / ".ci" / "gate"), str(tmp_path / "gate")], capture_output=True, text=True,
                       env=env, timeout=900)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "REGRESSION passkey (generated, all lengths): 100.0% (45/45) ->" in r.stderr, r.stderr
    assert "entirely below 0" in r.stderr and "ci: gate FAILED" in r.stderr
    assert "bash benchmarks/ci/make_baseline.sh" in r.stderr
    assert "fault injection on" in r.stdout  # the summary says why
    md = (tmp_path / "gate" / "compare" / "compare.md").read_text()
    assert md.startswith("# ramba-eval compare: ❌")


def _flip(run_dir: Path, length: int, count: int) -> None:
    """Make `count` samples of `length` wrong (both conventions), as a slightly different model would."""
    rows = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    ids = sorted({r["sample_id"] for r in rows if r["length"] == length and r["correct"]})[:count]
    for r in rows:
        if r["sample_id"] in ids:
            r["correct"], r["score"] = False, 0.0
    (run_dir / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("flipped,expect", [(0, 0), (1, 0), (2, 0), (7, 1)])
def test_noise_band_of_the_committed_baseline(tmp_path, capsys, flipped, expect):
    """Against the committed baseline (15 passkey samples per length at 100%): one or two wrong samples at 4K
    are inside the noise band; seven are not."""
    new = tmp_path / "new"
    shutil.copytree(BASELINE, new)
    if flipped:
        _flip(new / "passkey", 4096, flipped)
    with pytest.raises(SystemExit) as e:
        main(["compare", str(BASELINE), str(new), "--out", str(tmp_path / "c"), "--max-memory-growth", "1.5"])
    err = capsys.readouterr().err
    assert e.value.code == expect, err
    assert ("REGRESSION passkey (generated, length 4K)" in err) == bool(expect)
