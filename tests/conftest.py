"""Shared fixtures: the real data folder beside the repo, and small trained models; and which
tests are ``slow``: ``pytest -m "not slow"`` leaves out real data, real browsers and servers,
torchrun, the fuzz, the wheel install, ``bench repro --quick`` and the trainings of the app's quick
path, the tests that take minutes or more than a few seconds each (CI runs everything)."""

from pathlib import Path

import pytest

from vqviz import data
from vqviz.models import build
from vqviz.train import Trainer, TrainConfig

#: ``../shared/data`` beside the checkout: real MNIST and Fashion-MNIST for tests.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data(monkeypatch):
    """Point $VQVIZ_DATA at the real data sets, or skip where they are absent."""
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA}")
    monkeypatch.setenv("VQVIZ_DATA", str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture(scope="session")
def digits():
    return data.load("digits", "train"), data.load("digits", "test")


@pytest.fixture(scope="session")
def tiny_seq(digits):
    """A SEQ model on digits trained for a few seconds: enough for round trips, not for accuracy."""
    train, test = digits
    model = build("seq", in_shape=train.shape, n_classes=train.n_classes, encoder="lae2", latent_dim=16,
                  k=12, k_sweep=(6, 12), kmeans_restarts=1)
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=2, batch_size=64)))
    return model, metrics


#: Test modules that are slow as a whole: each starts servers, browsers, process groups or fuzzers.
SLOW_MODULES = {"test_browser.py", "test_browser_own_model.py", "test_server_stops.py", "test_distributed.py", "test_fuzz.py", "test_large_maps.py",
                "test_install.py", "test_quick_training.py"}


#: Fixtures that make a test slow: the real data sets, and ``bench repro --quick``'s every protocol.
SLOW_FIXTURES = {"shared_data", "quick"}


def pytest_collection_modifyitems(config, items):
    """Mark ``slow`` every test of :data:`SLOW_MODULES` and every test that uses a :data:`SLOW_FIXTURES`."""
    for item in items:
        if item.path.name in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
