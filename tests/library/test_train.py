"""The trainer: callbacks, determinism, and the NaN guard."""

import math

import pytest
import torch
from torch import nn

from vqviz import checkpoints, workflow
from vqviz.errors import ConfigError, TrainingError
from vqviz.models.seq import SEQ
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import resolve_device


def _problem(n=100):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5, 3.0])


def _fit(config, callbacks=None, poison_at=None):
    torch.manual_seed(0)
    net = nn.Linear(4, 1)
    calls = {"n": 0}

    def loss_fn(xb, yb):
        calls["n"] += 1
        loss = ((net(xb).squeeze(1) - yb) ** 2).mean()
        if poison_at is not None and calls["n"] >= poison_at:
            loss = loss * float("nan")
        return {"loss": loss}

    trainer = Trainer(config, callbacks)
    history = trainer.run("fit", net.parameters(), loss_fn, _problem(), modules=(net,))
    return net, history


def test_callbacks_report_every_step_and_epoch():
    steps, epochs = [], []
    _fit(TrainConfig(epochs=3, batch_size=32), {"on_step": steps.append, "on_epoch": epochs.append})
    assert len(steps) == 3 * math.ceil(100 / 32) and len(epochs) == 3
    fractions = [p.fraction for p in steps]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert epochs[-1].terms["loss"] < epochs[0].terms["loss"]
    assert {"stage", "epoch", "step", "terms", "fraction"} <= set(vars(steps[0]))


def test_same_seed_same_weights_on_cpu():
    a, ha = _fit(TrainConfig(epochs=2, batch_size=16, seed=3))
    b, hb = _fit(TrainConfig(epochs=2, batch_size=16, seed=3))
    c, _ = _fit(TrainConfig(epochs=2, batch_size=16, seed=4))
    assert torch.equal(a.weight, b.weight) and ha == hb
    assert not torch.equal(a.weight, c.weight)


def test_nan_loss_stops_with_a_clear_error_and_restores_the_last_good_epoch():
    epochs = []
    cfg = TrainConfig(epochs=3, batch_size=50)  # two steps an epoch
    with pytest.raises(TrainingError, match=r"became nan .* epoch 2, step 2.*restored to the end of epoch 1"):
        _fit(cfg, {"on_epoch": lambda p: epochs.append(p)}, poison_at=4)
    assert len(epochs) == 1


def test_nan_restores_the_modules_weights():
    torch.manual_seed(0)
    net = nn.Linear(4, 1)
    snapshots = []
    state = {"epoch": 0}

    def loss_fn(xb, yb):
        loss = ((net(xb).squeeze(1) - yb) ** 2).mean()
        return {"loss": loss * float("nan") if state["epoch"] == 1 else loss}

    def on_epoch(p):
        snapshots.append(net.weight.detach().clone())
        state["epoch"] = p.epoch

    with pytest.raises(TrainingError):
        Trainer(TrainConfig(epochs=3, batch_size=25), {"on_epoch": on_epoch}).run(
            "fit", net.parameters(), loss_fn, _problem(), modules=(net,))
    assert torch.isfinite(net.weight).all()
    assert torch.equal(net.weight, snapshots[0])


def test_diverging_run_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "ck"
    small = dict(latent_dim=8, k=5, k_sweep=(5,), kmeans_restarts=1)
    workflow.train("seq", "digits", out=out, train_config=TrainConfig(epochs=1), **small)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(SEQ, "reconstruction_loss", lambda self, a, b: torch.tensor(float("inf")) + a.sum())
    with pytest.raises(TrainingError, match="became inf"):
        workflow.train("seq", "digits", out=out, train_config=TrainConfig(epochs=1, seed=1), **small)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    checkpoints.load(out)


def test_workflow_with_the_same_seed_writes_the_same_weights(tmp_path):
    small = dict(latent_dim=8, k=5, k_sweep=(5,), kmeans_restarts=1)
    a = workflow.train("seq", out=tmp_path / "a", train_config=TrainConfig(epochs=1, seed=5), **small)
    b = workflow.train("seq", out=tmp_path / "b", train_config=TrainConfig(epochs=1, seed=5), **small)
    assert a.meta["weights"]["sha256"] == b.meta["weights"]["sha256"]
    assert a.meta["state"] == b.meta["state"] and a.meta["seed"] == 5


def test_bad_config_and_events():
    with pytest.raises(ConfigError):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError):
        TrainConfig(lr=float("nan"))
    with pytest.raises(ConfigError, match="unknown event"):
        Trainer().add_callback("on_batch", print)


def test_device_auto_resolves_to_an_available_device():
    dev = resolve_device("auto")
    assert dev.type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        assert dev.type in ("mps", "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_plateau_rule_and_an_early_end_that_keeps_the_weights():
    from vqviz.train import plateau

    rule = plateau(patience=2, min_delta=0.01)
    curve = lambda *v: [{"loss": x} for x in v]  # noqa: E731
    assert not rule("s", curve(10, 9, 8))  # still improving
    assert not rule("s", curve(10, 9, 8.99))  # too few epochs since the best
    assert rule("s", curve(10, 9, 8.95, 8.94))  # under 1 % better than 9 for 2 epochs
    assert not rule("s", curve(10, 9, 8.95, 8.8))
    with pytest.raises(ConfigError):
        plateau(patience=0)

    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 1)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    trainer = Trainer(TrainConfig(epochs=50, batch_size=64, lr=1e-9))  # the loss all but never moves
    trainer.converged = plateau(patience=3)
    history = trainer.run("s", layer.parameters(), lambda a, b: {"loss": ((layer(a) - b) ** 2).mean()}, (x, y),
                          modules=(layer,))
    assert len(history) == 4 and len(trainer.history["s"]) == 4


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": 1e38}, r"lr must be a number in \(0, 10\]"),
    ({"lr": 0.0}, r"lr must be a number in \(0, 10\]"),
    ({"lr": True}, "lr must be a number"),
    ({"weight_decay": -1.0}, r"weight_decay must be a number in \[0, 10\]"),
    ({"weight_decay": float("inf")}, "weight_decay"),
    ({"epochs": 2.5}, "epochs must be an integer in 1..100,000"),
    ({"epochs": 10**9}, "epochs must be an integer"),
    ({"batch_size": 0}, "batch_size must be an integer in 1..1,048,576"),
    ({"seed": -1}, "seed must be an integer"),
    ({"device": ""}, "device must be"),
])
def test_hyper_parameters_out_of_range_are_refused_by_name(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)
