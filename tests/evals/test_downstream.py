"""The downstream suites offline: perplexity vs context length and multiple choice, CLI to report."""
import json
import math

import pytest

from .cli_helpers import run_cli as _cli



def test_ppl_on_own_file_matches_token_by_token(tmp_path, capsys):
    from ramba.evals.backends import LoglikelihoodMixin, load_backend
    text = "".join(f"Line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(40))
    (tmp_path / "book.txt").write_text(text)
    out = tmp_path / "ppl"
    code, _, err = _cli(["ppl", "--model", "dummy", "--corpus", str(tmp_path / "book.txt"), "--length", "64,128",
                         "--windows", "2", "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    rows = [json.loads(x) for x in (out / "ppl.jsonl").read_text().splitlines()]
    assert [(r["mode"], r["context_length"]) for r in rows] == [("nonoverlapping", 64), ("nonoverlapping", 128),
                                                                 ("sliding", 64), ("sliding", 128)]
    ids = list(text.encode())
    be = load_backend("dummy", None, "cpu")
    half = len(ids) // 2   # 2 windows at evenly spaced starts
    ll = sum(LoglikelihoodMixin.loglikelihood(be, ids[a:a + 1], ids[a + 1:a + 64])[0] for a in (0, half))
    assert rows[0]["tokens_scored"] == 126 and rows[0]["ppl"] == pytest.approx(math.exp(-ll / 126), rel=1e-4)
    assert rows[2]["tokens_scored"] == 64    # 2 windows x the last 32 tokens
    assert "ppl_vs_context.png" in (out / "report.md").read_text()
    (out / "report.md").unlink()
    assert _cli(["report", str(out)], capsys)[0] == 0 and (out / "report.md").is_file()
    code, _, err = _cli(["ppl", "--model", "dummy", "--corpus", str(tmp_path / "book.txt"), "--length", "2K",
                         "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "corpus has" in err and not (tmp_path / "x").exists()


def test_packaged_corpus_is_the_kjv():
    from ramba.tasks.corpus import load_corpus
    text = load_corpus("kjv")
    assert len(text) > 4_000_000 and text.startswith("The First Book of Moses") and "Let there be light" in text


def test_multiple_choice_by_loglikelihood(tmp_path, capsys):
    from ramba.evals.backends import LoglikelihoodMixin, load_backend
    items = [{"context": "The code is 4242. Again, the code is", "choices": [" 4242", " 1717"], "label": 0},
             {"question": "Colours: red, green. The first colour was", "choices": [" blue", " red"], "label": " red"}]
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    out = tmp_path / "mc"
    code, _, err = _cli(["mc", str(tmp_path / "mc.jsonl"), "--model", "dummy", "--out", str(out), "--no-progress"],
                        capsys)
    assert code == 0, err
    rows = [json.loads(x) for x in (out / "mc.jsonl").read_text().splitlines()]
    be = load_backend("dummy", None, "cpu")
    for it, r in zip(items, rows):
        ctx = (it.get("context") or it["question"]).encode()
        want = [LoglikelihoodMixin.loglikelihood(be, list(ctx), list(c.encode()))[0] for c in it["choices"]]
        assert r["loglikelihoods"] == pytest.approx(want, abs=1e-4) and r["label"] == 0 + (it is items[1])
    meta = json.loads((out / "mc_meta.json").read_text())
    assert meta["acc"] == sum(r["correct"] for r in rows) / 2 and "mc_accuracy.png" in (out / "report.md").read_text()
