"""`ramba-eval bench` and the GPU benchmark script run on CPU at tiny sizes: records, report, plot."""
import importlib.util
import json
from pathlib import Path

import pytest

from ramba.evals.cli import main
from ramba.evals.records import read_records

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Timing loops: one intra-op thread (tests/conftest.py)."""
    yield


def test_bench_cli_records_and_report(tmp_path, capsys):
    out = tmp_path / "b"
    with pytest.raises(SystemExit) as e:
        main(["bench", "--model", "ramba:tiny", "--length", "300,600", "--memory", "gpu,disk", "--device", "cpu",
              "--segment", "256", "--decode", "3", "--out", str(out)])
    assert e.value.code in (0, None)
    rows = read_records(out / "bench.jsonl")
    assert sorted((r["placement"], r["length"]) for r in rows) == [("disk", 300), ("disk", 600), ("gpu", 300),
                                                                   ("gpu", 600)]
    for r in rows:
        assert r["prefill_tok_s"] > 0 and r["decode_ms_p50"] > 0 and r["decode_tokens"] == 3
        assert {"mamba2", "selection", "hsa"} <= set(r["breakdown_prefill_s"])
    disk = [r for r in rows if r["placement"] == "disk"]
    assert all(r["state_disk_bytes"] > 0 and r["gathered_chunks"] > 0 for r in disk)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["env"]["device"] == "cpu" and meta["packages"]["torch"]
    assert "| disk |" in (out / "bench.md").read_text() and (out / "bench.png").exists()
    assert not (out / "memory").exists()


def test_offload_script_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_offload", ROOT / "benchmarks/offload/bench_offload.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import os
    cwd = os.getcwd()
    os.chdir(ROOT)                            # the script names the shipped checkpoint relative to the repo
    try:
        assert mod.main(["smoke", "--out", str(tmp_path / "o")]) == 0
    finally:
        os.chdir(cwd)
    res = json.loads((tmp_path / "o" / "summary-smoke.json").read_text())
    assert "host_over_gpu_time" in res["sweep"] and "disk_completed_s" in res["sweep"]
    assert res["passkey"]["host"]["n"] == 1 and res["passkey"]["disk"]["n"] == 1


def test_bench_runs_a_preset_without_tokenizer_files(tmp_path):
    """The 370m preset (random weights, a 50280-id vocabulary, no tokenizer files) benches: its prompt is random
    ids, so no tokenizer is needed (this failed on the H200 run of benchmarks/offload/issue10_gpu.sh)."""
    out = tmp_path / "b370"
    with pytest.raises(SystemExit) as e:
        main(["bench", "--model", "ramba:370m", "--length", "128", "--memory", "host", "--device", "cpu",
              "--segment", "128", "--decode", "1", "--out", str(out)])
    assert e.value.code in (0, None)
    (row,) = read_records(out / "bench.jsonl")
    assert row["length"] == 128 and row["prefill_tok_s"] > 0
