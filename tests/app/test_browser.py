"""The real app in a real browser: `streamlit run app.py`, driven by Playwright and Chromium.

Opens the app, clicks a point on the latent map and checks the cluster panel, moves a
mixer slider and checks the decoded image changes; hovers a point and reads its own image in the
card, clicks an empty spot, draws a box and a lasso, and loads the map with every host but the
server blocked; changes the data set twice in the sidebar, and opens a shared link. Screenshots go to test-artifacts/;
timings are printed (benchmarks are not tests: nothing asserts a wall-clock time).
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
from browsing import (ARTIFACTS, DECODED_CARD_JS, EMPTY_SPOT_JS, HOVER_JS, HOVER_PIXELS_JS, MAP_JS, MIXER_READY_JS,  # noqa: F401
                      MIXTURE_JS, POINT_JS, ROOT, SERVER_ALPHA_JS, SHARED_DATA, page, sync_api)

from vqviz.bench.serve import streamlit_server


#: The server's process id, to pause it.
SERVER: dict = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` on a free loopback port, with empty caches; yields (url, start time).
    The real data sets are found where this checkout has them; the tests pass without them too."""
    home = tmp_path_factory.mktemp("browser")
    env = dict(os.environ, XDG_CACHE_HOME=str(home / "cache"), XDG_DATA_HOME=str(home / "data"),
               OMP_NUM_THREADS="1", VQVIZ_CHECKPOINTS="",
               VQVIZ_DATA=str(SHARED_DATA if (SHARED_DATA / "mnist").is_dir() else home / "no-data"))
    started = time.perf_counter()
    with streamlit_server(ROOT / "app.py", env, home, ROOT) as (url, proc):
        SERVER["pid"] = proc.pid
        print(f"\nstreamlit run -> server up {time.perf_counter() - started:.1f} s", end="")
        yield url, started


def test_click_a_point_then_mix_styles(server, page):
    url, started = server
    page.goto(url)
    page.wait_for_function(MAP_JS, timeout=60_000)
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

    # The style mixer: each step of a slider is decoded in the browser, and the server learns where the
    # sliders rest (its download follows them).
    page.get_by_role("link", name="Style mixer").click()
    page.wait_for_function(MIXER_READY_JS, timeout=60_000)
    assert page.evaluate("() => window.__vqvizMixer.mode") == "browser", page.locator(".vqx-where").inner_text()
    page.wait_for_timeout(300)
    page.screenshot(path=ARTIFACTS / "03-style-mixer.png", full_page=True)
    thumb = page.locator(".vqx-range").first
    latencies = []
    for i in range(20):
        before = page.evaluate(MIXTURE_JS)
        thumb.focus()
        t0 = time.perf_counter()
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        page.wait_for_function(f"(before) => JSON.stringify(({MIXTURE_JS})()) !== JSON.stringify(before)",
                               arg=before, timeout=30_000)
        latencies.append(time.perf_counter() - t0)
    in_page = page.evaluate("() => window.__vqvizMixer.latencies")
    page.keyboard.press("ArrowRight")
    page.get_by_text("mixture 0.26 z1").wait_for(timeout=10_000)
    page.screenshot(path=ARTIFACTS / "04-style-mixer-moved.png")
    # the server was told 0.26 (a keyboard step is a slider coming to rest): its download says so
    page.wait_for_function(SERVER_ALPHA_JS, arg="Download 0.26 z1", timeout=30_000)

    print(f"\nbrowser timings: streamlit run -> first map {first_map:.1f} s; click -> cluster panel "
          f"{click_to_panel:.2f} s; slider step -> new mixture median {statistics.median(latencies) * 1000:.0f} ms "
          f"(min {min(latencies) * 1000:.0f}, max {max(latencies) * 1000:.0f}, n=20; in the page, event to "
          f"painted frame: median {statistics.median(in_page):.1f} ms)")


