"""What the real-browser tests share: Chromium driven by Playwright (skipped where either is missing), the
folders they use, and the page scripts that read the plotly map and the mixer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
#: ``../shared/data`` beside the checkout (as in tests/conftest.py): real MNIST and Fashion-MNIST, where present.
SHARED_DATA = ROOT.parent / "shared" / "data"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"chromium is not installed at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

# Plotly draws a WebGL scatter; this finds the screen position of point ``i`` of trace 0.
POINT_JS = """([i]) => {
  const gd = document.querySelector('.js-plotly-plot');
  const fl = gd._fullLayout, tr = gd._fullData[0];
  const box = gd.getBoundingClientRect();
  return [box.left + fl._size.l + fl.xaxis.l2p(tr.x[i]), box.top + fl._size.t + fl.yaxis.l2p(tr.y[i])];
}"""
MAP_JS = """() => { const gd = document.querySelector('.js-plotly-plot');
  return !!(gd && gd._fullData && gd.querySelector('canvas')); }"""
MIXTURE_SRC_JS = """() => {
  const figs = [...document.querySelectorAll('[data-testid="stImage"]')];
  const fig = figs.find(f => f.innerText.includes('mixture'));
  return fig ? fig.querySelector('img').src : null;
}"""


@pytest.fixture(scope="module")
def page():
    """A Chromium page, 1500 x 1100, for the module's tests; screenshots go to :data:`ARTIFACTS`."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser.new_page(viewport={"width": 1500, "height": 1100})
        browser.close()
