"""SEQ, the Supervised-Encoding Quantizer (Le, Ko and Chen, arXiv 1910.11067).

1. An encoder is pre-trained with a linear + softmax head and cross-entropy (section 2.1);
   its test accuracy is P_E.
2. k-means on the frozen training features; each cluster is labelled by majority vote and
   a sample is classified by the label of its nearest centre (P_Q, section 2.2). K is the
   smallest value of a sweep with P_Q > P_E - epsilon (the paper's rule; Fig. 3 is the sweep).
3. A decoder is trained on the frozen features, L = ||X - D(sg[E(X)])||^2 (section 2.3).

The k-means centres are the quantizer's codebook: ``quantize`` returns the nearest
centre, and decoding the centres gives each cluster's "style" (Fig. 4).

Where this departs from the paper, and why:

- **K is chosen on a validation split** (``val_fraction`` of the training data, held
  out of every stage, stratified and seeded), where the paper does not say which split
  its rule reads. Choosing on the test split would make the reported P_Q optimistic; the
  test split is only reported. When no K of the sweep meets P_Q > P_E - epsilon, the
  model says so (a warning and ``metrics["k_rule_met"] = False``) and uses the K with
  the best validation accuracy.
- **The decoder outputs logits and is trained with BCE by default**, as the authors'
  code does (the paper says MSE, which ``recon_loss="mse"`` keeps). With MSE on a
  sigmoid output, a decoder on unpooled CAE-4 features can start with every
  pre-activation far below zero and never leave: it decodes everything to black.
- **CAE-4 does not pool** (``vqviz.nets``), as neither the paper nor the authors' code does.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import distributed
from ..cluster import KMeans, majority_vote, nearest
from ..errors import ConfigError
from ..nets import build_decoder, build_encoder
from ..train import Trainer
from ..utils import to_tensor
from .base import Model
from .common import QuantizerOutput, batched, reconstruction_loss
from .config import ModelConfig, check_choice, check_number
from .history import CodebookHistory
from .registry import register

if TYPE_CHECKING:
    from ..data import Dataset


@dataclass
class SEQConfig(ModelConfig):
    """Settings of a SEQ model.

    Attributes
    ----------
    encoder : the network, "lae2" (the default; also what "auto" means), "lae4", "cae4", "cae4_pool" or "mlp" (layers in vqviz.nets).
    latent_dim : size of the encoded feature (128 in the paper).
    recon_loss : the decoder's loss on its logits, per pixel: "bce" (the authors' code) or "mse" (the paper).
    latent_activation : "relu" (as the authors' code) or "none".
    k : number of clusters; 0 ("auto") lets the paper's rule pick it from the sweep. A fixed K
        runs one k-means, unless ``k_sweep`` is given too.
    k_sweep : the values of K scored for the accuracy-vs-K curve (Fig. 3); empty means none for a
        fixed K, and :data:`DEFAULT_SWEEP` for K = 0.
    epsilon : tolerance of the K rule, P_Q > P_E - epsilon (0.005 = half a percent).
    val_fraction : share of the training data held out, stratified, to choose K on; 0 chooses on the training data itself.
    kmeans_restarts : k-means++ restarts; the lowest inertia wins.
    decoder_epochs : epochs of the decoder stage; 0 means the trainer's epochs.
    """

    encoder: str = "lae2"
    latent_dim: int = 128
    latent_activation: str = "relu"
    k: int = 0
    k_sweep: tuple[int, ...] = ()
    epsilon: float = 0.005
    val_fraction: float = 0.1
    kmeans_restarts: int = 4
    decoder_epochs: int = 0

    RECON_LOSSES: ClassVar[tuple[str, ...]] = ("bce", "mse")
    MIN_CLASSES: ClassVar[int] = 2
    K_FIELD: ClassVar[str | None] = "k"

    def auto_encoder(self, in_shape: tuple[int, int, int]) -> str:
        return "lae2"

    def validate(self) -> None:
        self.k_sweep = tuple(sorted({int(k) for k in self.k_sweep}))
        check_choice("latent_activation", self.latent_activation, ("relu", "none"))
        check_number("val_fraction", self.val_fraction, high=0.49)
        if self.k < 0 or any(k < 1 for k in self.k_sweep):
            raise ConfigError(f"k must be positive (or 0: the rule picks it from the sweep), and every K of "
                              f"k_sweep too; got k={self.k}, k_sweep={self.k_sweep}")
        if not 0 <= self.epsilon < 1:
            raise ConfigError(f"epsilon is a fraction of accuracy in [0, 1), got {self.epsilon}")
        if self.kmeans_restarts < 1 or self.decoder_epochs < 0:
            raise ConfigError(f"kmeans_restarts must be at least 1 and decoder_epochs at least 0, "
                              f"got {self.kmeans_restarts} and {self.decoder_epochs}")


#: The K values swept when K is "auto" (k = 0) and no ``k_sweep`` is given: the paper's Fig. 3.
DEFAULT_SWEEP = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120)


def sweep_of(config: SEQConfig) -> tuple[int, ...]:
    """The K values a fit scores: ``k_sweep`` if given, the default sweep for K = 0, else none."""
    return config.k_sweep or (DEFAULT_SWEEP if config.k == 0 else ())


def choose_k(ks, accuracies, p_e: float, epsilon: float) -> int:
    """The SEQ paper's rule: the smallest K with P_Q(K) > P_E - epsilon.

    If no K qualifies, the K with the highest accuracy (the smallest among ties);
    :func:`rule_met` tells the two cases apart.
    """
    ks, accuracies = list(ks), list(accuracies)
    if not ks or len(ks) != len(accuracies):
        raise ConfigError("choose_k needs one accuracy per K")
    good = [k for k, a in zip(ks, accuracies) if a > p_e - epsilon]
    if good:
        return min(good)
    best = max(accuracies)
    return min(k for k, a in zip(ks, accuracies) if a == best)


def rule_met(accuracies, p_e: float, epsilon: float) -> bool:
    """Whether any K of the sweep meets the rule P_Q(K) > P_E - epsilon."""
    return any(a > p_e - epsilon for a in accuracies)


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation): ``fraction`` of each class held out, seeded.

    Every class keeps at least one training row; a class of one row stays whole in training.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        held.append(rows[: min(int(round(fraction * len(rows))), len(rows) - 1)])
    val = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(labels)), val), val


def _accuracy(pred: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> float:
    return float((np.asarray(pred) == np.asarray(labels)).mean())


@register
class SEQ(Model):
    """Supervised-Encoding Quantizer: encoder, softmax head, k-means quantizer, decoder."""

    Config = SEQConfig
    name = "seq"
    CENTRE_MEANING = "its k-means centre passed through the decoder"

    def __init__(self, config: SEQConfig):
        super().__init__(config)
        c = config
        self.encoder = build_encoder(c.encoder, c.in_shape, c.latent_dim, c.latent_activation)
        self.head = nn.Linear(c.latent_dim, c.n_classes)
        # Logits out (the sigmoid is in decode): the BCE is computed from them, and the
        # parameters are named as with a final sigmoid, so older checkpoints load.
        self.decoder = build_decoder(c.encoder, c.in_shape, c.latent_dim, logits=True)
        # The quantizer's state lives in the checkpoint's JSON (extra_state), not in
        # the weights file; non-persistent buffers still follow .to(device).
        self.register_buffer("centres", torch.zeros(0, c.latent_dim), persistent=False)
        self.register_buffer("_cluster_labels", torch.zeros(0, dtype=torch.long), persistent=False)

    # ----- the contract -----
    @property
    def k(self) -> int:
        """Number of clusters of the fitted quantizer (0 before ``fit``)."""
        return len(self.centres)

    @property
    def n_codes(self) -> int:
        """K, the k-means clusters (0 before ``fit``)."""
        return self.k

    @property
    def cluster_labels(self) -> torch.Tensor:
        """(K,) each cluster's majority-vote label."""
        return self._cluster_labels

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Cluster indices -> their centres."""
        return self.centres[indices]

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """Nearest k-means centre: a hard assignment, so ``probs`` is one-hot."""
        if self.k == 0:
            raise ConfigError("this SEQ model has no quantizer yet: call fit() first")
        idx = nearest(z, self.centres)
        zero = z.new_zeros(())
        return QuantizerOutput(self.centres[idx], idx, F.one_hot(idx, self.k).to(z.dtype), zero, {})

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N,): the label of each sample's nearest centre (P_Q)."""
        return self.cluster_labels[self.quantize(self.encode(x)).indices]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N,): the encoder's own softmax prediction (P_E)."""
        return self.head(self.encode(x)).argmax(1)

    def centre_images(self) -> torch.Tensor:
        """(K, C, H, W): each cluster's mean feature, decoded (the paper's Fig. 4, row 1)."""
        with torch.no_grad():
            return self.decode(self.centres)

    def extra_state(self) -> dict:
        return {"centres": self.centres.cpu().tolist(), "cluster_labels": self.cluster_labels.cpu().tolist()}

    def load_extra_state(self, state: dict) -> None:
        centres = torch.tensor(state.get("centres", []), dtype=torch.float32).reshape(-1, self.config.latent_dim)
        labels = torch.tensor(state.get("cluster_labels", []), dtype=torch.long)
        if len(labels) != len(centres):
            raise ConfigError(f"{len(centres)} centres but {len(labels)} cluster labels")
        self.centres = centres.to(self.centres.device)
        self._cluster_labels = labels.to(self.centres.device)

    def set_quantizer(self, centres: torch.Tensor, labels: np.ndarray | torch.Tensor) -> None:
        """Install k-means centres (K, d) and their cluster labels (K,)."""
        self.load_extra_state({"centres": centres.tolist(), "cluster_labels": list(map(int, labels))})

    # ----- training -----
    def fit(self, train: Dataset, test: Dataset | None, trainer: Trainer) -> dict:
        """Run the three stages; return P_E, the K curve, the chosen K, reconstruction error and the
        codebook history (one entry, at the k-means stage: no later stage moves a code).

        ``val_fraction`` of ``train`` is held out of all three stages: the K rule reads
        the accuracies on it. P_E, P_Q and the curve's ``test_accuracy`` are on ``test``.
        """
        cfg, dev = self.config, trainer.device
        self.to(dev)
        trainer.plan(["encoder", "kmeans", "decoder"])
        x_all, y_all = to_tensor(train.images), to_tensor(train.labels)
        fit_rows, val_rows = (torch.as_tensor(r) for r in
                              validation_split(train.labels, cfg.val_fraction, trainer.config.seed))
        x, y = x_all[fit_rows], y_all[fit_rows]
        metrics: dict = {"train_size": len(fit_rows), "val_size": len(val_rows)}

        # 1. Supervised encoder: linear + softmax head, cross-entropy (section 2.1).
        def ce(xb, yb):
            logits = self.head(self.encode(xb))
            return {"loss": F.cross_entropy(logits, yb),
                    "accuracy": (logits.argmax(1) == yb).float().mean().detach()}

        t0 = time.perf_counter()
        trainer.run("encoder", [*self.encoder.parameters(), *self.head.parameters()], ce, (x, y),
                    modules=(self.encoder, self.head))
        metrics["encoder_seconds"] = time.perf_counter() - t0
        z_train = self._features(x, dev)
        metrics["encoder_train_accuracy"] = _accuracy(self._argmax_head(z_train), y)
        # The split the K rule reads: the held-out rows, or the training rows without them.
        rule_split = "val" if len(val_rows) else "train"
        z_val, y_val = (self._features(x_all[val_rows], dev), y_all[val_rows]) if len(val_rows) else (z_train, y)
        p_e_val = _accuracy(self._argmax_head(z_val), y_val)
        metrics[f"encoder_{rule_split}_accuracy"] = p_e_val
        score = train
        z_score, y_score = z_train, y
        if test is not None:
            z_score, y_score = self._features(to_tensor(test.images), dev), to_tensor(test.labels)
            metrics["encoder_test_accuracy"] = _accuracy(self._argmax_head(z_score), y_score)
            score = test
        p_e = _accuracy(self._argmax_head(z_score), y_score)
        metrics["p_e"] = p_e

        # 2. k-means: one K, or the sweep and the K rule (section 2.2, Fig. 3), read on the validation rows.
        t0 = time.perf_counter()
        sweep_ks = sweep_of(cfg)
        ks = sorted({k for k in (*sweep_ks, cfg.k) if 0 < k <= len(x)})
        if not ks:
            raise ConfigError(f"every K in {sweep_ks} (and k={cfg.k}) exceeds the {len(x)} training samples")
        curve, fits = [], {}
        for i, k in enumerate(ks):
            def iteration(restart: int, it: int, i=i, k=k) -> None:  # a stop is heard within one iteration
                trainer.report("kmeans", (i + restart / cfg.kmeans_restarts) / len(ks),
                               f"K={k} ({i + 1} of {len(ks)}): restart {restart + 1} of {cfg.kmeans_restarts}, "
                               f"iteration {it}")

            km = KMeans(k, n_init=cfg.kmeans_restarts, random_state=trainer.config.seed,
                        on_iteration=iteration).fit(z_train)
            labels = majority_vote(km.labels_, y, k, cfg.n_classes)
            point = {"k": k, "train_accuracy": _accuracy(labels[km.labels_.cpu().numpy()], y),
                     "inertia": km.inertia_}
            if len(val_rows):
                point["val_accuracy"] = _accuracy(labels[km.predict(z_val).cpu().numpy()], y_val)
            point[f"{score.split}_accuracy"] = _accuracy(labels[km.predict(z_score).cpu().numpy()], y_score)
            curve.append(point)
            fits[k] = (km.cluster_centers_, labels)
            trainer.report("kmeans", (i + 1) / len(ks),
                           f"K={k}: {rule_split} accuracy {point[f'{rule_split}_accuracy']:.4f}", terms=point)
        metrics.update(k_curve=curve)
        k = cfg.k
        if sweep_ks:
            sweep = [p for p in curve if p["k"] in sweep_ks] or curve
            sweep_acc = [p[f"{rule_split}_accuracy"] for p in sweep]
            k_rule = choose_k([p["k"] for p in sweep], sweep_acc, p_e_val, cfg.epsilon)
            met = rule_met(sweep_acc, p_e_val, cfg.epsilon)
            if not met:
                warnings.warn(f"no K of the sweep {[p['k'] for p in sweep]} meets the SEQ rule P_Q > P_E - "
                              f"{cfg.epsilon:g} on the {rule_split} split (P_E = {p_e_val:.4f}, best P_Q = "
                              f"{max(sweep_acc):.4f}); K = {k_rule} is the most accurate K, not the rule's",
                              RuntimeWarning, stacklevel=2)
            k = cfg.k or k_rule
            metrics.update(k_rule=k_rule, k_rule_met=met, k_rule_split=rule_split, epsilon=cfg.epsilon)
        self.set_quantizer(*fits[k])
        # Every rank ran the same k-means on the same gathered features; rank 0's result is the one kept.
        self.centres = distributed.broadcast(self.centres)
        self._cluster_labels = distributed.broadcast(self._cluster_labels)
        # Its one entry of codebook use: the decoder stage trains on frozen features, so no code moves after this.
        history = CodebookHistory.for_fit(self, train, test, trainer)
        history.record("kmeans", 0)
        chosen = next(p for p in curve if p["k"] == k)
        metrics.update(k=k, quantizer_train_accuracy=chosen["train_accuracy"],
                       kmeans_seconds=time.perf_counter() - t0)
        if test is not None:
            metrics["quantizer_test_accuracy"] = chosen["test_accuracy"]

        # 3. Decoder on the frozen features sg[E(x)] (section 2.3). The encoder is
        # frozen, so its features are computed once rather than at every step.
        def recon(zb, xb):
            return {"loss": self.reconstruction_loss(self.decoder(zb), xb)}

        t0 = time.perf_counter()
        trainer.run("decoder", self.decoder.parameters(), recon, (z_train, x), modules=(self.decoder,),
                    epochs=cfg.decoder_epochs or None)
        metrics["decoder_seconds"] = time.perf_counter() - t0
        xs = to_tensor(test.images) if test is not None else x
        x_hat = batched(lambda b: self.decode(b).cpu(), z_score)
        metrics[f"{score.split}_recon_mse"] = float(F.mse_loss(x_hat, xs))
        self.eval()
        return history.into(metrics)

    def reconstruction_loss(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The decoder's loss from its logits, a per-pixel mean: BCE or MSE of the sigmoid."""
        return reconstruction_loss(logits, x, self.config.recon_loss, per_pixel=True).mean()

    def _features(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        """The encoder's features of every row of ``x``; under torchrun each rank encodes a share."""
        self.eval()
        return distributed.map_shards(lambda part: batched(lambda b: self.encode(b.to(device)), part), x)

    def _argmax_head(self, z: torch.Tensor) -> torch.Tensor:
        return batched(lambda b: self.head(b).argmax(1).cpu(), z)
