"""SEQ: the K rule, the quantizer contract, and accuracy on real data."""

import numpy as np
import pytest
import torch

from vqviz import data
from vqviz.errors import ConfigError
from vqviz.models import build, names
from vqviz.models.seq import SEQ, choose_k, rule_met, validation_split
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import set_seed


def test_registered():
    assert "seq" in names()
    assert isinstance(build("seq"), SEQ)
    with pytest.raises(ConfigError, match="no setting"):
        build("seq", kk=3)
    with pytest.raises(ConfigError):
        build("nope")


def test_k_rule_on_a_given_curve():
    ks = [10, 20, 50, 100, 120]
    acc = [0.90, 0.95, 0.975, 0.986, 0.988]
    assert choose_k(ks, acc, p_e=0.99, epsilon=0.005) == 100   # 0.986 > 0.985, 0.975 is not
    assert choose_k(ks, acc, p_e=0.99, epsilon=0.02) == 50
    assert choose_k(ks, acc, p_e=0.99, epsilon=0.1) == 10
    # No K qualifies: the most accurate one.
    assert choose_k(ks, acc, p_e=0.999, epsilon=0.001) == 120
    # The comparison is strict, as in the paper (P_Q > P_E - eps).
    assert choose_k([10, 20], [0.985, 0.99], p_e=0.99, epsilon=0.005) == 20


def test_quantize_contract(tiny_seq, digits):
    model, _ = tiny_seq
    x = torch.as_tensor(np.array(digits[1].images[:20]))
    z = model.encode(x)
    out = model.quantize(z)
    assert z.shape == (20, 16)
    assert out.quantized.shape == (20, 16) and out.indices.shape == (20,)
    assert out.probs.shape == (20, model.k)
    torch.testing.assert_close(out.probs.sum(1), torch.ones(20))
    # Hard assignment: the quantized vector is the centre at the index, the nearest one.
    torch.testing.assert_close(out.quantized, model.centres[out.indices])
    d = torch.cdist(z, model.centres)
    assert torch.equal(out.indices, d.argmin(1))
    # Going back from indices to codes.
    torch.testing.assert_close(model.codes(out.indices), out.quantized)
    assert model.decode(z).shape == (20, 1, 8, 8)
    assert model.centre_images().shape == (model.k, 1, 8, 8)
    assert model.predict(x).shape == (20,)


def test_evaluate_reports_reconstruction_and_codebook_use(tiny_seq, digits):
    model, _ = tiny_seq
    m = model.evaluate(digits[1])
    assert m["test_mse_per_pixel"] > 0 and m["test_bce_per_image"] > 0
    assert 0 < m["test_usage_entropy"] <= np.log(model.k) + 1e-9
    assert m["test_assignment_entropy"] == 0.0  # hard assignments
    assert 0 <= m["test_dead_codes"] < model.k


def test_fit_reports_the_k_curve(tiny_seq):
    model, metrics = tiny_seq
    assert [p["k"] for p in metrics["k_curve"]] == [6, 12]
    assert model.k == 12 and metrics["k"] == 12
    assert metrics["k_rule"] in (6, 12)
    for p in metrics["k_curve"]:
        assert 0 <= p["train_accuracy"] <= 1 and 0 <= p["test_accuracy"] <= 1
    assert set(model.cluster_labels.tolist()) <= set(range(10))


def test_k_zero_takes_the_rules_choice(digits):
    train, test = digits
    model = build("seq", latent_dim=8, k=0, k_sweep=(5, 10, 15), kmeans_restarts=1)
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=1)))
    assert model.k == metrics["k_rule"] == metrics["k"]


def test_same_seed_same_model(digits):
    train, _ = digits
    runs = []
    for _ in range(2):
        set_seed(7)
        m = build("seq", latent_dim=8, k=5, k_sweep=(5,), kmeans_restarts=1)
        m.fit(train, None, Trainer(TrainConfig(epochs=1, seed=7)))
        runs.append(m)
    for (k, a), b in zip(runs[0].state_dict().items(), runs[1].state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.equal(runs[0].centres, runs[1].centres)


@pytest.mark.slow  # trains to an accuracy on the digits: 3 s
def test_seq_on_digits_reaches_95_percent(digits):
    """>= 95 % test accuracy through the k-means quantizer with K = 50 (about 5 s on 2 CPU cores)."""
    train, test = digits
    model = build("seq", encoder="lae2", k=50, k_sweep=(50,))
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=20, batch_size=64)))
    assert metrics["quantizer_test_accuracy"] >= 0.95, metrics
    pred = model.predict(torch.as_tensor(np.array(test.images)))
    assert float((pred.numpy() == test.labels).mean()) == pytest.approx(metrics["quantizer_test_accuracy"])
    assert metrics["k"] == 50


