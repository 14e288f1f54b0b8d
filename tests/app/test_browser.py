"""The real app in a real browser: `streamlit run app.py`, driven by Playwright and Chromium.

Opens the app, clicks a point on the latent map and checks the cluster panel, moves a
mixer slider and checks the decoded image changes; changes the data set twice in the sidebar,
and opens a shared link. Screenshots go to test-artifacts/;
timings are printed (benchmarks are not tests: nothing asserts a wall-clock time).
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
from browsing import ARTIFACTS, MAP_JS, MIXTURE_SRC_JS, POINT_JS, ROOT, SHARED_DATA, page  # noqa: F401  (fixture)

from vqviz.bench.ui import streamlit_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` on a free loopback port, with empty caches; yields (url, start time).
    The real data sets are found where this checkout has them; the tests pass without them too."""
    home = tmp_path_factory.mktemp("browser")
    env = dict(os.environ, XDG_CACHE_HOME=str(home / "cache"), XDG_DATA_HOME=str(home / "data"),
               OMP_NUM_THREADS="1", VQVIZ_CHECKPOINTS="",
               VQVIZ_DATA=str(SHARED_DATA if (SHARED_DATA / "mnist").is_dir() else home / "no-data"))
    started = time.perf_counter()
    with streamlit_server(ROOT / "app.py", env, home, ROOT) as (url, _):
        print(f"\nstreamlit run -> server up {time.perf_counter() - started:.1f} s", end="")
        yield url, started


def test_click_a_point_then_mix_styles(server, page):
    url, started = server
    page.goto(url)
    page.wait_for_selector(".js-plotly-plot canvas", state="visible", timeout=60_000)
    page.wait_for_function(MAP_JS, timeout=30_000)
    # a fresh server shows PCA's map while the t-SNE one is computed in the background, with its progress;
    # then the page is drawn again with the t-SNE map
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stProgress\"]')", timeout=120_000)
    page.wait_for_timeout(500)
    page.wait_for_function(MAP_JS, timeout=30_000)
    first_map = time.perf_counter() - started
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / "01-latent-map.png")
    assert page.get_by_text("Click a point on the map").is_visible()

    # Click one point: its cluster's panel opens, with the decoded centroid and purity.
    x, y = page.evaluate(POINT_JS, [0])
    t0 = time.perf_counter()
    page.mouse.click(x, y)
    page.get_by_text("decoded centroid ·").first.wait_for(timeout=30_000)
    click_to_panel = time.perf_counter() - t0
    panel = page.locator('[data-testid="stMain"]')
    assert "1 point selected" in panel.inner_text()
    assert "Purity" in panel.inner_text() and "Cluster " in panel.inner_text()
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / "02-cluster-panel.png")

    # The style mixer: each step of a slider redraws the decoded mixture, and only it.
    page.get_by_role("link", name="Style mixer").click()
    page.get_by_text("α1, the weight of z1").wait_for(timeout=30_000)
    page.wait_for_function(MIXTURE_SRC_JS, timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / "03-style-mixer.png", full_page=True)
    thumb = page.get_by_role("slider").first
    latencies = []
    for i in range(20):
        before = page.evaluate(MIXTURE_SRC_JS)
        thumb.focus()
        t0 = time.perf_counter()
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        page.wait_for_function(f"(before) => ({MIXTURE_SRC_JS})() !== before", arg=before, timeout=30_000)
        latencies.append(time.perf_counter() - t0)
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(800)
    page.screenshot(path=ARTIFACTS / "04-style-mixer-moved.png")
    assert "0.26" in page.locator('[data-testid="stMain"]').inner_text()

    print(f"\nbrowser timings: streamlit run -> first map {first_map:.1f} s; click -> cluster panel "
          f"{click_to_panel:.2f} s; slider step -> new image median {statistics.median(latencies) * 1000:.0f} ms "
          f"(min {min(latencies) * 1000:.0f}, max {max(latencies) * 1000:.0f}, n=20)")


