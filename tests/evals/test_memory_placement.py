"""Chunk-memory placement through the runner and CLI (issue 10): gpu/host/disk give the same records, a run
resumed on another placement continues the same folder with the same records, a request that fits no tier
fails at once (one line, exit 2, nothing written), and no memory file is left behind."""
import pytest

from ramba.evals.cli import main
from ramba.evals.config import RunConfig
from ramba.evals.records import read_meta, read_records
from ramba.evals.runner import run

MODEL = "ramba:checkpoints/ramba-tiny"
BASE = dict(model=MODEL, lengths="700", depths="0.3,0.8", samples=1, seed=3, device="cpu", segment=256,
            report=False)
KEYS = ("sample_id", "convention", "prediction_ids", "correct", "achieved_length")


def _key_rows(out):
    return sorted(tuple(str(r[k]) for k in KEYS) for r in read_records(out / "records.jsonl"))


@pytest.fixture(scope="module")
def gpu_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "r"
    run(RunConfig(**BASE, memory="gpu", out=str(out)), progress=False)
    assert read_meta(out)["backend"]["memory"] == "gpu"
    return _key_rows(out)


@pytest.mark.parametrize("memory", ["host", "disk"])
def test_placement_gives_the_same_records(memory, gpu_rows, tmp_path):
    out = tmp_path / "r"
    run(RunConfig(**BASE, memory=memory, out=str(out)), progress=False)
    assert _key_rows(out) == gpu_rows
    meta = read_meta(out)
    assert meta["backend"]["memory"] == memory and meta["config"]["memory"] == memory
    assert not (out / "memory").exists()                   # the disk folder is gone at the end


def test_resume_on_another_placement(gpu_rows, tmp_path):
    """Interrupted (last sample's rows cut) on host, resumed on disk: same folder, same records."""
    out = tmp_path / "r"
    run(RunConfig(**BASE, memory="host", out=str(out)), progress=False)
    path = out / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + lines[2][:40])   # one sample done, a torn line of the next
    run(RunConfig(**BASE, memory="disk", out=str(out)), progress=False)
    assert _key_rows(out) == gpu_rows
    assert read_meta(out)["sessions"] == 2


def test_memory_options_do_not_change_old_run_ids():
    a = RunConfig(**BASE)
    assert "memory" not in a.hashed_dict() and "dtype" not in a.hashed_dict()
    assert RunConfig(**BASE, memory="disk").run_id == a.run_id
    b = RunConfig(**BASE, memory_dtype="bf16")
    assert b.memory_dtype == "bfloat16" and b.run_id != a.run_id


def test_budget_check_fails_before_writing(tmp_path, capsys, monkeypatch):
    import ramba.budget as budget
    monkeypatch.setattr(budget, "free_bytes", lambda device, memory_dir=None: {"gpu": 1 << 20, "host": 1 << 20,
                                                                                "disk": 1 << 20})
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as e:
        main(["passkey", "--model", MODEL, "--length", "64M", "--samples", "1", "--depths", "0.5",
              "--device", "cpu", "--out", str(out), "--no-progress", "--no-report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for word in ("fits no tier", "K/V", "free: GPU", "host", "disk", "--memory-dtype"):
        assert word in err[0], err[0]
    assert not out.exists()


def test_explicit_placement_that_does_not_fit(tmp_path, capsys, monkeypatch):
    import ramba.budget as budget
    monkeypatch.setattr(budget, "free_bytes", lambda device, memory_dir=None: {"gpu": 1 << 40, "host": 1 << 40,
                                                                                "disk": 1 << 20})
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as e:
        main(["passkey", "--model", MODEL, "--length", "64M", "--memory", "disk", "--out", str(out),
              "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and "disk placement" in err[-1] and "--memory auto" in err[-1]
    assert not out.exists()


def test_auto_chooses_by_free_memory():
    from ramba import budget
    from ramba.config import RambaConfig
    cfg = RambaConfig.from_preset("tiny")
    G = 1 << 30
    kw = dict(itemsize=4, segment=1 << 16)
    assert budget.choose(cfg, 1 << 26, "auto", {"gpu": 140 * G, "host": 100 * G, "disk": 60 * G}, **kw)[0] == "gpu"
    p, need, line = budget.choose(cfg, 1 << 26, "auto", {"gpu": 8 * G, "host": 100 * G, "disk": 60 * G}, **kw)
    assert p == "host" and need.device < 5 * G and "auto" in line and "K/V 16.0 GiB" in line
    assert budget.choose(cfg, 1 << 26, "auto", {"gpu": 8 * G, "host": 8 * G, "disk": 60 * G}, **kw)[0] == "disk"
    # bf16 halves it
    assert budget.chunk_memory_bytes(cfg, 1 << 26, itemsize=2)[0] * 2 == budget.chunk_memory_bytes(cfg, 1 << 26)[0]


@pytest.mark.parametrize("args,mention", [(["--memory", "ssd"], "memory must be one of"),
                                          (["--memory-dtype", "int3"], "unknown dtype 'int3'"),
                                          (["--dtype", "fp8"], "unknown dtype")])
def test_bad_memory_options(tmp_path, capsys, args, mention):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as e:
        main(["passkey", "--model", "oracle", "--length", "1K", "--out", str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and mention in err[0], err
    assert not out.exists()


def test_a_prompt_fed_chunk_by_chunk_runs_retrieval_once():
    """The runner feeds a prompt chunk by chunk (backends.feed_prompt): RAMba takes every chunk but the last
    through consume_more, so an offloaded memory is gathered from once per prompt, and the last token's logits
    equal those of one consume() of the whole prompt (and of the old chunk-by-chunk consume path)."""
    import numpy as np
    import torch
    from ramba.errors import BadInputError
    from ramba.evals.backends import feed_prompt, load_backend
    be = load_backend("ramba", "checkpoints/ramba-tiny", device="cpu", memory="host", segment=700)
    ids = np.random.default_rng(0).integers(0, 256, 3000)
    chunks = [ids[s:s + 700] for s in range(0, 3000, 700)]
    results = {}
    for how in ("feed_prompt", "whole", "consume-each"):
        be.reset(prompt_length=len(ids))
        if how == "feed_prompt":
            results[how] = feed_prompt(be, chunks)
        elif how == "whole":
            results[how] = be.consume(ids)
        else:
            for c in chunks:
                results[how] = be.consume(c)
        results[how + "-gathers"] = be.state.memory.gathers
    assert results["feed_prompt-gathers"] == 1 and results["whole-gathers"] == 1
    assert results["consume-each-gathers"] == len(chunks)
    # fp32; the paths differ in how the lower stack is batched (summation order only)
    assert (results["feed_prompt"] - results["whole"]).abs().max() <= 1e-4
    assert (results["feed_prompt"] - results["consume-each"]).abs().max() <= 1e-4
    be.reset(prompt_length=len(ids))
    be.consume_more(chunks[0])
    with pytest.raises(BadInputError, match="consume_more"):
        be.step(1)
    be.close()
    assert torch.isfinite(results["whole"]).all()