@pytest.mark.slow
def test_seq_on_mnist_lae2_reaches_97_percent(shared_data):
    train, test = data.load("mnist", "train"), data.load("mnist", "test")
    model = build("seq", in_shape=train.shape, encoder="lae2", k=100, k_sweep=(100,), decoder_epochs=1)
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=2, batch_size=64)))
    assert metrics["quantizer_test_accuracy"] >= 0.97, metrics


# ----- choosing K on a validation split, and saying when the rule is not met -----
def test_validation_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(4), [50, 30, 10, 1])
    fit, val = validation_split(labels, 0.2, seed=3)
    assert len(np.intersect1d(fit, val)) == 0 and len(fit) + len(val) == len(labels)
    assert np.bincount(labels[val], minlength=4).tolist() == [10, 6, 2, 0]  # a class of one stays in training
    again = validation_split(labels, 0.2, seed=3)
    assert np.array_equal(fit, again[0]) and np.array_equal(val, again[1])
    assert not np.array_equal(val, validation_split(labels, 0.2, seed=4)[1])
    fit, val = validation_split(labels, 0.0, seed=3)
    assert len(val) == 0 and np.array_equal(fit, np.arange(len(labels)))


def test_k_is_chosen_on_the_validation_split_never_on_test(digits):
    """The rule reads held-out training rows: the test split can change without moving K."""
    train, test = digits
    other = data.Dataset("digits", "test", test.images[::-1][:200], test.labels[::-1][:200], test.classes)

    def fit(score):
        set_seed(0)
        model = build("seq", encoder="lae2", latent_dim=32, k_sweep=(5, 10, 20, 40), epsilon=0.02,
                      kmeans_restarts=1, decoder_epochs=1)
        return model.fit(train, score, Trainer(TrainConfig(epochs=4, batch_size=64)))

    a, b = fit(test), fit(other)
    assert a["k_rule_split"] == "val" and a["val_size"] == 142 and a["train_size"] == 1437 - 142
    assert [p["val_accuracy"] for p in a["k_curve"]] == [p["val_accuracy"] for p in b["k_curve"]]
    assert a["k_rule"] == b["k_rule"]
    assert a["k_rule"] == choose_k([p["k"] for p in a["k_curve"]], [p["val_accuracy"] for p in a["k_curve"]],
                                   a["encoder_val_accuracy"], 0.02)
    assert [p["test_accuracy"] for p in a["k_curve"]] != [p["test_accuracy"] for p in b["k_curve"]]


def test_an_unmet_rule_warns_and_is_flagged(digits):
    train, test = digits
    set_seed(0)
    model = build("seq", encoder="lae2", latent_dim=16, k_sweep=(1, 2), epsilon=0.0, kmeans_restarts=1,
                  decoder_epochs=1)
    with pytest.warns(RuntimeWarning, match="no K of the sweep"):
        metrics = model.fit(train, test, Trainer(TrainConfig(epochs=2, batch_size=128)))
    assert metrics["k_rule_met"] is False and metrics["k_rule"] == 2 and model.k == 2
    assert rule_met([0.5, 0.9], p_e=0.9, epsilon=0.01) and not rule_met([0.5, 0.9], p_e=0.9, epsilon=0.0)


