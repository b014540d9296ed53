"""Per-rank record files: the union of a folder's files is what is done, whatever rank count wrote them; the
merge writes one records.jsonl in the task's order; readers and reports see rank files before the merge."""
import json
import shutil

import pytest

from ramba.evals import merge
from ramba.evals.config import RunConfig
from ramba.evals.records import read_meta, write_meta
from ramba.evals.runner import run

# Timings and memory peaks differ between runs; every other field must be identical.
TIMING = {"prompt_s", "latency_s", "prefill_s", "prefill_tok_s", "peak_gpu_bytes", "peak_host_bytes", "warmup_s"}


def untimed(path):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in open(path)]


def _row(sid, conv, **kw):
    return {"sample_id": sid, "convention": conv, **kw}


def _write(path, rows, tail=b""):
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows) + tail)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """A finished single-process run (the oracle: fast, deterministic) to cut into rank files."""
    cfg = RunConfig(model="oracle", lengths="1K,2K", depths="0,1", samples=2, device="cpu", report=False,
                    out=str(tmp_path_factory.mktemp("single") / "run"))
    return cfg, run(cfg, progress=False)


def test_union_dedupe_order_and_missing(tmp_path):
    order = ["a", "b", "c", "d"]
    _write(tmp_path / "records.jsonl", [_row("b", "generated", v=1), _row("b", "teacher_forced", v=1)])
    _write(tmp_path / "records.rank1.jsonl", [_row("a", "teacher_forced"), _row("a", "generated"),
                                              _row("b", "generated", v=2)], tail=b'{"sample_id": "c", "conv')
    _write(tmp_path / "records.rank10.jsonl", [_row("zz", "generated")])
    _write(tmp_path / "records.rank2.jsonl", [_row("d", "generated")])
    assert [f.name for f in merge.rank_files(tmp_path)] == ["records.rank1.jsonl", "records.rank2.jsonl",
                                                            "records.rank10.jsonl"]
    assert merge.done_conventions(tmp_path) == {"a": {"generated", "teacher_forced"},
                                                "b": {"generated", "teacher_forced"}, "d": {"generated"},
                                                "zz": {"generated"}}
    result = merge.merge_folder(tmp_path, order)
    rows = [json.loads(line) for line in open(tmp_path / "records.jsonl")]
    assert [(r["sample_id"], r["convention"]) for r in rows] == [
        ("a", "generated"), ("a", "teacher_forced"), ("b", "generated"), ("b", "teacher_forced"),
        ("d", "generated"), ("zz", "generated")]          # plan order, conventions in order, strangers last
    assert rows[2]["v"] == 1                              # records.jsonl wins over a rank file's duplicate
    assert result.missing == ("c", "d") and result.rows == 6 and result.removed == ()
    assert len(merge.rank_files(tmp_path)) == 3           # kept until the run is complete
    result = merge.merge_folder(tmp_path, order, remove_rank_files=True)
    assert merge.rank_files(tmp_path) == [] and len(result.removed) == 3 and result.missing == ("c", "d")


def test_torn_rank_file_is_repaired_only_when_asked(tmp_path):
    _write(tmp_path / "records.rank0.jsonl", [_row("a", "generated")], tail=b'{"torn')
    assert len(merge.read_all(tmp_path)) == 1
    assert (tmp_path / "records.rank0.jsonl").read_bytes().endswith(b'{"torn')
    merge.read_all(tmp_path, repair=True)
    assert (tmp_path / "records.rank0.jsonl").read_bytes().endswith(b"}\n")


def test_single_process_resumes_a_folder_of_four_ranks(single, tmp_path):
    """A 4-rank run that lost samples (two of its ranks left no file, one a torn line) resumes in one process;
    the result equals the uninterrupted run and the rank files are folded in."""
    cfg, done = single
    out = tmp_path / "run"
    shutil.copytree(done, out)
    lines = (out / "records.jsonl").read_bytes().splitlines(keepends=True)   # 8 samples x 2 conventions
    (out / "records.jsonl").unlink()
    (out / "records.rank0.jsonl").write_bytes(b"".join(lines[8:12] + lines[0:2]))
    (out / "records.rank3.jsonl").write_bytes(b"".join(lines[14:16]) + lines[4][:40])
    meta = read_meta(out)
    write_meta(out, {**meta, "status": "interrupted", "missing": ["x"], "distributed": {"world_size": 4}})
    run(cfg.replace(out=str(out)), progress=False)
    assert untimed(out / "records.jsonl") == untimed(done / "records.jsonl")
    assert merge.rank_files(out) == []
    meta = read_meta(out)
    assert meta["status"] == "complete" and "missing" not in meta and "distributed" not in meta


def test_reports_read_rank_files_and_list_missing_samples(single, tmp_path):
    """Rank 0 killed before its merge: the report still sees every rank's rows, and names what is missing."""
    from ramba.reports.load import load_results
    from ramba.reports.render import write_report
    _, done = single
    out = tmp_path / "run"
    shutil.copytree(done, out)
    lines = (out / "records.jsonl").read_bytes().splitlines(keepends=True)
    (out / "records.jsonl").unlink()
    (out / "records.rank0.jsonl").write_bytes(b"".join(lines[:6]))
    (out / "records.rank1.jsonl").write_bytes(b"".join(lines[6:12]))
    missing = sorted({json.loads(x)["sample_id"] for x in lines[12:]})
    write_meta(out, {**read_meta(out), "status": "interrupted", "missing": missing,
                     "distributed": {"launcher": "torchrun", "world_size": 2, "backend": "gloo",
                                     "plan_imbalance": 1.0, "ranks": None}})
    _, df = load_results(out)
    assert len(df) == 12
    md = write_report(out)["md"].read_text()
    assert "Missing samples (2)" in md and all(m in md for m in missing) and "2 ranks" in md
