"""The gestures ``bench ui`` times in Chromium (through Playwright), and the page scripts that tell when
each has completed: slider steps, fresh tabs, clicks on the map, hovers over it, and the decoding in the
browser (the mixer's steps, the map's spots under the cursor)."""

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
# the style mixer (frontend/src/mixer.ts): ready, its mode ("browser" or "server"), the server's picture
MIXER_READY_JS = "() => !!(window.__vqvizMixer && window.__vqvizMixer.mode !== 'loading' && window.__vqvizMixer.shownAt)"
MIXER_PICTURE_JS = "() => { const i = document.querySelector('.vqx-picture'); return i && !i.hidden && i.complete ? i.src : null; }"
# an empty spot of the map, about 40 px from every point: [x, y, distance]
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


def mixer_steps(page, samples, what, n, timeout_ms) -> None:
    """n steps of the mixer's first slider, decoded in the browser: each timed in the page, from the key's
    event to the frame after the mixture was drawn (no round trip of Playwright's counted)."""
    from playwright.sync_api import TimeoutError as Timeout

    try:
        page.wait_for_function(MIXER_READY_JS, timeout=timeout_ms)
    except Timeout:  # an app from before the mixer decoded in the browser (--app)
        print(f"the mixer's view did not open ({what}): not timed")
        return
    thumb = page.locator(".vqx-range").first
    for i in range(n):
        done = page.evaluate("() => window.__vqvizMixer.latencies.length")
        thumb.focus()
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        page.wait_for_function("(k) => window.__vqvizMixer.latencies.length > k", arg=done, timeout=timeout_ms)
        page.wait_for_timeout(50)
    for ms in page.evaluate("() => window.__vqvizMixer.latencies")[-n:]:
        samples.setdefault(f"mixer: slider -> mixture painted ({what})", []).append(ms / 1000)


def mixer_server_steps(page, samples, name, counter, n, timeout_ms) -> None:
    """n steps of the mixer's first slider where the server decodes: each until its new picture is loaded."""
    from playwright.sync_api import TimeoutError as Timeout

    try:
        page.wait_for_function(MIXER_PICTURE_JS, timeout=timeout_ms)
    except Timeout:
        print(f"the mixer's view did not open ({name}): not timed")
        return
    thumb = page.locator(".vqx-range").first
    for i in range(n):
        before = page.evaluate(MIXER_PICTURE_JS)
        thumb.focus()
        timed(samples, name, counter, lambda: page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft"),
              lambda: page.wait_for_function(f"(b) => {{ const s = ({MIXER_PICTURE_JS})(); return s && s !== b; }}",
                                             arg=before, timeout=timeout_ms))


def decode_hover(page, samples, what, n, timeout_ms) -> None:
    """Turn on decoding under the cursor, then move the cursor over an empty spot n times, a few pixels a
    step: each step timed in the page, from the mouse event to the frame after its decoding was drawn."""
    toggle = page.get_by_text("Decode under the cursor")
    if not toggle.count():  # an app from before decoding in the browser (--app)
        print(f"no decoding under the cursor ({what}): not timed")
        return
    toggle.click()
    page.wait_for_function("() => ['ready', 'failed'].includes(window.__vqvizMap.decoding.state)", timeout=timeout_ms)
    if page.evaluate("() => window.__vqvizMap.decoding.state") != "ready":
        print(f"decoding under the cursor ({what}) failed: {page.evaluate('() => window.__vqvizMap.decoding.why')}")
        return
    x, y, _ = page.evaluate(EMPTY_SPOT_JS)
    for i in range(n):
        done = page.evaluate("() => window.__vqvizMap.decoding.latencies.length")
        page.mouse.move(x + (i % 2) * 6, y + (i % 3) * 4)
        page.wait_for_function("(k) => window.__vqvizMap.decoding.latencies.length > k", arg=done, timeout=timeout_ms)
        page.wait_for_timeout(50)
    for ms in page.evaluate("() => window.__vqvizMap.decoding.latencies")[-n:]:
        samples.setdefault(f"map: hover empty spot -> decoding painted ({what})", []).append(ms / 1000)
    page.get_by_text("Decode under the cursor").click()
