"""What the browser showed in report.html, fixed and pinned: heatmap labels and text contrast, the regression
plot's legend, the GPU column on CPU, replacement characters, and a killed run's status."""
import json

import pytest

from ramba.reports import plots
from ramba.reports.render import shown_text, write_report

from .fixtures import make_run


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions draw, kept open for inspection (they are closed when saved)."""
    kept = []
    save = plots._save

    def keep(fig, path, tight=True):
        kept.append(fig)
        fig.savefig(path, dpi=50)
        return path
    monkeypatch.setattr(plots, "_save", keep)
    yield kept
    import matplotlib.pyplot as plt
    for f in kept:
        plt.close(f)
    assert save is not None


def _fig_with_title(figures, word):
    return next(f for f in figures if any(word in ax.get_title() for ax in f.axes))


def test_heatmap_has_one_depth_label_and_readable_text(tmp_path, figures):
    write_report(make_run(tmp_path / "r", {1024: 0.0, 2048: 0.5, 4096: 1.0}, n=4))
    heat = _fig_with_title(figures, "teacher_forced")
    panels = [ax for ax in heat.axes if ax.get_title()]
    assert [bool(ax.get_ylabel()) for ax in panels] == [True, False]  # the second panel's label overlapped the first
    cmap = plots.matplotlib.colormaps["RdYlGn"]
    for ax in panels:
        for t in ax.texts:
            acc = float(t.get_text().split("%")[0]) / 100
            assert t.get_color() == plots.text_color(cmap(acc))
    assert plots.text_color(cmap(0.0)) == "white" and plots.text_color(cmap(1.0)) == "white"  # dark ends
    assert plots.text_color(cmap(0.5)) == "black"                                              # light middle


def _regression_legend(figures) -> list[str]:
    """Legend entries of the regression plot (the figure whose legend has a `baseline` entry)."""
    for f in figures:
        labels = [t.get_text() for ax in f.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        if "baseline" in labels:
            return labels
    raise AssertionError("no regression plot drawn")


def test_regression_legend_only_when_something_is_flagged(tmp_path, figures):
    base = make_run(tmp_path / "base", {1024: 1.0, 4096: 1.0}, n=5, seed=1)
    write_report(make_run(tmp_path / "same", {1024: 1.0, 4096: 1.0}, n=5, seed=1), baseline=base)
    labels = _regression_legend(figures)
    assert not any("noise band" in x or "overlap" in x for x in labels), labels
    figures.clear()
    write_report(make_run(tmp_path / "worse", {1024: 1.0, 4096: 0.0}, n=5, seed=2), baseline=base)
    assert "changed beyond the 95% noise band" in _regression_legend(figures)


def test_no_gpu_column_on_cpu_runs(tmp_path):
    md = write_report(make_run(tmp_path / "cpu", {1024: 1.0}, n=2))["md"].read_text()
    assert "peak GPU MiB" not in md and "| 0.0 |" not in md.split("## Throughput")[1].split("##")[0].split("state")[0]
    md = write_report(make_run(tmp_path / "gpu", {1024: 1.0}, n=2, gpu=True))["md"].read_text()
    assert "peak GPU MiB" in md


def test_wrong_answers_show_bytes_not_replacement_characters(tmp_path):
    paths = write_report(make_run(tmp_path / "r", {1024: 0.0}, n=2))
    md, html = paths["md"].read_text(), paths["html"].read_text()
    assert "\ufffd" not in md and "\ufffd" not in html
    assert "'\\xe4'" not in md and "' 1\\xe42'" in md  # the cut byte, escaped, between the digits
    assert shown_text("a\nb\ufffd", None, "hf:x") == "'a\\nb\\ufffd'"


def test_warm_up_is_reported_apart(tmp_path):
    md = write_report(make_run(tmp_path / "r", {1024: 1.0, 2048: 1.0}, n=2))["md"].read_text()
    assert "exclude the untimed warm-up" in md and "0.50 s in all" in md


def test_a_killed_run_is_reported_as_interrupted(tmp_path):
    run = make_run(tmp_path / "r", {1024: 1.0}, n=2, status="running")   # meta says running, nobody holds the lock
    md = write_report(run)["md"].read_text()
    assert "Status **interrupted**" in md and "rerun the same command to resume" in md
    assert json.loads((run / "meta.json").read_text())["status"] == "running"  # the report does not rewrite it
