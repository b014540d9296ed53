"""torchrun runs on CPU (gloo): two ranks write exactly the records of one process; a killed rank loses only its
unfinished samples, the merged report names them, and a rerun with another rank count completes the folder."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ramba.evals import distributed, launcher
from ramba.evals.cli import main
from ramba.evals.config import RunConfig
from ramba.evals.merge import rank_files
from ramba.evals.records import read_meta
from ramba.evals.runner import run
from tests.evals.test_merge import untimed

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {"task": "passkey", "lengths": "1K,2K", "depths": 3, "samples": 2, "model": "oracle", "device": "cpu"}


def _config(tmp_path, **kw) -> Path:
    import yaml
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **kw}))
    return path


def _single(tmp_path) -> Path:
    import yaml
    cfg = RunConfig(**{**yaml.safe_load(_config(tmp_path).read_text()), "report": False,
                       "out": str(tmp_path / "single")})
    return run(cfg, progress=False)


def _cli(args, env=None, timeout=120):
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _torchrun(nproc, config, out, env=None):
    return _cli([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
                 "-m", "ramba.evals.cli", "run", str(config), "--out", str(out), "--no-progress"], env)


def test_two_gloo_ranks_write_the_records_of_one_process(tmp_path):
    single = _single(tmp_path)
    out = tmp_path / "two"
    res = _cli([sys.executable, "-m", "ramba.evals.cli", "run", str(_config(tmp_path, report=False)),
                "--out", str(out), "--no-progress", "--launcher", "torchrun", "--nproc", "2"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("results:") == 1                          # rank 0 speaks, once
    assert untimed(out / "records.jsonl") == untimed(single / "records.jsonl")
    assert rank_files(out) == []                                      # merged, then folded away
    meta = read_meta(out)
    d = meta["distributed"]
    assert meta["status"] == "complete" and meta["missing"] == [] and meta["config_hash"] == \
        read_meta(single)["config_hash"]
    assert d["world_size"] == 2 and d["backend"] == "gloo" and d["plan_imbalance"] == 1.0
    assert [(r["rank"], r["status"], r["written"]) for r in d["ranks"]] == [(0, "complete", 6), (1, "complete", 6)]
    plan = json.loads((out / "plan.json").read_text())
    assert [s[0] for s in plan["shards"]] == ["passkey-L2048-d0.0000-s0-i0", "passkey-L2048-d0.0000-s0-i1"]


def test_a_killed_rank_loses_only_its_unfinished_samples_and_resumes(tmp_path):
    single = _single(tmp_path)
    config, out = _config(tmp_path), tmp_path / "killed"
    res = _torchrun(2, config, out, env={"RAMBA_EVAL_KILL": "1:2"})   # rank 1 dies after its 2nd sample
    assert res.returncode != 0
    assert "sample(s) missing" in res.stderr and "rerunning the same command resumes" in res.stderr, \
        res.stderr[-3000:]
    meta = read_meta(out)
    plan = json.loads((out / "plan.json").read_text())
    missing = set(meta["missing"])
    done = {r["sample_id"] for r in untimed(out / "records.jsonl")}
    assert meta["status"] == "interrupted" and done | missing == {s for sh in plan["shards"] for s in sh}
    # Every sample a rank finished is kept: each rank's records are a prefix of its shard (run in order), the
    # rest is missing. Rank 1 died after its 2nd; torchrun then stopped rank 0 (SIGTERM) wherever it was.
    for shard in plan["shards"]:
        k = sum(s in done for s in shard)
        assert set(shard[:k]) <= done and set(shard[k:]) <= missing
    assert set(plan["shards"][1][:2]) <= done and set(plan["shards"][1][2:]) <= missing
    md = (out / "report.md").read_text()                              # the merged report names them
    assert f"Missing samples ({len(missing)})" in md and all(f"`{s}`" in md for s in missing)
    lost = sorted(missing)
    # Resume on three ranks: only the lost samples are planned, and the folder ends as one process writes it.
    res = _torchrun(3, config, out)
    assert res.returncode == 0, res.stderr[-3000:]
    replan = json.loads((out / "plan.json").read_text())
    assert sorted(s for shard in replan["shards"] for s in shard) == sorted(lost)
    assert untimed(out / "records.jsonl") == untimed(single / "records.jsonl")
    meta = read_meta(out)
    assert meta["status"] == "complete" and meta["missing"] == [] and meta["sessions"] == 2
    assert rank_files(out) == []


def _bad(argv, capsys, mention):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert mention in err[0], err[0]


@pytest.mark.parametrize("extra,mention", [
    (["--launcher", "torchrun", "--nproc", "0"], "--nproc must be at least 1"),
    (["--nproc", "2"], "--nproc needs --launcher torchrun"),
    (["--launcher", "mpirun", "--nproc", "2"], "unknown launcher 'mpirun'"),
])
def test_launcher_bad_input(tmp_path, capsys, extra, mention):
    _bad(["run", str(_config(tmp_path)), "--out", str(tmp_path / "o"), *extra], capsys, mention)
    assert not (tmp_path / "o").exists()


def test_launcher_refuses_without_torchrun_or_inside_it(tmp_path, capsys, monkeypatch):
    import torch.distributed as dist
    argv = ["run", str(_config(tmp_path)), "--launcher", "torchrun", "--nproc", "2"]
    monkeypatch.setattr(dist, "is_available", lambda: False)
    _bad(argv, capsys, "torchrun is not available")
    monkeypatch.undo()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    _bad(argv, capsys, "already running under torchrun")


def test_torchrun_command_line():
    assert launcher.torchrun_argv(4, ["run", "c.yaml"]) == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
        "-m", "ramba.evals.cli", "run", "c.yaml"]


def test_ranks_from_torchrun_env():
    assert distributed.from_env({}) is None
    r = distributed.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (r.rank, r.world_size, r.local_rank, r.is_main) == (3, 4, 1, False)
    for bad in ({"RANK": "4", "WORLD_SIZE": "4"}, {"RANK": "x", "WORLD_SIZE": "2"}, {"RANK": "0", "WORLD_SIZE": "0"}):
        with pytest.raises(distributed.BadInputError):
            distributed.from_env(bad)


def test_the_2gpu_benchmark_runs_its_cpu_path(tmp_path):
    """benchmarks/distributed/bench_sweep.py --smoke: the same two commands as on 2 GPUs, on gloo."""
    record = tmp_path / "rec" / "smoke.json"
    res = _cli([sys.executable, str(ROOT / "benchmarks/distributed/bench_sweep.py"), "--smoke",
                "--work", str(tmp_path / "work"), "--record", str(record)])
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    rec = json.loads(record.read_text())
    assert rec["torchrun"]["backend"] == "gloo" and rec["nproc"] == 2 and rec["machine"]["git_sha"]
    assert rec["records_match"]["identical"] and rec["one_process"]["samples"] == rec["torchrun"]["samples"] == 18
    assert all(r["status"] == "complete" and len(r["rank_wall_s"]) == 2 for r in rec["torchrun"]["runs"].values())
    assert rec["speedup"] > 0 and rec["target"] == 1.8


def _group(rank, said_by_others):
    """A Group whose all_gather returns what the other ranks 'said' (no process group needed)."""
    g = object.__new__(distributed.Group)
    g.ranks = distributed.Ranks(rank, len(said_by_others), rank)
    g.all_gather = lambda mine: [mine if r == rank else s for r, s in enumerate(said_by_others)]
    return g


def test_agreed_stops_every_rank_when_one_fails():
    from ramba.errors import BadInputError, RambaEvalError
    assert _group(0, [None, None]).agreed(lambda: 42) == 42
    with pytest.raises(RambaEvalError, match="rank 1: out of memory"):     # rank 0 is fine, rank 1 is not
        _group(0, [None, "out of memory"]).agreed(lambda: 42)

    def bad():
        raise BadInputError("no such task")
    with pytest.raises(BadInputError, match="no such task"):              # a rank's own error, as it was
        _group(1, ["other", None]).agreed(bad)
