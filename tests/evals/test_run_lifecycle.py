"""A run's life: warm-up timed apart, the lock file gone at the end, a killed run reported as interrupted, a
crash recorded as failed, an out-of-vocabulary prediction scored wrong (not fatal), fault injection."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from ramba.evals import fault
from ramba.evals.backend_dummy import OracleBackend
from ramba.evals.backends import BACKENDS, register_backend
from ramba.evals.config import RunConfig
from ramba.evals.lock import effective_status, is_held
from ramba.evals.records import read_meta, read_records
from ramba.evals.runner import Prepared, _needs_warmup, run


@pytest.fixture
def backend(request):
    """Register a test backend class for one test."""
    def add(name, cls):
        register_backend(name)(cls)
        request.addfinalizer(lambda: BACKENDS.pop(name, None))
    return add


def test_warm_up_is_recorded_apart_and_the_lock_goes(tmp_path):
    out = run(RunConfig(model="oracle", lengths="1K,2K", depths="0,1", samples=1, out=str(tmp_path / "r"),
                        report=False), progress=False)
    rows = [r for r in read_records(out / "records.jsonl") if r["convention"] == "generated"]
    assert rows[0]["warmup_s"] > 0 and all(r["warmup_s"] == 0 for r in rows[1:])  # CPU: once per session
    meta = read_meta(out)
    assert meta["warmup_s_by_session"]["1"] == pytest.approx(rows[0]["warmup_s"], abs=1e-3)
    assert not (out / ".lock").exists() and meta["status"] == "complete"


def test_gpu_warms_up_before_each_new_length():
    p = Prepared(cfg=None, out_dir=None, task=None, backend=None, device="cuda", segment=1)
    assert _needs_warmup(p, 4096, set()) and _needs_warmup(p, 8192, {4096}) and not _needs_warmup(p, 4096, {4096})
    p.device = "cpu"
    assert _needs_warmup(p, 4096, set()) and not _needs_warmup(p, 8192, {4096})


class _Slow(OracleBackend):
    name = "slow"

    def consume(self, ids):
        time.sleep(0.2)
        return super().consume(ids)


def test_a_killed_run_reads_as_interrupted(tmp_path):
    out = tmp_path / "r"
    code = ("import sys\nfrom ramba.evals.backends import register_backend\n"
            "from tests.evals.test_run_lifecycle import _Slow\nregister_backend('slow')(_Slow)\n"
            "from ramba.evals.cli import main\nmain(sys.argv[1:])\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen([sys.executable, "-c", code, "passkey", "--model", "slow", "--length", "1K",
                             "--depths", "6", "--samples", "2", "--out", str(out), "--no-report", "--no-progress"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not ((out / "records.jsonl").exists() and (out / "records.jsonl").read_text().count("\n") >= 2):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < 90
        time.sleep(0.05)
    assert is_held(out) and effective_status(out, read_meta(out)) == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    meta = read_meta(out)
    assert meta["status"] == "running"                       # what the dead process left behind
    assert not is_held(out) and effective_status(out, meta) == "interrupted"
    from ramba.reports.render import write_report
    assert "Status **interrupted**" in write_report(out)["md"].read_text()


class _Breaks(OracleBackend):
    name = "breaks"
    calls = 0

    def consume(self, ids):
        type(self).calls += 1
        if type(self).calls > 3:  # warm-up + two samples, then a bug
            raise ZeroDivisionError("a bug in the backend")
        return super().consume(ids)


def test_a_crash_is_recorded_as_failed(tmp_path, backend):
    backend("breaks", _Breaks)
    out = tmp_path / "r"
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        run(RunConfig(model="breaks", lengths="1K", depths="3", samples=1, out=str(out), report=False),
            progress=False)
    meta = read_meta(out)
    assert meta["status"] == "failed" and "a bug in the backend" in meta["error"]
    assert len(read_records(out / "records.jsonl")) == 4 and not (out / ".lock").exists()


class _BigVocab(OracleBackend):
    """A model with a 300-id vocabulary read with the 256-id byte tokenizer, predicting id 299."""
    name = "bigvocab"

    def _logits(self):
        logits = torch.full((300,), -10.0)
        logits[299] = 10.0
        return logits


def test_prediction_outside_the_vocabulary_is_wrong_not_fatal(tmp_path, backend):
    backend("bigvocab", _BigVocab)
    out = run(RunConfig(model="bigvocab", lengths="1K", depths="0.5", samples=2, out=str(tmp_path / "r"),
                        report=False), progress=False)
    rows = read_records(out / "records.jsonl")
    assert len(rows) == 4 and not any(r["correct"] for r in rows)
    gen = [r for r in rows if r["convention"] == "generated"]
    assert gen[0]["prediction"].startswith("<id 299?>") and gen[0]["prediction_ids"][0] == 299
    assert read_meta(out)["status"] == "complete"


def test_fault_injection_is_deterministic_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv(fault.ENV_VAR, "corrupt_logits:1")
    out = run(RunConfig(model="oracle", lengths="1K", depths="3", samples=2, out=str(tmp_path / "r"), report=False),
              progress=False)
    rows = read_records(out / "records.jsonl")
    assert not any(r["correct"] for r in rows) and read_meta(out)["fault"] == "corrupt_logits:1"
    be = fault.CorruptLogits(OracleBackend(), 0.5)
    picks = []
    for seed in range(40):
        be.reset()
        be.consume(np.random.default_rng(seed).integers(0, 256, 300))
        picks.append(be._bad)
    again = []
    for seed in range(40):
        be.reset()
        be.consume(np.random.default_rng(seed).integers(0, 256, 300))
        again.append(be._bad)
    assert picks == again and 8 < sum(picks) < 32  # the same samples every time, about half of them
    monkeypatch.delenv(fault.ENV_VAR)
    from ramba.errors import BadInputError
    with pytest.raises(BadInputError, match="RAMBA_EVAL_FAULT"):  # a faulted folder is not resumed clean
        run(RunConfig(model="oracle", lengths="1K", depths="3", samples=2, out=str(tmp_path / "r"), report=False),
            progress=False)


def test_help_shows_the_defaults(capsys, monkeypatch):
    from ramba.evals.cli import main
    monkeypatch.setenv("COLUMNS", "200")  # one help line per option, whatever the terminal
    with pytest.raises(SystemExit) as e:
        main(["passkey", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for default in ("1K..8K", "default: (5)", "default: (2)", "the model's own", "./results/<run_id>"):
        assert default in text.replace("│ ", "").replace(" │", ""), default


def test_plan_and_cache_agree_on_what_is_cached():
    from ramba.evals.plan import MEMORY_MAX_TOKENS
    from ramba.tasks.cache import MEMORY_MAX_TOKENS as TASKS_MAX
    assert MEMORY_MAX_TOKENS == TASKS_MAX
