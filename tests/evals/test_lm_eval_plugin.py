"""The lm-eval adapter: its three request types over a Backend, and the `ramba-eval lm-eval` passthrough."""
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from ramba.evals.backends import load_backend


def test_requests_over_the_dummy_backend():
    from ramba.evals.lm_eval_plugin import RambaLM
    lm = RambaLM(backend=load_backend("dummy", None, "cpu"), segment=5)
    text = "a fresh sentence, long enough for three segments"
    (ll, greedy), = lm.loglikelihood([SimpleNamespace(args=(text, " ok"))])
    # independent check: feed the context in one piece, then step through the continuation
    be = load_backend("dummy", None, "cpu")
    logits, want = be.consume(list(text.encode())), 0.0
    for i, t in enumerate(b" ok"):
        want += float(torch.log_softmax(logits, -1)[t])
        logits = be.step(t)
    assert abs(ll - want) < 1e-4 and isinstance(greedy, bool)
    (roll,) = lm.loglikelihood_rolling([SimpleNamespace(args=("xyz",))])
    assert roll < 0
    (gen,) = lm.generate_until([SimpleNamespace(args=(text, {"until": ["\n"], "max_gen_toks": 7}))])
    assert isinstance(gen, str) and "\n" not in gen and len(gen.encode("utf-8", "replace")) <= 7 * 3


def test_passthrough_cli_scores_a_local_task(tmp_path):
    """`ramba-eval lm-eval run --model ramba` on a local 4-row task: the oracle copies each code (100%)."""
    rows = [{"ctx": f"The code is {i}{i + 3}{i + 1}. Again: the code is", "ans": f" {i}{i + 3}{i + 1}"}
            for i in range(1, 5)]
    (tmp_path / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "toy.yaml").write_text(
        "task: ramba_toy\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {tmp_path / 'toy.jsonl'}\ntest_split: test\noutput_type: generate_until\n"
        'doc_to_text: "{{ctx}}"\ndoc_to_target: "{{ans}}"\n'
        'generation_kwargs:\n  until: ["."]\n  max_gen_toks: 8\nmetric_list:\n  - metric: exact_match\n')
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "ds")}
    r = subprocess.run([sys.executable, "-m", "ramba.evals.cli", "lm-eval", "run", "--model", "ramba",
                        "--model_args", "model=oracle", "--tasks", "ramba_toy", "--include_path", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"\|ramba_toy\|.*\|exact_match\|.\s*\|\s*1(\.0+)?\|", r.stdout), r.stdout[-2000:]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_lm_eval_default_cuda_device_falls_back_to_cpu():
    from ramba.evals.lm_eval_plugin import _device
    assert _device("cuda:0") == "cpu" and _device(None) == "cpu" and _device("cpu") == "cpu"
