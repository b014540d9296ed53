"""End to end on the real passkey task: the oracle reaches 100% in both conventions, runs resume after a kill
with no duplicates, and Ctrl-C leaves a valid folder."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from ramba.evals.config import RunConfig
from ramba.evals.records import read_meta, read_records
from ramba.evals.runner import run

# A backend that takes a while per sample, so a subprocess can be interrupted mid-run.
SLOW = """
import sys, time
from ramba.evals.backends import register_backend
from ramba.evals.backend_dummy import OracleBackend
class Slow(OracleBackend):
    name = "slow"
    def consume(self, ids):
        time.sleep(0.25)
        return super().consume(ids)
register_backend("slow")(Slow)
"""


def _rows(out):
    return read_records(out / "records.jsonl")


def test_oracle_scores_100_percent_and_report(tmp_path):
    cfg = RunConfig(model="oracle", lengths="1K,2K", depths="0,0.5,1", samples=2, seed=3, segment=700,
                    out=str(tmp_path / "r"))
    out = run(cfg, progress=False)
    rows = _rows(out)
    assert len(rows) == 2 * 3 * 2 * 2
    assert all(r["correct"] for r in rows), [r for r in rows if not r["correct"]][:1]
    assert Counter(r["convention"] for r in rows) == {"generated": 12, "teacher_forced": 12}
    assert all(r["achieved_length"] == r["length"] for r in rows)  # exact-length prompts, fed in 700-token segments
    meta = read_meta(out)
    assert meta["status"] == "complete" and meta["config_hash"] == cfg.config_hash()
    assert meta["schema_version"] == 2 and meta["packages"]["torch"]

    from ramba.reports.render import write_report
    paths = write_report(out)
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == 4 and "src=\"plots/" not in html  # self-contained
    md = paths["md"].read_text()
    for p in paths["plots"]:
        assert p.stat().st_size > 5000 and f"plots/{p.name}" in md
    assert "| generated | 100.0% |" in md


def test_dummy_run_is_reproducible(tmp_path):
    cfg = RunConfig(model="dummy", lengths="1K", depths="2", samples=2, seed=5)
    a = run(cfg.replace(out=str(tmp_path / "a")), progress=False)
    b = run(cfg.replace(out=str(tmp_path / "b")), progress=False)
    key = lambda r: (r["sample_id"], r["convention"], r["prediction_ids"], r["correct"])  # noqa: E731
    assert [key(r) for r in _rows(a)] == [key(r) for r in _rows(b)]


def _start_slow(tmp_path, out):
    code = SLOW + "from ramba.evals.cli import main\nmain(sys.argv[1:])\n"
    args = [sys.executable, "-c", code, "passkey", "--model", "slow", "--length", "1K", "--depths", "6",
            "--samples", "2", "--seed", "1", "--out", str(out), "--no-report", "--no-progress"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def _wait_rows(out, n, proc, timeout=90):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if (out / "records.jsonl").exists() and len(_rows(out)) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never got going")


def test_resume_after_kill_has_no_duplicates(tmp_path):
    out = tmp_path / "r"
    proc = _start_slow(tmp_path, out)
    _wait_rows(out, 4, proc)
    proc.kill()
    proc.wait()
    before = len(_rows(out))
    assert 4 <= before < 24, before  # really mid-run
    with open(out / "records.jsonl", "ab") as f:  # what a write cut by the kill looks like
        f.write(b'{"schema_version":1,"sample_id":"passkey-L1024-d0.')

    from ramba.evals.backend_dummy import OracleBackend
    from ramba.evals.backends import BACKENDS, register_backend
    register_backend("slow")(type("Slow", (OracleBackend,), {"name": "slow"}))
    try:
        cfg = RunConfig(model="slow", lengths="1K", depths="6", samples=2, seed=1, out=str(out), report=False)
        run(cfg, progress=False)
    finally:
        BACKENDS.pop("slow")
    rows = _rows(out)
    keys = Counter((r["sample_id"], r["convention"]) for r in rows)
    assert max(keys.values()) == 1 and len(keys) == 6 * 2 * 2
    assert all(r["correct"] for r in rows)
    assert (out / "records.jsonl").read_bytes().endswith(b"\n")  # the torn tail was cut off
    assert read_meta(out)["sessions"] == 2


def test_ctrl_c_leaves_a_valid_folder(tmp_path):
    out = tmp_path / "r"
    proc = _start_slow(tmp_path, out)
    _wait_rows(out, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "resumes" in err
    assert read_meta(out)["status"] == "interrupted"
    raw = (out / "records.jsonl").read_bytes()
    assert raw.endswith(b"\n") and all(json.loads(l) for l in raw.splitlines())
    assert len(_rows(out)) % 2 == 0  # both conventions of a sample are written together


def test_ramba_backend_through_the_runner(tmp_path):
    """The runner drives the model engineer's RambaBackend (random `tiny` preset) end to end."""
    out = run(RunConfig(model="ramba:tiny", lengths="300", depths="0.5", samples=1, device="cpu", segment=128,
                        out=str(tmp_path / "r")), progress=False)
    rows = _rows(out)
    assert [r["convention"] for r in rows] == ["generated", "teacher_forced"]
    assert rows[0]["achieved_length"] == 300 and rows[0]["state_bytes"] > 0
    assert len(rows[0]["prediction_ids"]) == len(rows[0]["answer_ids"])
    assert "mamba_segment" in read_meta(out)["model_config"]  # reset-aligned inference is recorded