def test_the_mixer_decodes_with_the_server_paused(server, page):
    """After the first load, each slider step is decoded in the browser: with the server stopped (SIGSTOP)
    the mixture still changes at every step, and the weights reach the server once it runs again."""
    import signal

    url, _ = server
    page.goto(f"{url}/?page=style_mixer")
    page.wait_for_function(MIXER_READY_JS, timeout=60_000)
    assert page.evaluate("() => window.__vqvizMixer.mode") == "browser"
    thumb = page.locator(".vqx-range").nth(1)
    os.kill(SERVER["pid"], signal.SIGSTOP)
    try:
        seen = [page.evaluate(MIXTURE_JS)]
        for _ in range(5):
            thumb.focus()
            page.keyboard.press("ArrowLeft")
            page.wait_for_function(f"(before) => JSON.stringify(({MIXTURE_JS})()) !== JSON.stringify(before)",
                                   arg=seen[-1], timeout=10_000)
            seen.append(page.evaluate(MIXTURE_JS))
        caption = page.locator(".vqx-caption").inner_text()
        page.screenshot(path=ARTIFACTS / "04c-mixer-server-paused.png")
    finally:
        os.kill(SERVER["pid"], signal.SIGCONT)
    assert len({str(s) for s in seen}) == 6  # six different mixtures, none from the server
    assert caption.startswith("mixture 0.25 z1 + 0.20 z2"), caption
    # the browser's picture of its last mixture is PyTorch's, within 1e-4
    import numpy as np

    from vqviz import checkpoints
    from vqviz_app import catalog

    model = checkpoints.load(catalog.BUNDLED_DIR / "seq-digits-cae4").model
    z, image = page.evaluate("() => [window.__vqvizMixer.latent, window.__vqvizMixer.image]")
    assert np.abs(model.decode_array(np.float32([z])).ravel() - np.array(image)).max() <= 1e-4
    page.wait_for_function(SERVER_ALPHA_JS, arg="0.20 z2", timeout=60_000)  # told once it runs again


def test_without_webassembly_the_server_decodes_and_says_so(server, page):
    url, _ = server
    context = page.context.browser.new_context(viewport={"width": 1500, "height": 1100})
    context.add_init_script("delete window.WebAssembly")
    plain = context.new_page()
    try:
        plain.goto(f"{url}/?page=style_mixer")
        plain.wait_for_function("() => window.__vqvizMixer && window.__vqvizMixer.mode === 'server'", timeout=60_000)
        plain.get_by_text("Decoded on the server: this browser has no WebAssembly").wait_for(timeout=30_000)
        picture = plain.locator(".vqx-picture")
        picture.wait_for(timeout=30_000)
        before = picture.get_attribute("src")
        plain.locator(".vqx-range").first.focus()
        plain.keyboard.press("ArrowRight")
        plain.wait_for_function("(before) => document.querySelector('.vqx-picture').src !== before", arg=before,
                                timeout=30_000)  # the server's picture of the new mixture
        plain.screenshot(path=ARTIFACTS / "04d-mixer-no-wasm.png")
    finally:
        context.close()


def test_hovering_an_empty_spot_decodes_under_the_cursor_as_the_server_does(server, page):
    """With "Decode under the cursor" on, the decoded image follows the cursor over empty space; the
    browser's decoding of a spot equals the server's (the same mix of the same map points, decoded by the
    ONNX export) within 1e-4, and a click still opens the server's panel of that spot."""
    import numpy as np

    from vqviz import checkpoints, data, projection
    from vqviz_app import catalog

    url, _ = server
    page.goto(url)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stProgress\"]')", timeout=120_000)
    page.wait_for_function(MAP_JS, timeout=60_000)
    page.get_by_text("Decode under the cursor").click()
    page.wait_for_function("() => ['ready', 'failed'].includes(window.__vqvizMap.decoding.state)", timeout=60_000)
    assert page.evaluate("() => window.__vqvizMap.decoding.state") == "ready", \
        page.evaluate("() => window.__vqvizMap.decoding.why")
    x, y, _ = page.evaluate(EMPTY_SPOT_JS)
    shown = []
    for dx in (0, 12):
        before = page.evaluate("() => JSON.stringify(window.__vqvizMap.decoding.last)")
        page.mouse.move(x + dx - 3, y)
        page.mouse.move(x + dx, y)
        page.wait_for_function("(before) => JSON.stringify(window.__vqvizMap.decoding.last) !== before", arg=before,
                               timeout=10_000)
        page.wait_for_timeout(200)  # the last move's decoding
        page.wait_for_function(DECODED_CARD_JS, timeout=10_000)
        shown.append(page.evaluate("() => window.__vqvizMap.decoding.last"))
        at = np.array(page.evaluate("([x, y]) => [window.__vqvizMap.dataAt(x, y), window.__vqvizMap.dataAt(x + 1, y + 1)]",
                                    [x + dx, y]))
        np.testing.assert_allclose(shown[-1]["xy"], at[0], atol=np.abs(at[1] - at[0]).max())  # under the cursor
    page.screenshot(path=ARTIFACTS / "06b-decode-under-cursor.png")
    assert shown[0]["image"] != shown[1]["image"]  # the decoding follows the cursor
    latencies = page.evaluate("() => window.__vqvizMap.decoding.latencies")

    # the server's decoding of the same spot: the same mix of the map's latents, decoded by PyTorch
    last = shown[1]
    ckpt = checkpoints.load(catalog.BUNDLED_DIR / "seq-digits-cae4")
    test = data.load("digits", "test")
    latents = ckpt.model.encode_array(test.images)
    map_xy = np.array(page.evaluate("() => window.__vqvizMap.decoding.mapXY()"), np.float32).reshape(-1, 2)
    mix = projection.interpolate(np.float32(last["xy"]), map_xy, latents, 8)
    assert mix.rows[0].tolist() == last["rows"]
    np.testing.assert_allclose(last["latent"], mix.latents[0], atol=1e-5)
    server_image = ckpt.model.decode_array(mix.latents)[0]
    assert np.abs(np.array(last["image"]) - server_image.ravel()).max() <= 1e-4

    page.mouse.click(x + 12, y)  # the click pins the spot: the server's panel of it
    page.get_by_text("the map points mixed, with their weights").wait_for(timeout=30_000)
    print(f"\ndecoding under the cursor: mouse event to painted card median {statistics.median(latencies):.1f} ms "
          f"(n={len(latencies)})")
    page.get_by_text("Decode under the cursor").click()  # off again, for the tests after this one


