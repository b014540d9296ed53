#!/usr/bin/env bash
# The committed report example, reports/examples/planted-regression/: what the CI gate shows when a backend gets
# worse. The CI suite's passkey run with half of its samples corrupted (RAMBA_EVAL_FAULT=corrupt_logits:0.5),
# reported against the committed baseline, compared, and rendered in headless Chromium (screenshots).
#   bash benchmarks/ci/make_example.sh            # needs ramba-eval installed and Debian's chromium
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

EX=reports/examples/planted-regression
RUN=$(mktemp -d)
trap 'rm -rf "$RUN"' EXIT
RAMBA_EVAL_FAULT=corrupt_logits:0.5 ramba-eval run configs/ci-suite.yaml --only passkey --out "$RUN" --no-progress
rm -rf "$EX"
mkdir -p "$EX"
ramba-eval report "$RUN/passkey" --baseline reports/baselines/ci-suite/passkey --out "$EX" || true   # exit 1: it regressed
ramba-eval compare reports/baselines/ci-suite "$RUN" --tasks passkey --out "$EX/compare" || true
python - "$EX" <<'PY'
import sys
from pathlib import Path
from ramba.reports.browser import inspect, screenshot
ex = Path(sys.argv[1])
from PIL import Image
for page in (ex / "report.html", ex / "compare" / "compare.html"):
    check = inspect(page)
    assert check.images > 0 and not check.broken and not check.overflowing and not check.replacement_chars, check
    print(f"{page}: {check.images} images, all loaded, nothing overflows")
png = screenshot(ex / "report.html", ex / "report.png", width=1100)
Image.open(png).convert("RGB").quantize(256).save(png, optimize=True)  # a third of the size, same look
print(f"screenshot: {png}")
PY
# report.html embeds its plots: the Markdown report's copies are not kept; compare.md keeps its two plots.
rm -rf "$EX/plots" "$EX/report.md" "$EX/compare/compare.json" "$EX/compare/compare.html"
du -sh "$EX"