def test_second_writer_is_refused(tmp_path):
    import fcntl
    from ramba.errors import BadInputError
    cfg = RunConfig(model="oracle", lengths="1K", depths="0.5", samples=1, out=str(tmp_path / "r"))
    (tmp_path / "r").mkdir()
    with open(tmp_path / "r" / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what a running ramba-eval holds
        with pytest.raises(BadInputError, match="another ramba-eval run"):
            run(cfg, progress=False)
    assert not (tmp_path / "r" / "records.jsonl").exists()
    run(cfg, progress=False)  # free again once the other writer is gone
    assert len(_rows(tmp_path / "r")) == 2


def test_hf_model_with_its_own_local_tokenizer(tmp_path):
    """An hf folder that ships a tokenizer (trained here with `tokenizers`) is run with that tokenizer by default."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = ["The pass key is 12345. Remember it. What is the grass colour? The sky is blue. " * 3] * 20
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    d = tmp_path / "m"
    d.mkdir()
    tok.save(str(d / "tokenizer.json"))
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)).save_pretrained(d)
    out = run(RunConfig(model=f"hf:{d}", lengths="512", depths="0.5", samples=1, device="cpu",
                        out=str(tmp_path / "r")), progress=False)
    rows = _rows(out)
    assert len(rows) == 2 and rows[0]["achieved_length"] == 512
    assert read_meta(out)["backend"]["tokenizer"] == "hf:m"
    assert tok.decode(rows[0]["answer_ids"]) == rows[0]["answer"]  # ids are this tokenizer's, not bytes


def test_gen_tokens_task_scores_a_preamble_before_the_value(tmp_path):
    """A model that writes "I think" before the value fails the strict convention (len(answer) tokens) and passes
    with gen_tokens "task" (the task's own budget, as RULER scores); teacher forcing is the same in both, and the
    option enters the run id only when set."""
    import torch
    from ramba.evals.backend_dummy import OracleBackend
    from ramba.evals.backends import register_backend

    class Preamble(OracleBackend):
        name = "preamble"
        P = list(b"I think")

        def _token(self, t):
            x = torch.full((self.vocab,), -10.0)
            x[t] = 10.0
            return x

        def consume(self, ids):
            super().consume(ids)
            self._pre = 0
            return self._token(self.P[0])

        def step(self, token):
            self._pre += 1
            if self._pre < len(self.P):
                return self._token(self.P[self._pre])
            if self._pre == len(self.P):      # the preamble is not context: the value follows the prompt itself
                return self._logits()
            return super().step(token)

    register_backend("preamble")(Preamble)
    runs = {}
    for gen in ("answer", "task"):
        cfg = RunConfig(model="preamble", lengths="1K", depths="0.5", samples=3, seed=5, gen_tokens=gen,
                        out=str(tmp_path / gen))
        rows = _rows(run(cfg, progress=False))
        runs[gen] = {c: [r["correct"] for r in rows if r["convention"] == c] for c in ("generated", "teacher_forced")}
        assert read_meta(tmp_path / gen)["gen_tokens"] == gen
        said = "task's own length budget" if gen == "task" else "answer's length"
        from ramba.reports.render import write_report
        write_report(tmp_path / gen)
        assert said in (tmp_path / gen / "report.md").read_text()       # the report says which budget it scored
    assert runs["answer"]["generated"] == [False] * 3 and runs["task"]["generated"] == [True] * 3
    assert runs["answer"]["teacher_forced"] == runs["task"]["teacher_forced"] == [False] * 3
    assert RunConfig(model="oracle").config_hash() == RunConfig(model="oracle", gen_tokens="answer").config_hash()
    assert RunConfig(model="oracle").config_hash() != RunConfig(model="oracle", gen_tokens="task").config_hash()