MARKS_JS = "() => window.__vqvizMap ? window.__vqvizMap.marks : 0"


def test_place_an_uploaded_image_and_decode_an_empty_spot(server, page):
    import io

    import numpy as np
    from PIL import Image

    from vqviz import data

    url, _ = server
    page.goto(url)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stProgress\"]')", timeout=120_000)
    page.wait_for_function(MAP_JS, timeout=60_000)
    page.wait_for_function("() => window.__vqvizMap.atlasAt", timeout=30_000)

    # Hovering a point shows its own image beside the cursor, cut from the atlas in the browser.
    images = data.load("digits", "test").images
    x, y = page.evaluate(POINT_JS, [0])
    page.mouse.move(x, y)
    page.wait_for_function(HOVER_JS, timeout=10_000)
    row, text = page.evaluate(HOVER_JS)
    assert text.startswith(f"#{row}\nlabel: ") and "cluster: " in text
    shown = np.array(page.evaluate(HOVER_PIXELS_JS, [8, 8])).reshape(8, 8)
    np.testing.assert_array_equal(shown, np.round(images[row, 0] * 255))  # the point's own digit, pixel for pixel
    page.screenshot(path=ARTIFACTS / "05-hover-image.png", clip={"x": x - 150, "y": y - 150, "width": 300,
                                                                 "height": 300})
    page.mouse.move(5, 5)

    # A click on an empty part of the map decodes the latent there (t-SNE: a mix of the nearest points).
    x, y, far = page.evaluate(EMPTY_SPOT_JS)
    t0 = time.perf_counter()
    page.mouse.click(x, y)
    sent = page.evaluate("() => window.__vqvizMap.selection")
    assert sent["kind"] == "spot" and sent["rows"] == []
    at = np.array(page.evaluate("([x, y]) => [window.__vqvizMap.dataAt(x, y), window.__vqvizMap.dataAt(x + 1, y + 1)]",
                                [x, y]))
    np.testing.assert_allclose(sent["spot"], at[0], atol=np.abs(at[1] - at[0]).max())  # within a pixel
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
    page.locator('button[data-action="box"]').click()
    box = page.locator(".vqm-canvas").bounding_box()
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


def test_a_lasso_picks_every_point_inside_it(server, page):
    import numpy as np

    from vqviz.analysis import inside_polygon

    url, _ = server
    page.goto(url)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stProgress\"]')", timeout=120_000)
    page.wait_for_function(MAP_JS, timeout=60_000)
    page.locator('button[data-action="lasso"]').click()
    box = page.locator(".vqm-canvas").bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, min(box["width"], box["height"]) * 0.3
    corners = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 6)[:-1] + 0.3]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for x, y in [*corners[1:], corners[0]]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()
    page.get_by_text("points selected").first.wait_for(timeout=30_000)
    sent = page.evaluate("() => window.__vqvizMap.selection")
    assert sent["kind"] == "lasso" and len(sent["polygon"]) >= 5
    # the rows the browser sends are the points inside the polygon it sends, as numpy counts them
    xy = np.array(page.evaluate("() => window.__vqvizMap.points()")).reshape(-1, 2)
    poly = np.array(sent["polygon"])
    inside = set(np.flatnonzero(inside_polygon(xy, poly[:, 0], poly[:, 1])).tolist())
    assert len(inside) > 10 and len(inside ^ set(sent["rows"])) <= 1  # a point on the line may go either way
    heading = page.get_by_role("heading", name="points selected").inner_text()
    assert heading == f"{len(sent['rows'])} points selected"
    page.wait_for_timeout(300)
    page.screenshot(path=ARTIFACTS / "08b-lasso.png")


