"""lm-eval both ways, offline on CPU: its own RULER task on our model, our model on each request type, and an
`hf` model on our exported tasks; every score is checked against what our own code computes on the same samples."""
import json
from pathlib import Path

import pytest

from ramba.evals.defaults import REPO_ROOT

CKPT = REPO_ROOT / "checkpoints" / "ramba-tiny"
pytestmark = pytest.mark.skipif(not (CKPT / "model.safetensors").is_file(), reason="needs the shipped checkpoint")


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "ds"))


@pytest.fixture(scope="module")
def ramba_lm():
    from ramba.evals.lm_eval_plugin import RambaLM
    return RambaLM(model=f"ramba:{CKPT}", tokenizer=str(CKPT), device="cpu", progress=False)


def _evaluate(model, tasks, metadata=None, include=True, limit=None, **kw):
    import lm_eval
    from lm_eval.tasks import TaskManager
    from ramba.evals.lm_eval_plugin import lm_eval_task_dir
    meta = dict(p.split("=", 1) for p in kw.get("model_args", "").split(",") if "=" in p) | (metadata or {})
    tm = TaskManager(include_path=lm_eval_task_dir() if include else None, metadata=meta)  # as lm-eval's CLI does
    return lm_eval.simple_evaluate(model=model, tasks=tasks, task_manager=tm, limit=limit, log_samples=True,
                                   device="cpu", bootstrap_iters=0, **kw)


def _runner_generation(backend, context: str, answer_ids):
    """Our runner's path on a context: one segmented prefill, then the one pass of both conventions."""
    from ramba.evals.scoring import one_pass
    ids = backend.tokenizer.encode(context)
    backend.reset()
    for s in range(0, len(ids), 1 << 16):
        logits = backend.consume(ids[s:s + (1 << 16)])
    return backend.tokenizer.decode(one_pass(backend, logits, answer_ids).generated)


def test_lm_evals_own_niah_single_1_at_4k(ramba_lm):
    from ramba.tasks.metrics import string_match_all
    out = _evaluate(ramba_lm, ["niah_single_1"], {"tokenizer": str(CKPT), "max_seq_lengths": [4096]},
                    include=False, limit=1)
    got = out["results"]["niah_single_1"]["4096,none"]
    ours = []
    for s in out["samples"]["niah_single_1"]:
        ctx = s["arguments"][0][0]
        refs = s["doc"]["outputs"]
        pred = _runner_generation(ramba_lm.backend, ctx, ramba_lm.backend.tokenizer.encode(" " + refs[0]))
        assert s["resps"][0][0].startswith(pred)   # same greedy path as lm-eval's generate_until
        ours.append(string_match_all([pred], [refs]) / 100)
    assert got == pytest.approx(sum(ours) / len(ours)) and got == 1.0


def test_our_model_on_each_request_type(ramba_lm, tmp_path):
    """generate_until (our passkey), loglikelihood (a local multiple-choice task), rolling (a local text task)."""
    import math
    from ramba.evals.backends import LoglikelihoodMixin
    from ramba.evals.lm_scoring import Span, score_spans
    texts = ["And God said, Let there be light: and there was light.", "In the beginning was the Word."]
    mc = [{"q": "The pass key is 31415. Remember it. What is the pass key? The pass key is",
           "choices": [" 31415", " 27182", " 16180"], "label": 0},
          {"q": "The sky is blue. The grass is", "choices": [" green", " purple"], "label": 0}]
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mc))
    (tmp_path / "txt.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    (tmp_path / "mc.yaml").write_text(
        f"task: t_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tmp_path / 'mc.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: '{{choices}}'\n"
        "doc_to_target: label\ntarget_delimiter: ''\nmetric_list:\n  - metric: acc\n")
    (tmp_path / "txt.yaml").write_text(
        f"task: t_txt\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tmp_path / 'txt.jsonl'}\n"
        "test_split: test\noutput_type: loglikelihood_rolling\ndoc_to_text: ''\ndoc_to_target: '{{text}}'\n"
        "metric_list:\n  - metric: bits_per_byte\n")
    import lm_eval
    from lm_eval.tasks import TaskManager
    from ramba.evals.lm_eval_plugin import lm_eval_task_dir
    tm = TaskManager(include_path=[lm_eval_task_dir(), str(tmp_path)],
                     metadata={"tokenizer": str(CKPT), "max_seq_lengths": [1024], "depths": 1, "num_samples": 1})
    out = lm_eval.simple_evaluate(model=ramba_lm, tasks=["t_mc", "t_txt", "ramba_passkey"], task_manager=tm,
                                  log_samples=True, device="cpu", bootstrap_iters=0)
    r = out["results"]
    be = ramba_lm.backend
    enc = be.tokenizer.encode
    # multiple choice: our token-by-token log-likelihoods pick the same answers
    acc = sum(max(range(len(d["choices"])), key=lambda i: LoglikelihoodMixin.loglikelihood(
        be, enc(d["q"]), enc(d["choices"][i]))[0]) == d["label"] for d in mc) / len(mc)
    assert r["t_mc"]["acc,none"] == pytest.approx(acc)
    # rolling: bits per byte from our own span scorer
    lls = [s.logprob for s in score_spans(ramba_lm.spans, [Span(tuple(ramba_lm.prefix_ids), tuple(enc(t)))
                                                           for t in texts], progress=False)]
    bpb = -sum(lls) / sum(len(t.encode()) for t in texts) / math.log(2)
    assert r["t_txt"]["bits_per_byte,none"] == pytest.approx(bpb, rel=1e-6)
    # generation: our exported passkey at 1K, scored as our runner scores it
    assert r["ramba_passkey"]["score,none"] == 1.0 and r["ramba_passkey"]["1024,none"] == 1.0


def test_hf_model_on_our_exported_tasks_equals_our_runner(tmp_path):
    from ramba.evals import defaults
    from ramba.evals.config import RunConfig
    from ramba.evals.runner import run
    from ramba.evals.records import read_records
    tiny = defaults.ensure_tiny_hf_model()
    grid = {"max_seq_lengths": [1024], "depths": [0.5], "num_samples": 2, "seed": 3}
    out = _evaluate("hf", ["ramba_passkey", "ramba_vt"], grid, model_args=f"pretrained={tiny},dtype=float32")
    for task in ("passkey", "vt"):
        res = run(RunConfig(task=task, lengths="1K", depths=[0.5], samples=2, seed=3, model=f"hf:{tiny}",
                            device="cpu", out=str(tmp_path / task), report=False), progress=False)
        ours = {r["sample_id"]: r for r in read_records(Path(res) / "records.jsonl") if r["convention"] == "generated"}
        theirs = out["samples"][f"ramba_{task}"]
        assert len(theirs) == len(ours) == 2
        for s in theirs:
            mine = ours[s["doc"]["sample_id"]]
            assert s["score"] == pytest.approx(mine["score"])
            assert s["resps"][0][0].startswith(mine["prediction"])
        mean = sum(r["score"] for r in ours.values()) / 2
        assert out["results"][f"ramba_{task}"]["score,none"] == pytest.approx(mean)