# The screen position of a grid point ("spots" trace) about 40 px from the nearest drawn point: an empty
# spot among the clusters, not a far corner.
EMPTY_SPOT_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const fl = gd._fullLayout, box = gd.getBoundingClientRect();
  const px = (x, y) => [box.left + fl._size.l + fl.xaxis.l2p(x), box.top + fl._size.t + fl.yaxis.l2p(y)];
  const grid = gd._fullData.find(t => t.name === 'spots');
  const pts = gd._fullData.filter(t => t.name !== 'spots').flatMap(t => Array.from(t.x, (x, i) => px(x, t.y[i])));
  let best = null, far = -1;
  for (let i = 0; i < grid.x.length; i++) {
    const [a, b] = px(grid.x[i], grid.y[i]);
    if (a < box.left + 30 || a > box.right - 30 || b < box.top + 30 || b > box.bottom - 60) continue;
    const d = Math.min(...pts.map(([c, e]) => Math.hypot(a - c, b - e)));
    if (best === null || Math.abs(d - 40) < Math.abs(far - 40)) { far = d; best = [a, b]; }
  }
  return [best[0], best[1], far];
}"""
MARKS_JS = """() => { const gd = document.querySelector('.js-plotly-plot');
  const t = gd && gd._fullData && gd._fullData.find(t => t.name === 'your images');
  return t ? t.x.length : 0; }"""


def test_place_an_uploaded_image_and_decode_an_empty_spot(server, page):
    import io

    import numpy as np
    from PIL import Image

    from vqviz import data

    url, _ = server
    page.goto(url)
    page.wait_for_function(MAP_JS, timeout=60_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stProgress\"]')", timeout=120_000)
    page.wait_for_timeout(500)

    # Hovering a point shows its image, drawn in shade characters: a plotly hover label draws no <img>.
    x, y = page.evaluate(POINT_JS, [0])
    page.mouse.move(x, y)
    page.wait_for_function("() => /[█▓]/.test(document.querySelector('.hoverlayer')?.textContent || '')",
                           timeout=10_000)
    hover = page.evaluate("() => [...document.querySelectorAll('.hoverlayer .hovertext tspan.line')]"
                          ".map(t => t.textContent)")
    assert len(hover) == 1 + 8 and hover[0] == "0"  # the label, then the 8 rows of an 8 x 8 digit
    assert page.locator(".hoverlayer img").count() == 0
    page.screenshot(path=ARTIFACTS / "05-hover-thumbnail.png", clip={"x": x - 150, "y": y - 150, "width": 300,
                                                                     "height": 300})
    page.mouse.move(5, 5)

    # A click on an empty part of the map decodes the latent there (t-SNE: a mix of the nearest points).
    x, y, far = page.evaluate(EMPTY_SPOT_JS)
    t0 = time.perf_counter()
    page.mouse.click(x, y)
    page.get_by_text("the map points mixed, with their weights").wait_for(timeout=30_000)
    spot_to_panel = time.perf_counter() - t0
    main = page.locator('[data-testid="stMain"]')
    assert "A decoded spot of the map" in main.inner_text()
    assert "a mix of the latents of the 8 nearest map points" in main.inner_text()
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / "06-decoded-spot.png")

    # An uploaded digit, dark ink on white as a person would draw it, is placed and marked, with its neighbours.
    digit = data.load("digits", "test").images[7, 0]
    buf = io.BytesIO()
    Image.fromarray(np.uint8(np.round((1 - digit) * 255)).repeat(16, 0).repeat(16, 1)).save(buf, format="PNG")
    t0 = time.perf_counter()
    main.locator('input[type="file"]').set_input_files(
        files=[{"name": "my-digit.png", "mimeType": "image/png", "buffer": buf.getvalue()}])
    page.get_by_text("nearest neighbours in latent space").first.wait_for(timeout=60_000)
    page.wait_for_function(f"() => ({MARKS_JS})() === 1", timeout=30_000)
    upload_to_panel = time.perf_counter() - t0
    text = main.inner_text()
    assert "my-digit.png" in text and "quantized label" in text
    row = main.get_by_text("Your image, decoded; then its 8 nearest neighbours in latent space").first
    assert row.inner_text().split("distance): ")[1].count(" (") == 8  # the 8 neighbours' labels and distances
    picture = main.locator('[data-testid="stImage"] img').filter(visible=True)
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stImage] img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
    assert picture.count() >= 1
    row.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / "07-placed-image.png")
    page.locator('[data-testid="stMain"]').evaluate("e => e.scrollTo(0, 0)")

    # A box over the middle of the map, across many clusters: a strip of all of them, full panels for three.
    page.locator('.modebar-btn[data-title="Box Select"]').click()
    box = page.locator(".js-plotly-plot").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - box["width"] * 0.3, cy - box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(cx + box["width"] * 0.3, cy + box["height"] * 0.3, steps=8)
    page.mouse.up()
    page.get_by_text("The selection falls in").wait_for(timeout=30_000)
    page.wait_for_timeout(800)
    text = main.inner_text()
    many = int(text.split("The selection falls in ")[1].split(" clusters")[0])
    assert many > 3 and text.count("decoded centroid ·") == 3  # every cluster in the strip, three in full
    strip = page.locator('[data-testid="stImageContainer"]').filter(has_text="%")
    assert strip.count() >= many
    page.screenshot(path=ARTIFACTS / "08-many-clusters.png")
    print(f"\nbrowser timings: empty spot ({far:.0f} px from any point) -> decoded panel {spot_to_panel:.2f} s; "
          f"upload -> marked with neighbours {upload_to_panel:.2f} s")


def _choose(page, box: str, option: str) -> None:
    """Pick ``option`` in the sidebar's select box ``box`` with the mouse, as a person does."""
    page.get_by_role("combobox", name=box).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_a_data_set_change_lands_on_the_new_data_set(server, page):
    url, _ = server
    page.goto(url)
    page.wait_for_function(MAP_JS, timeout=60_000)
    main = page.locator('[data-testid="stMain"]')

    # Fashion-MNIST: the digits checkpoint does not take its images, so the picker moves to one that
    # does (a shipped one), or the page says why there is no map when its files are absent.
    _choose(page, "Data set", "fashion-mnist")
    page.wait_for_url("**dataset=fashion-mnist*", timeout=30_000)
    page.wait_for_timeout(500)
    assert page.get_by_role("combobox", name="Data set").input_value() == "fashion-mnist"
    assert not page.get_by_role("combobox", name="Model checkpoint").input_value().startswith("seq-digits")
    page.screenshot(path=ARTIFACTS / "09-fashion-mnist.png")

    # The next change lands on the data set chosen, not back on digits with the default checkpoint.
    _choose(page, "Data set", "mnist")
    page.wait_for_url("**dataset=mnist*", timeout=30_000)
    page.wait_for_timeout(500)  # and it stays there once the page has settled
    assert page.get_by_role("combobox", name="Data set").input_value() == "mnist"
    assert "dataset=mnist" in page.url.split("?")[1].split("&")
    picked = page.get_by_role("combobox", name="Model checkpoint").input_value()
    assert not picked.startswith(("seq-digits", "seq-fashion", "skvq-fashion")), picked
    assert not main.get_by_text("Something went wrong").count()
    page.screenshot(path=ARTIFACTS / "10-mnist-after-fashion-mnist.png")


def test_a_shared_link_restores_the_view(server, page):
    url, _ = server
    page.goto(f"{url}/?page=metrics&dataset=digits&split=train&checkpoint=seq-digits-lae2&colour=cluster")
    page.get_by_role("heading", name="Metrics").first.wait_for(timeout=60_000)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert page.get_by_role("combobox", name="Data set").input_value() == "digits"
    assert page.get_by_role("combobox", name="Model checkpoint").input_value().startswith("seq-digits-lae2 ")
    assert sidebar.get_by_role("radiogroup", name="Split").get_by_role("radio", checked=True).inner_text() == "train"
    colour = sidebar.get_by_role("radiogroup", name="Colour the map by").locator('[data-selected="true"]')
    assert colour.first.inner_text() == "Cluster"
    # the page's link to copy is the same view
    assert "page=metrics&dataset=digits&split=train&checkpoint=seq-digits-lae2" in sidebar.get_by_test_id("stCode").text_content()
    page.screenshot(path=ARTIFACTS / "11-shared-link.png")