# ----- the decoder on unpooled CAE-4 features must not go blank -----
def shapes(n_per_style: int = 12, size: int = 28, seed: int = 0):
    """Rendered 28x28 shapes, 4 classes x 2 styles (filled, outlined), jittered in place and size."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, kind in enumerate(("ellipse", "square", "triangle", "cross")):
        for filled in (True, False):
            for _ in range(n_per_style):
                img = Image.new("L", (size, size), 0)
                draw = ImageDraw.Draw(img)
                r = rng.uniform(6, 10)
                cx, cy = rng.uniform(r + 2, size - r - 2, 2)
                box = (cx - r, cy - r, cx + r, cy + r)
                fill, width = (255 if filled else None), 3
                if kind == "ellipse":
                    draw.ellipse(box, fill=fill, outline=255, width=width)
                elif kind == "square":
                    draw.rectangle(box, fill=fill, outline=255, width=width)
                elif kind == "triangle":
                    draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill, outline=255,
                                 width=width)
                else:
                    w = 4 if filled else 2
                    draw.line((cx - r, cy, cx + r, cy), fill=255, width=w)
                    draw.line((cx, cy - r, cx, cy + r), fill=255, width=w)
                images.append(np.asarray(img, np.float32)[None] / 255)
                labels.append(label)
    return np.stack(images), np.asarray(labels, np.int64)


@pytest.mark.slow  # a minute on 2 cores: CAE-4's dense layer sees 28 x 28 x 64 inputs
def test_cae4_decoder_on_rendered_shapes_is_not_blank():
    """Unpooled CAE-4 on 28x28 shapes: the decoded centroids are pictures, and differ."""
    from vqviz.health import check_decoder, check_model

    images, labels = shapes(n_per_style=8)
    names = ("ellipse", "square", "triangle", "cross")
    train = data.Dataset("folder:shapes", "train", images, labels, names)
    set_seed(0)
    model = build("seq", in_shape=(1, 28, 28), n_classes=4, encoder="cae4", latent_dim=32, k=8, k_sweep=(8,),
                  kmeans_restarts=1, decoder_epochs=8, val_fraction=0.0)
    dense = next(m for m in model.encoder if isinstance(m, torch.nn.Linear))
    assert dense.in_features == 28 * 28 * 64  # the paper's CAE-4: no pooling
    model.fit(train, None, Trainer(TrainConfig(epochs=2, batch_size=8, lr=1e-3)))
    centroids = model.centre_images().numpy()
    assert centroids.shape == (8, 1, 28, 28)
    check = check_decoder(centroids, images)
    assert not check["degenerate"], check
    assert centroids.std(axis=(1, 2, 3)).min() > 0.1 * images.std(axis=(1, 2, 3)).mean()  # no blank centroid
    pairwise = np.abs(centroids[:, None] - centroids[None]).mean(axis=(2, 3, 4))
    assert pairwise[~np.eye(8, dtype=bool)].min() > 0.01  # every two differ
    assert not check_model(model, images)["degenerate"]


def test_the_degenerate_decoder_check():
    from vqviz.health import check_decoder, decoder_warning

    gen = np.random.default_rng(0)
    data_ = (gen.random((50, 1, 8, 8)) > 0.5).astype(np.float32)
    assert not check_decoder(data_ * 0.9, data_)["degenerate"]
    blank = check_decoder(np.zeros_like(data_), data_)
    assert blank["degenerate"] and blank["std_ratio"] == 0
    assert "nearly blank" in decoder_warning({"decoder_check": blank})
    same = check_decoder(np.repeat(data_[:1], 50, axis=0), data_)  # every image one picture
    assert same["degenerate"] and same["std_ratio"] > 0.5
    assert "all nearly the same" in decoder_warning({"decoder_check": same})
    assert decoder_warning({}) is None and decoder_warning(None) is None
    assert decoder_warning({"decoder_check": check_decoder(data_, data_)}) is None


def test_a_fixed_k_runs_one_k_means_and_no_rule(digits, monkeypatch):
    from vqviz.models import seq

    fitted = []
    plain = seq.KMeans.fit
    monkeypatch.setattr(seq.KMeans, "fit", lambda self, x: fitted.append(self.n_clusters) or plain(self, x))
    train, test = digits
    stages = []
    model = build("seq", latent_dim=8, k=7, kmeans_restarts=2)
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=1), {"on_stage": stages.append}))
    assert fitted == [7] and model.k == metrics["k"] == 7
    assert [p["k"] for p in metrics["k_curve"]] == [7]
    assert "k_rule" not in metrics and "k_rule_met" not in metrics
    # each restart of the one k-means is reported, then its point of the curve
    assert any("restart 2 of 2" in p.message for p in stages)
    assert stages[-1].terms["k"] == 7 and 0 < stages[-1].terms["test_accuracy"] <= 1


def test_k_auto_sweeps_the_default_ks(digits, monkeypatch):
    from vqviz.models import seq

    fitted = []
    plain = seq.KMeans.fit
    monkeypatch.setattr(seq.KMeans, "fit", lambda self, x: fitted.append(self.n_clusters) or plain(self, x))
    monkeypatch.setattr(seq, "DEFAULT_SWEEP", (4, 8, 16))
    train, test = digits
    model = build("seq", latent_dim=8, k=0, kmeans_restarts=1)
    assert model.config.k_sweep == ()
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=1)))
    assert fitted == [4, 8, 16] and metrics["k_rule"] in (4, 8, 16) and model.k == metrics["k_rule"]


def test_a_checkpoint_saved_with_a_sweep_still_loads():
    from pathlib import Path

    from vqviz import checkpoints

    ckpt = checkpoints.load(Path(__file__).resolve().parents[2] / "vqviz_app" / "checkpoints" / "seq-digits-lae2")
    assert len(ckpt.model.config.k_sweep) > 1  # the sweep it was trained with is kept
    assert ckpt.model.k == ckpt.metrics["k"]


def test_k_means_hears_a_stop_within_one_iteration():
    from vqviz.cluster import KMeans

    class Stop(Exception):
        pass

    calls = []

    def iteration(restart, it):
        calls.append((restart, it))
        if (restart, it) == (1, 3):
            raise Stop

    x = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(Stop):
        KMeans(20, n_init=4, max_iter=100, tol=0.0, on_iteration=iteration).fit(x)
    assert calls[-1] == (1, 3) and calls[0] == (0, 0)
    assert [c for c in calls if c[1] == 0] == [(0, 0), (1, 0)]  # each restart announced before its seeding
    plain = KMeans(5, n_init=2, random_state=3).fit(x)
    heard = KMeans(5, n_init=2, random_state=3, on_iteration=lambda r, i: None).fit(x)
    assert torch.equal(plain.labels_, heard.labels_)  # listening changes nothing
