"""The reports in a real browser: headless Chromium (Debian's `chromium` package; `.ci/run` installs it) renders
report.html, compare.html and history.html; every image must decode, nothing may overflow the page, and no
U+FFFD may show. Skipped, saying why, where no Chromium is installed."""
import pytest

from ramba.reports.browser import find_chromium, inspect, screenshot
from ramba.reports.compare_render import write_comparison
from ramba.reports.history import write_history
from ramba.reports.render import write_report

from .fixtures import make_run

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here: `apt-get install chromium` (Debian) "
                                                         "or set $CHROMIUM; .ci/run installs it")


def _check(page, images):
    c = inspect(page, CHROMIUM)
    assert c.images == images and c.broken == [], c
    assert c.overflowing == [] and c.scroll_width <= c.client_width, c  # no horizontal scrolling
    assert c.replacement_chars == 0, c
    return c


def test_report_renders_with_every_image(tmp_path):
    base = make_run(tmp_path / "base", {1024: 1.0, 4096: 1.0, 16384: 1.0}, n=4, seed=1)
    run = make_run(tmp_path / "run", {1024: 0.9, 4096: 0.5, 16384: 0.1}, n=4, seed=2)   # wrong answers, cut UTF-8
    paths = write_report(run, baseline=base)
    c = _check(paths["html"], images=5)  # accuracy, heatmap, throughput, memory, regression
    png = screenshot(paths["html"], tmp_path / "report.png", CHROMIUM, height=c.height)
    assert png.stat().st_size > 50_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_and_history_render(tmp_path):
    base = make_run(tmp_path / "base", {1024: 1.0, 4096: 1.0}, n=4, seed=1)
    new = make_run(tmp_path / "new", {1024: 1.0, 4096: 0.25}, n=4, seed=2)
    _check(write_comparison(base, new).paths["html"], images=2)
    _check(write_history([str(base), str(new)], tmp_path / "h")["html"], images=3)