def test_the_mixers_map_picks_a_latent_with_a_click(server, page):
    url, _ = server
    page.goto(f"{url}/?page=style_mixer")
    page.get_by_text("α1, the weight of z1").wait_for(timeout=60_000)
    page.get_by_text("Click in the map", exact=True).click()
    page.wait_for_function(MAP_JS, timeout=60_000)
    page.get_by_text("Each click replaces the oldest of the three latents.").wait_for(timeout=30_000)
    picked = page.evaluate("() => window.__vqvizMap.selected()")
    assert len(picked) == 3  # the three latents mixed, selected on the map
    row = next(r for r in range(360) if r not in picked)
    x, y = page.evaluate(POINT_JS, [row])
    page.mouse.click(x, y)
    clicked = page.evaluate("() => window.__vqvizMap.selection.rows[0]")
    page.get_by_text(f"sample {clicked} ").first.wait_for(timeout=30_000)  # z3 is now the clicked point
    assert clicked in page.evaluate("() => window.__vqvizMap.selected()")
    page.screenshot(path=ARTIFACTS / "04b-mixer-map.png")


def test_the_map_its_hover_images_and_decoding_work_with_every_other_host_blocked(server, page):
    from urllib.parse import urlparse

    url, _ = server
    context = page.context.browser.new_context(viewport={"width": 1500, "height": 1100})
    served, blocked = [], []

    def only_the_server(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            served.append(route.request.url)
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    offline = context.new_page()
    failed = []
    offline.on("requestfailed", lambda r: failed.append(r.url) if urlparse(r.url).hostname == "127.0.0.1" else None)
    try:
        offline.goto(url)
        offline.wait_for_function(MAP_JS, timeout=60_000)
        offline.wait_for_function("() => window.__vqvizMap.atlasAt", timeout=30_000)
        x, y = offline.evaluate(POINT_JS, [3])
        offline.mouse.move(x, y)
        offline.wait_for_function(HOVER_JS, timeout=10_000)
        offline.mouse.click(x, y)
        offline.get_by_text("decoded centroid ·").first.wait_for(timeout=30_000)
        offline.screenshot(path=ARTIFACTS / "12-offline.png")
        # decoding in the browser: the runtime and the decoder come from the server too
        offline.get_by_text("Decode under the cursor").click()
        offline.wait_for_function("() => ['ready', 'failed'].includes(window.__vqvizMap.decoding.state)", timeout=60_000)
        assert offline.evaluate("() => window.__vqvizMap.decoding.state") == "ready"
        x, y, _ = offline.evaluate(EMPTY_SPOT_JS)
        offline.mouse.move(x, y)
        offline.wait_for_function(DECODED_CARD_JS, timeout=10_000)
        offline.get_by_role("link", name="Style mixer").click()
        offline.wait_for_function(MIXER_READY_JS, timeout=60_000)
        before = offline.evaluate(MIXTURE_JS)
        offline.locator(".vqx-range").first.focus()
        offline.keyboard.press("ArrowRight")
        offline.wait_for_function(f"(before) => JSON.stringify(({MIXTURE_JS})()) !== JSON.stringify(before)",
                                  arg=before, timeout=10_000)
        assert offline.evaluate("() => window.__vqvizMixer.mode") == "browser"
    finally:
        context.close()
    assert any("/_stcore/bidi-components/vqviz.map/map.js" in u for u in served)  # the bundle, from the server
    assert any(u.endswith("/vqviz.map/ort/ort-wasm-simd-threaded.wasm") for u in served)  # and the runtime
    assert not failed, failed
    assert not blocked, f"the page asked other hosts for: {blocked}"
    print(f"\noffline: {len(served)} requests to the server, {len(blocked)} to other hosts blocked: {blocked[:5]}")


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
