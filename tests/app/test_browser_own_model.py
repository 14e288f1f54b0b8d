"""Your own model in a real browser: a VQ-VAE written with vector-quantize-pytorch (its VectorQuantize as the
quantizer of a plain MLP autoencoder), trained on MNIST outside vqviz's families, wrapped with ``vqviz.wrap``
and saved; the app, with its factory allowed, shows its map, decodes a clicked cluster's centroid, mixes three
latents and shows its codebook's use, in Chromium. Screenshots go to test-artifacts/own-model-*.png."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest
from browsing import ARTIFACTS, MAP_JS, MIXER_READY_JS, MIXTURE_SHOWN_JS, POINT_JS, ROOT, SHARED_DATA, page  # noqa: F401  (fixture)

import vqviz
from vqviz import checkpoints, data
from vqviz.bench.serve import streamlit_server
from vqviz.train import TrainConfig, Trainer
from vqviz.utils import set_seed

if not (SHARED_DATA / "mnist").is_dir():
    pytest.skip(f"MNIST not found at {SHARED_DATA}", allow_module_level=True)

#: The user's own module: an MLP autoencoder with vector-quantize-pytorch's VectorQuantize.
NETS = '''
import math

from torch import nn
from vector_quantize_pytorch import VectorQuantize


def build(in_shape, latent_dim=32, n_codes=64):
    n = math.prod(in_shape)
    return {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(n, 256), nn.ReLU(), nn.Linear(256, latent_dim)),
            "decoder": nn.Sequential(nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, n), nn.Sigmoid()),
            "quantizer": VectorQuantize(dim=latent_dim, codebook_size=n_codes, kmeans_init=True,
                                        threshold_ema_dead_code=2)}
'''


@pytest.fixture(scope="module")
def wrapped(tmp_path_factory):
    """The user's module on a path of its own, their VQ-VAE trained 2 epochs on MNIST, wrapped and saved in a
    folder the app lists; returns (checkpoint folder, the module's folder)."""
    home = tmp_path_factory.mktemp("own-model")
    site = home / "site"
    site.mkdir()
    (site / "vqp_nets.py").write_text(textwrap.dedent(NETS))
    sys.path.insert(0, str(site))
    saved = {k: os.environ.get(k) for k in ("VQVIZ_ALLOWED_FACTORIES", "VQVIZ_DATA")}
    os.environ.update(VQVIZ_ALLOWED_FACTORIES="vqp_nets", VQVIZ_DATA=str(SHARED_DATA))  # as the server's operator
    try:
        import vqp_nets

        set_seed(0)
        args = {"in_shape": [1, 28, 28], "latent_dim": 32, "n_codes": 64}
        parts = vqp_nets.build(**args)
        model = vqviz.wrap(parts["encoder"], parts["decoder"], parts["quantizer"], in_shape=(1, 28, 28),
                           factory="vqp_nets:build", factory_args=args, n_classes=10)
        train, test = data.load("mnist", "train"), data.load("mnist", "test")
        metrics = model.fit(train, test, Trainer(TrainConfig(epochs=2, batch_size=128)))
        folder = checkpoints.save(model, home / "models" / "vqp-vqvae-mnist", dataset="mnist", metrics=metrics)
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("vqp_nets", None)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    assert metrics["test_perplexity"] > 10, metrics  # the codebook is in use: a map worth looking at
    return folder, site


@pytest.fixture(scope="module")
def server(wrapped, tmp_path_factory):
    folder, site = wrapped
    home = tmp_path_factory.mktemp("own-model-server")
    env = dict(os.environ, XDG_CACHE_HOME=str(home / "cache"), XDG_DATA_HOME=str(home / "data"),
               OMP_NUM_THREADS="1", VQVIZ_CHECKPOINTS=str(folder.parent), VQVIZ_DATA=str(SHARED_DATA),
               VQVIZ_ALLOWED_FACTORIES="vqp_nets",
               PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    with streamlit_server(ROOT / "app.py", env, home, ROOT) as (url, _):
        yield url



def test_a_wrapped_vector_quantize_pytorch_vqvae_on_mnist(wrapped, server, page):
    folder, _ = wrapped
    main = page.locator('[data-testid="stMain"]')
    page.goto(f"{server}/?page=latent_map&checkpoint={folder}&dataset=mnist&projection=pca&colour=cluster")
    page.wait_for_function(MAP_JS, timeout=120_000)
    page.wait_for_timeout(500)
    assert page.get_by_role("combobox", name="Model checkpoint").input_value().startswith("vqp-vqvae-mnist")
    assert "10,000 test images of mnist" in main.inner_text()
    page.screenshot(path=ARTIFACTS / "own-model-1-map.png")

    # A click on a point: its cluster's panel, with the centroid decoded by the user's decoder.
    x, y = page.evaluate(POINT_JS, [0])
    page.mouse.click(x, y)
    page.get_by_text("decoded centroid ·").first.wait_for(timeout=60_000)
    text = main.inner_text()
    assert "1 point selected" in text and "Cluster " in text and "Purity" in text
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stImage] img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
    page.screenshot(path=ARTIFACTS / "own-model-2-cluster.png")

    # The style mixer: three latents, and a slider step redraws their mixture.
    page.get_by_role("link", name="Style mixer").click()
    page.wait_for_function(MIXER_READY_JS, timeout=120_000)
    before = page.evaluate(MIXTURE_SHOWN_JS)
    page.locator(".vqx-range").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"(before) => ({MIXTURE_SHOWN_JS})() !== before", arg=before, timeout=30_000)
    page.screenshot(path=ARTIFACTS / "own-model-3-mixer.png", full_page=True)

    # The codebook's use on the test split, and over training.
    page.get_by_role("link", name="Assignment entropy").click()
    page.get_by_text("of K = 64").first.wait_for(timeout=180_000)  # beside a shipped soft model of MNIST
    text = main.inner_text()
    assert "vqp-vqvae-mnist" in text and "Dead codes" in text
    assert not main.get_by_text("Something went wrong").count()
    page.screenshot(path=ARTIFACTS / "own-model-4-codebook.png", full_page=True)
