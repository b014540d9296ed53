"""`ramba-eval compare`: Newcomb's interval (his published examples), the gate's verdicts inside and beyond the
noise band, refusals (other task, other tokenizer), the PR summary and plots, and `history`."""
import json

import pytest

from ramba.errors import BadInputError
from ramba.evals.cli import main
from ramba.reports.compare import compare_runs
from ramba.reports.history import write_history
from ramba.reports.stats import newcomb

from .fixtures import make_run


@pytest.mark.parametrize("k1,n1,k2,n2,lo,hi", [
    (56, 70, 48, 80, 0.0524, 0.3339),   # Newcomb (1998), Table II, method 10
    (9, 10, 3, 10, 0.1705, 0.8090),
    (6, 7, 2, 7, 0.0582, 0.8062),
    (5, 56, 0, 29, -0.0381, 0.1926),
])
def test_newcomb_matches_the_published_intervals(k1, n1, k2, n2, lo, hi):
    d, l, h = newcomb(k1, n1, k2, n2)
    assert d == pytest.approx(k1 / n1 - k2 / n2)
    assert l == pytest.approx(lo, abs=1e-4) and h == pytest.approx(hi, abs=1e-4)


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def test_inside_the_noise_band_passes_and_a_real_drop_fails(tmp_path, capsys):
    base = make_run(tmp_path / "base", {1024: 1.0, 4096: 1.0}, n=5, seed=1)       # 15 samples per length
    same = make_run(tmp_path / "same", {1024: 1.0, 4096: 1.0}, n=5, seed=1)
    noisy = make_run(tmp_path / "noisy", {1024: 0.93, 4096: 0.93}, n=5, seed=3)   # a sample or two wrong
    worse = make_run(tmp_path / "worse", {1024: 1.0, 4096: 0.4}, n=5, seed=4)
    for new, expect in ((same, 0), (noisy, 0), (worse, 1)):
        code, out, err = _cli(["compare", str(base), str(new), "--out", str(tmp_path / f"c-{new.name}")], capsys)
        assert code == expect, (new.name, out, err)
    c = compare_runs(base, noisy)
    assert (c.cells["k"] < c.cells["n"]).any() and not c.regressions  # it did differ, within the noise
    assert "REGRESSION passkey (generated, length 4K)" in err and "entirely below 0" in err
    assert "regenerate the baseline" in err


def test_pr_summary_plots_and_json(tmp_path, capsys):
    base = make_run(tmp_path / "base", {1024: 1.0, 4096: 1.0}, n=5, seed=1)
    worse = make_run(tmp_path / "worse", {1024: 1.0, 4096: 0.2}, n=5, seed=4)
    code, out, err = _cli(["compare", str(base), str(worse)], capsys)
    assert code == 1
    d = worse / "compare"                      # default: next to the new results
    md = (d / "compare.md").read_text()
    assert md.startswith("# ramba-eval compare: ❌") and "| passkey | generated | 4K |" in md
    assert "Throughput and memory are reported, not gated." in md
    assert (d / "compare_accuracy.png").stat().st_size > 5000 and (d / "compare_efficiency.png").stat().st_size > 5000
    html = (d / "compare.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    j = json.loads((d / "compare.json").read_text())
    assert len(j["regressions"]) >= 2 and {c["flag"] for c in j["cells"]} >= {"", "regression"}


def test_refuses_other_tasks_and_tokenizers(tmp_path):
    base = make_run(tmp_path / "base", {1024: 1.0}, n=2)
    other_task = make_run(tmp_path / "vt", {1024: 1.0}, n=2, task="vt")
    other_tok = make_run(tmp_path / "tok", {1024: 1.0}, n=2, tokenizer="hf:gpt2", fingerprint="other")
    with pytest.raises(BadInputError, match="different tasks"):
        compare_runs(base, other_task)
    with pytest.raises(BadInputError, match="different tokenizers"):
        compare_runs(base, other_tok)
    assert not (other_task / "compare").exists() and not (other_tok / "compare").exists()


def test_suites_pair_by_run_and_notes_say_what_differs(tmp_path):
    for side, p4k, seed in (("base", 1.0, 1), ("new", 1.0, 2)):
        make_run(tmp_path / side / "passkey", {1024: 1.0, 4096: p4k}, n=3, seed=seed)
        make_run(tmp_path / side / "vt", {1024: 0.0}, n=3, seed=seed, task="vt")
    c = compare_runs(tmp_path / "base", tmp_path / "new")
    assert c.tasks == ["passkey", "vt"] and not c.regressions
    assert any("seed differ" in n for n in c.notes)
    only = compare_runs(tmp_path / "base", tmp_path / "new", tasks=["vt"])
    assert only.tasks == ["vt"]
    (tmp_path / "new" / "vt" / "meta.json").unlink()   # a suite missing a run the baseline has
    import shutil
    shutil.rmtree(tmp_path / "new" / "vt")
    with pytest.raises(BadInputError, match="only the baseline has vt"):
        compare_runs(tmp_path / "base", tmp_path / "new")


def test_memory_gate_is_opt_in(tmp_path):
    base = make_run(tmp_path / "base", {1024: 1.0}, n=2, seed=1)
    new = make_run(tmp_path / "new", {1024: 1.0}, n=2, seed=1)
    rows = (new / "records.jsonl").read_text().replace('"state_bytes":524288', '"state_bytes":2097152')
    (new / "records.jsonl").write_text(rows)
    assert not compare_runs(base, new).regressions
    regs = compare_runs(base, new, max_memory_growth=1.5).regressions
    assert regs and "4.0x larger" in regs[0]


def test_history_plots_across_runs(tmp_path, capsys):
    runs = [make_run(tmp_path / f"r{i}", {1024: 1.0 - 0.3 * i, 4096: 0.5}, n=2, seed=i) for i in range(3)]
    code, out, err = _cli(["history", *map(str, runs), "--out", str(tmp_path / "h")], capsys)
    assert code == 0, err
    html = (tmp_path / "h" / "history.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "01aaaaaa" in html  # labelled by git commit
    paths = write_history([str(r) for r in runs], tmp_path / "h2", labels=["a", "b", "c"])
    assert all(p.stat().st_size > 5000 for p in paths["plots"])
    with pytest.raises(BadInputError, match="one per run"):
        write_history([str(runs[0])], tmp_path / "h3", labels=["a", "b"])
