"""Render a report in headless Chromium: check that every image loads and nothing overflows the page, and take a
full-page screenshot. Uses the `chromium` binary alone (Debian's package), no Python driver: a copy of the page
gets a small probe script whose JSON result `--dump-dom` prints after the page's load event."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ramba.errors import RambaEvalError

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const width = document.documentElement.clientWidth;
  const r = {
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    overflowing: Array.from(document.querySelectorAll("table, figure, img, pre, p"))
      .filter(e => e.getBoundingClientRect().right > width + 1).map(e => e.tagName + ":" + (e.alt || "")),
    scroll_width: document.documentElement.scrollWidth, client_width: width,
    height: document.documentElement.scrollHeight,
    replacement_chars: (document.body.innerText.match(/\\uFFFD/g) || []).length,
  };
  const pre = document.createElement("pre");
  pre.id = "ramba-probe";
  pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});
</script>"""


@dataclass(frozen=True)
class PageCheck:
    images: int
    broken: list            # alt texts of images that did not decode
    overflowing: list       # elements wider than the viewport
    scroll_width: int
    client_width: int
    height: int
    replacement_chars: int  # U+FFFD in the visible text


def find_chromium() -> str | None:
    """$CHROMIUM, else the first Chromium/Chrome binary on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    for name in _NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(exe: str, args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="ramba-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        tail = " ".join(r.stderr.strip().splitlines()[-2:])[:300]
        raise RambaEvalError(f"chromium exited with {r.returncode}: {tail}")
    return r


def inspect(page: Path, exe: str | None = None, width: int = 1280) -> PageCheck:
    exe = exe or find_chromium()
    if exe is None:
        raise RambaEvalError("no Chromium found; install Debian's chromium package or set $CHROMIUM")
    text = Path(page).read_text(encoding="utf-8")
    probed = text.replace("</body>", _PROBE + "</body>") if "</body>" in text else text + _PROBE
    with tempfile.TemporaryDirectory(prefix="ramba-page-") as d:
        copy = Path(d) / Path(page).name
        copy.write_text(probed, encoding="utf-8")
        r = _run(exe, [f"--window-size={width},900", "--virtual-time-budget=15000", "--dump-dom", copy.as_uri()])
    m = re.search(r'<pre id="ramba-probe">(.*?)</pre>', r.stdout, flags=re.S)
    if not m:
        raise RambaEvalError(f"the page {str(page)!r} did not finish loading in chromium (no probe result)")
    return PageCheck(**json.loads(html.unescape(m.group(1))))


def screenshot(page: Path, png: Path, exe: str | None = None, width: int = 1280, height: int | None = None) -> Path:
    """A screenshot of the whole page (height from the page itself unless given)."""
    exe = exe or find_chromium()
    if height is None:
        height = min(inspect(page, exe, width).height, 16000)
    png = Path(png).absolute()
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(exe, [f"--window-size={width},{height}", "--virtual-time-budget=15000", f"--screenshot={png}",
               Path(page).absolute().as_uri()])
    if not png.is_file():
        raise RambaEvalError(f"chromium wrote no screenshot to {png}")
    return png
