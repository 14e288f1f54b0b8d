"""What the real-browser tests share: Chromium driven by Playwright (skipped where either is missing), the
folders they use, and the page scripts that read the map component and the mixer."""

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

# The map component (vqviz/web/static/map.js) exposes probes on window.__vqvizMap (frontend/src/map.ts).
#: The map's first frame of its current payload is drawn.
MAP_JS = "() => !!(window.__vqvizMap && window.__vqvizMap.drawnAt)"
#: The screen position of row ``i`` of the map.
POINT_JS = "([i]) => window.__vqvizMap.screenPosition(i)"
#: The screen position of a spot about 40 px from the nearest point, inside the map: an empty spot among
#: the clusters, not a far corner; and its distance to that point.
EMPTY_SPOT_JS = """() => {
  const m = window.__vqvizMap, c = document.querySelector('.vqm-canvas').getBoundingClientRect();
  const pts = Array.from({length: m.n}, (_, i) => m.screenPosition(i));
  let best = null, far = -1;
  for (let a = c.left + 30; a < c.right - 30; a += 6) for (let b = c.top + 30; b < c.bottom - 30; b += 6) {
    let d = Infinity;
    for (const [x, y] of pts) d = Math.min(d, Math.hypot(a - x, b - y));
    if (best === null || Math.abs(d - 40) < Math.abs(far - 40)) { far = d; best = [a, b]; }
  }
  return [best[0], best[1], far];
}"""
#: The hover card: shown, with its image drawn; and its row and text.
HOVER_JS = """() => { const t = document.querySelector('.vqm-tip'), i = document.querySelector('.vqm-tip-image');
  return t && !t.hidden && i && !i.hidden ? [window.__vqvizMap.hoverRow, t.innerText] : null; }"""
#: The hover card's image as grey levels, one per thumbnail pixel (the red channel at each cell's centre).
HOVER_PIXELS_JS = """([w, h]) => { const c = document.querySelector('.vqm-tip-image');
  const s = c.width / w, d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, out = [];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++)
    out.push(d[4 * (Math.floor((y + 0.5) * s) * c.width + Math.floor((x + 0.5) * s))]);
  return out; }"""
#: The style mixer is ready: decoding in the browser, or the server's picture shown.
MIXER_READY_JS = "() => !!(window.__vqvizMixer && window.__vqvizMixer.mode !== 'loading' && window.__vqvizMixer.shownAt)"
#: The mixture the mixer decoded last, in the browser: its pixels.
MIXTURE_JS = "() => window.__vqvizMixer.image"
#: The mixture on screen, wherever it was decoded: the browser's pixels, or the server's picture.
MIXTURE_SHOWN_JS = """() => window.__vqvizMixer.mode === 'browser' ? JSON.stringify(window.__vqvizMixer.image)
  : document.querySelector('.vqx-picture').src"""
#: The server holds the mixer's weights: its download's label names them (arg: a part of that label).
SERVER_ALPHA_JS = """(part) => [...document.querySelectorAll('[data-testid="stDownloadButton"]')]
  .some(b => b.innerText.includes(part))"""
#: The hover card shows a spot decoded under the cursor.
DECODED_CARD_JS = """() => { const t = document.querySelector('.vqm-tip'), c = document.querySelector('.vqm-tip-decoded');
  return !!(t && !t.hidden && c && !c.hidden); }"""


@pytest.fixture(scope="module")
def page():
    """A Chromium page, 1500 x 1100, for the module's tests; screenshots go to :data:`ARTIFACTS`."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser.new_page(viewport={"width": 1500, "height": 1100})
        browser.close()
