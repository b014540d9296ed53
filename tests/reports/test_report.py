"""Reports from fixture records: Wilson intervals, tables, plots, self-contained HTML, baseline flags."""
import pytest
from scipy.stats import binomtest

from ramba.errors import BadInputError
from ramba.reports.load import load_results
from ramba.reports.render import write_report
from ramba.reports.stats import accuracy_table, compare, wilson

from .fixtures import make_run


@pytest.mark.parametrize("k,n", [(0, 5), (5, 5), (3, 10), (17, 40), (1, 1)])
def test_wilson_matches_scipy(k, n):
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson(k, n)
    assert abs(lo - ref.low) < 1e-9 and abs(hi - ref.high) < 1e-9  # same closed form, float rounding only


def test_report_files(tmp_path):
    run = make_run(tmp_path / "run", {1024: 0.9, 4096: 0.5, 16384: 0.2})
    paths = write_report(run)
    html = paths["html"].read_text()
    assert html.count("<img") == 4 and html.count("data:image/png;base64,") == 4
    assert "http" not in html.split("<body>")[1]  # nothing fetched from elsewhere
    md = paths["md"].read_text()
    assert "## Accuracy by length" in md and "| 16K |" in md and "95% CI" in md
    _, df = load_results(run)
    acc = accuracy_table(df, ["convention", "length"])
    row = acc[(acc.convention == "generated") & (acc.length == 4096)].iloc[0]
    assert f"{row.acc:.1%}" in md and f"{row.k}/{row.n}" in md


def test_baseline_flags_only_separated_cells(tmp_path):
    base = make_run(tmp_path / "base", {1024: 1.0, 4096: 1.0}, n=10, seed=1)
    now = make_run(tmp_path / "now", {1024: 1.0, 4096: 0.0}, n=10, seed=2)
    _, a = load_results(now)
    _, b = load_results(base)
    cmp = compare(accuracy_table(a, ["convention", "length"]), accuracy_table(b, ["convention", "length"]))
    flags = {(r.convention, r.length): r.flag for r in cmp.itertuples()}
    assert flags[("generated", 1024)] == "" and flags[("generated", 4096)] == "regression"
    paths = write_report(now, baseline=base, out_dir=tmp_path / "rep")
    assert paths["regressions"] == 2  # 4096 in both conventions
    assert (tmp_path / "rep" / "plots" / "regression_vs_baseline.png").stat().st_size > 5000
    assert "REGRESSION" in paths["md"].read_text()


def test_not_a_results_folder(tmp_path):
    with pytest.raises(BadInputError, match="not a results folder"):
        write_report(tmp_path)
    assert not (tmp_path / "plots").exists()


def test_torn_tail_is_ignored_when_reading(tmp_path):
    run = make_run(tmp_path / "run", {1024: 0.5}, n=2)
    raw = (run / "records.jsonl").read_bytes()
    (run / "records.jsonl").write_bytes(raw + b'{"sample_id": "cut')
    _, df = load_results(run)
    assert len(df) == len(raw.splitlines())
    assert (run / "records.jsonl").read_bytes().endswith(b"cut")  # reading never modifies a results folder
