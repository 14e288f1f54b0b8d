"""The gestures ``bench ui`` times in Chromium (through Playwright), and the page scripts that tell when
each has completed: slider steps, fresh tabs, clicks on the map and hovers over it."""

from __future__ import annotations

import time

# the <img> of the figure whose caption holds a text: its src and whether it is loaded
IMG_JS = """(text) => {
  const fig = [...document.querySelectorAll('[data-testid="stImage"]')].find(f => f.innerText.includes(text));
  const img = fig && fig.querySelector('img');
  return img ? [img.src, img.complete && img.naturalWidth > 0] : null;
}"""
CHANGED_JS = f"""([text, before]) => {{
  const got = ({IMG_JS})(text);
  const all = [...document.querySelectorAll('[data-testid="stMain"] img')].every(i => i.complete);
  return got !== null && got[0] !== before && got[1] && all;
}}"""
# the map component's probes (frontend/src/map.ts): the screen position of a row; the first frame drawn
POINT_JS = "(row) => window.__vqvizMap.screenPosition(row)"
MAP_JS = "() => !!(window.__vqvizMap && window.__vqvizMap.drawnAt)"
# two rows of the map in different clusters (or of different labels, without clusters)
TWO_ROWS_JS = """() => { const m = window.__vqvizMap, f = m.value('cluster', 0) === null ? 'label' : 'cluster';
  for (let r = 1; r < m.n; r++) if (m.value(f, r) !== m.value(f, 0)) return [0, r];
  return [0, Math.min(1, m.n - 1)]; }"""
# the panel shows the sample of the map's selection after ``seq``
SAMPLE_SHOWN_JS = r"""(seq) => { const s = window.__vqvizMap.selection;
  return !!s && s.seq > seq && s.rows.length === 1 && new RegExp('Sample ' + s.rows[0] + '\\b')
    .test(document.querySelector('[data-testid="stMain"]').innerText); }"""
# the hover card shows an image (or, on a map without images, its fields), painted: its row and the times
# from the mouse event to the card in the page and to the next frame
HOVERED_JS = """() => { const m = window.__vqvizMap, t = document.querySelector('.vqm-tip');
  return m.hoverRow !== null && !t.hidden && m.hoverPaintedAt > m.moveAt
    ? [m.hoverRow, m.hoverShownAt - m.moveAt, m.hoverPaintedAt - m.moveAt,
       !document.querySelector('.vqm-tip-image').hidden] : null; }"""
SETTLED_JS = """() => !document.querySelector('[data-testid="stProgress"]')"""
TITLE_JS = """(title) => [...document.querySelectorAll('h1')].some(h => h.innerText.trim() === title)
  && [...document.querySelectorAll('[data-testid="stMain"] img')].every(i => i.complete)"""


class Bytes:
    """Bytes the page receives on its websockets."""

    def __init__(self, page):
        self.total = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload) -> None:
        self.total += len(payload)


def timed(samples: dict, name: str, counter: Bytes | None, act, wait) -> None:
    """Time ``act`` until ``wait`` returns; a gesture that never completes is counted, not timed."""
    from playwright.sync_api import TimeoutError as Timeout

    before = counter.total if counter else 0
    t0 = time.perf_counter()
    act()
    try:
        wait()
    except Timeout:
        samples.setdefault(f"{name} (timed out)", []).append(time.perf_counter() - t0)
        return
    samples.setdefault(name, []).append(time.perf_counter() - t0)
    if counter is not None:
        samples.setdefault(f"{name} (bytes)", []).append(counter.total - before)


def slider(page, samples, name, caption, counter, n, timeout_ms) -> None:
    """n steps of the first slider, alternately right and left, each until the image captioned ``caption`` changed."""
    thumb = page.get_by_role("slider").first
    for i in range(n):
        before = (page.evaluate(IMG_JS, caption) or [None])[0]
        thumb.focus()
        timed(samples, name, counter, lambda: page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft"),
               lambda: page.wait_for_function(CHANGED_JS, arg=[caption, before], timeout=timeout_ms))


def fresh_tab(browser, url, samples, name, ready_js, arg, n, timeout_ms, first: tuple | None = None) -> None:
    """n new tabs on ``url``, each timed until ``ready_js``; ``first`` = (name, js): also the time
    until an earlier sign, e.g. the page's title before its map."""
    for _ in range(n):
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        t0 = time.perf_counter()

        def wait():
            if first is not None:
                page.wait_for_function(first[1], timeout=timeout_ms)
                samples.setdefault(first[0], []).append(time.perf_counter() - t0)
            page.wait_for_function(ready_js, arg=arg, timeout=timeout_ms)

        timed(samples, name, None, lambda: page.goto(url), wait)
        page.close()


def clicks(page, samples, name, counter, n, timeout_ms, by_image: bool = True) -> None:
    """n clicks on two points of different clusters in turn, each until the cluster panel's picture changed
    (``by_image``; a model with a decoder) or the panel names the sample the map sent."""
    rows = page.evaluate(TWO_ROWS_JS)
    for i in range(n):
        page.wait_for_timeout(400)  # not a double click
        x, y = page.evaluate(POINT_JS, rows[i % 2])
        before = (page.evaluate(IMG_JS, "decoded centroid") or [None])[0]
        seq = page.evaluate("() => (window.__vqvizMap.selection || {seq: 0}).seq")
        wait = (lambda: page.wait_for_function(CHANGED_JS, arg=["decoded centroid", before], timeout=timeout_ms)) \
            if by_image else (lambda: page.wait_for_function(SAMPLE_SHOWN_JS, arg=seq, timeout=timeout_ms))
        timed(samples, name, counter, lambda: page.mouse.click(x, y), wait)


def hover(page, samples, what, n, timeout_ms) -> None:
    """n hovers over points spread over the map, each timed in the page from the mouse event to the card
    in the page and to the next frame (so no round trip of Playwright's is counted)."""
    from playwright.sync_api import TimeoutError as Timeout

    total = page.evaluate("() => window.__vqvizMap.n")
    for i in range(n):
        row = (i * 7919) % total  # spread over the rows
        x, y = page.evaluate(POINT_JS, row)
        page.mouse.move(5, 5)
        page.evaluate("() => { window.__vqvizMap.hoverRow = null; }")
        page.wait_for_timeout(150)
        page.mouse.move(x, y)
        try:
            page.wait_for_function(HOVERED_JS, timeout=timeout_ms)
        except Timeout:
            samples.setdefault(f"map: hover -> card painted ({what}) (timed out)", []).append(timeout_ms / 1000)
            continue
        _, shown, painted, image = page.evaluate(HOVERED_JS)
        kind = "image" if image else "card"
        samples.setdefault(f"map: hover -> {kind} in the page ({what})", []).append(shown / 1000)
        samples.setdefault(f"map: hover -> {kind} painted ({what})", []).append(painted / 1000)
    page.mouse.move(5, 5)
