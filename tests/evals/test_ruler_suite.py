"""`ramba-eval ruler`: one run per task in a suite folder, a task x length report with partial scores."""
import json

import pytest

from .cli_helpers import run_cli as _cli



def test_ruler_verb_runs_tasks_and_reports(tmp_path, capsys):
    out = tmp_path / "suite"
    code, so, se = _cli(["ruler", "--tasks", "niah_single_1,ruler_vt", "--length", "1K,2K", "--depths", "1",
                         "--samples", "1", "--model", "dummy", "--out", str(out), "--no-progress"], capsys)
    assert code == 0, se
    suite = json.loads((out / "suite.json").read_text())
    assert suite["tasks"] == ["niah_single_1", "vt"]
    for t in suite["tasks"]:
        assert len((out / t / "records.jsonl").read_text().splitlines()) == 2 * 2   # 2 lengths x 2 conventions
        assert (out / t / "report.md").is_file()
    md = (out / "report.md").read_text()
    assert "mean score" in md and "| vt | 2K |" in md and "suite_heatmap.png" in md
    (out / "report.md").unlink()
    code, so, se = _cli(["report", str(out)], capsys)   # `report` reads a suite folder too
    assert code == 0 and (out / "report.md").is_file(), se
    # a rerun resumes: nothing new is appended
    code, _, se = _cli(["ruler", "--tasks", "niah_single_1,vt", "--length", "1K,2K", "--depths", "1", "--samples",
                        "1", "--model", "dummy", "--out", str(out), "--no-progress", "--no-report"], capsys)
    assert code == 0 and len((out / "vt" / "records.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize("tasks,mention", [("niah_single_9", "unknown RULER task"), ("vt,vt", "twice")])
def test_bad_ruler_tasks(tmp_path, capsys, tasks, mention):
    code, _, err = _cli(["ruler", "--tasks", tasks, "--model", "dummy", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and err.startswith("error: ") and mention in err and not (tmp_path / "x").exists()


def test_dry_run_plans_every_task(tmp_path, capsys):
    code, out, _ = _cli(["ruler", "--tasks", "niah_multikey_2,vt", "--length", "4K..1M", "--model", "dummy",
                         "--dry-run"], capsys)
    assert code == 0 and "niah_multikey_2" in out and "vt" in out
