"""What the app shows, computed here so that its pages stay thin.

Everything goes through the model contract (``encode``, ``decode``, and for a
model with a quantizer ``quantize`` and ``codes``), so every family works:

- :func:`point_table`: the latents of a split with each sample's cluster, the
  cluster's label, right/wrong and assignment entropy (what the map is coloured by);
- :func:`cluster_view`, :func:`selection_view`: the panel of a cluster or a selection
  (decoded centroid, members, label histogram, purity);
- :func:`cluster_table`, :func:`subclasses`: the styles of each class (the SEQ paper's Fig. 4);
- :func:`pick_triplet`, :func:`mixture`, :func:`mixing_picture`: the style mixer (Fig. 5);
- :func:`downstream_scores`: k-means accuracy, NMI, linear probe and reconstruction;
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import metrics
from .errors import ConfigError
from .images import grid, to_uint8
from .models import Model, convex_mix, majority_vote, mixing_grid
from .models.common import batched


# ----- latents and clusters of a split -----
def check_inputs(model: Model, dataset_name: str, shape: tuple[int, ...], trained_on: str = "") -> None:
    """Refuse a data set whose images do not have the shape the model was built for."""
    want = tuple(getattr(model.config, "in_shape", ()) or ())
    if want and tuple(shape) != want:
        fmt = "x".join
        where = f" (it was trained on {trained_on})" if trained_on else ""
        raise ConfigError(f"this checkpoint takes {fmt(map(str, want))} images{where}, but {dataset_name} has "
                          f"{fmt(map(str, shape))} images: pick a checkpoint trained on {dataset_name}")


@dataclass
class PointTable:
    """One row per sample of a split.

    Attributes
    ----------
    latents : (N, d) float32 encoder outputs.
    labels : (N,) true labels.
    clusters : (N,) cluster of each sample (its codeword; for L codebooks, its tuple
        of codewords), or None for a model without a quantizer.
    cluster_labels : (K,) label of each cluster: the model's own (SEQ's majority vote on
        the training set) if it has one, else the majority on this split (-1: no member).
    codes : (K,) or (K, L) indices that give each cluster's codeword through ``model.codes``.
    entropy : (N,) entropy of each sample's assignment probabilities in nats (0 for a
        hard quantizer; for L codebooks the mean over them), or None.
    max_entropy : ln K, the entropy of a uniform assignment over the K codewords.
    """

    latents: np.ndarray
    labels: np.ndarray
    clusters: np.ndarray | None = None
    cluster_labels: np.ndarray | None = None
    codes: np.ndarray | None = None
    entropy: np.ndarray | None = None
    max_entropy: float = 0.0

    @property
    def has_clusters(self) -> bool:
        return self.clusters is not None

    @property
    def predicted(self) -> np.ndarray | None:
        """(N,) the label of each sample's cluster."""
        return None if self.clusters is None else self.cluster_labels[self.clusters]

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.clusters, minlength=len(self.cluster_labels))

    @property
    def purity(self) -> np.ndarray:
        """(K,) fraction of each cluster's members whose label is the cluster's (NaN if empty)."""
        right = np.bincount(self.clusters, weights=self.predicted == self.labels, minlength=len(self.sizes))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.sizes > 0, right / np.maximum(self.sizes, 1), np.nan)


def point_table(model: Model, images: np.ndarray, labels: np.ndarray, n_classes: int | None = None,
                batch_size: int = 1024) -> PointTable:
    """Encode a split once and, for a model with a quantizer, assign every sample."""
    labels = np.array(labels)  # a writable copy: torch warns about read-only arrays
    z = model.encode_array(images, batch_size)
    if not model.has_quantizer:
        return PointTable(z, labels)
    indices, probs = [], []
    with torch.no_grad():
        for part in torch.as_tensor(z).split(batch_size):
            q = model.quantize(part.to(model.device))
            indices.append(q.indices.cpu())
            probs.append(q.probs.cpu())
    idx, p = torch.cat(indices).numpy(), torch.cat(probs).numpy()
    k = p.shape[-1]
    rows = p.reshape(-1, k)
    entropy = metrics.assignment_entropy(rows).reshape(len(z), -1).mean(1)
    if idx.ndim == 1:
        clusters, codes = idx.astype(np.int64), np.arange(k)
    else:  # L codebooks: a cluster is one tuple of codewords that occurs in the split
        codes, clusters = np.unique(idx, axis=0, return_inverse=True)
        clusters = clusters.reshape(-1).astype(np.int64)
    own = getattr(model, "cluster_labels", None)
    if own is not None and idx.ndim == 1 and len(own) == k:
        cluster_labels = own.cpu().numpy().astype(np.int64)
    else:
        cluster_labels = majority_vote(clusters, labels, len(codes), n_classes)
    return PointTable(z, labels, clusters, cluster_labels, codes, entropy, float(np.log(k)))


def centroid_images(model: Model, table: PointTable) -> np.ndarray:
    """(K, C, H, W): every cluster's codeword (SEQ: its k-means centre), decoded."""
    with torch.no_grad():
        centres = model.codes(torch.as_tensor(table.codes, device=model.device))
    return model.decode_array(centres.cpu())


# ----- the cluster panel -----
@dataclass
class GroupView:
    """A cluster, or a selection of points, as the map's side panel shows it.

    Attributes
    ----------
    title : e.g. "Cluster 17".
    label : the cluster's label (-1: none; for a selection, its most frequent label).
    rows : (n,) the members' row numbers in the split.
    centroid : (C, H, W) the decoded codeword (a selection: its decoded mean latent).
    members : (m, C, H, W) up to ``n_members`` members, chosen at random (seeded).
    histogram : (n_classes,) members per true label.
    purity : fraction of members whose label is ``label`` (NaN for no member).
    """

    title: str
    label: int
    rows: np.ndarray
    centroid: np.ndarray
    members: np.ndarray
    histogram: np.ndarray
    purity: float


def selected_rows(selection: dict | None) -> np.ndarray:
    """Row numbers of the points of a plotly selection, from each point's ``customdata[0]``.

    Plotly's ``point_index`` counts within each trace, so the map puts the global row
    number first in every point's customdata (a list, or from a typed array a dict
    ``{"0": row, ...}``).
    """
    rows = []
    for point in (selection or {}).get("points", []):
        data = point.get("customdata")
        if isinstance(data, dict):  # a row of a typed array arrives as {"0": row, "1": ...}
            data = data.get("0", data.get(0))
        elif isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if data is not None:
            rows.append(int(data))
    return np.unique(np.asarray(rows, dtype=np.int64))


def clusters_of(table: PointTable, rows: np.ndarray) -> list[int]:
    """The clusters of ``rows``, the one holding most of them first."""
    if not table.has_clusters or len(rows) == 0:
        return []
    counts = np.bincount(table.clusters[rows])
    order = np.argsort(-counts, kind="stable")
    return [int(k) for k in order if counts[k] > 0]


def _view(title, label, rows, centroid, images, labels, n_classes, n_members, seed) -> GroupView:
    hist = np.bincount(labels[rows], minlength=n_classes) if len(rows) else np.zeros(n_classes, np.int64)
    if label < 0 and len(rows):
        label = int(hist.argmax())
    purity = float(hist[label] / len(rows)) if len(rows) and label >= 0 else float("nan")
    rng = np.random.default_rng(seed)
    shown = np.sort(rng.choice(rows, min(n_members, len(rows)), replace=False)) if len(rows) else rows
    return GroupView(title, int(label), rows, centroid, images[shown], hist, purity)


def cluster_view(model: Model, table: PointTable, images: np.ndarray, cluster: int, n_classes: int,
                 n_members: int = 24, seed: int = 0) -> GroupView:
    """The panel of one cluster: its decoded codeword and its members in this split."""
    rows = np.flatnonzero(table.clusters == cluster)
    with torch.no_grad():
        code = model.codes(torch.as_tensor(table.codes[cluster : cluster + 1], device=model.device))
    return _view(f"Cluster {cluster}", int(table.cluster_labels[cluster]), rows, model.decode_array(code.cpu())[0],
                 images, table.labels, n_classes, n_members, seed)


def selection_view(model: Model, table: PointTable, images: np.ndarray, rows: np.ndarray, n_classes: int,
                   n_members: int = 24, seed: int = 0) -> GroupView:
    """The panel of selected points (for a model without clusters): their decoded mean latent."""
    rows = np.asarray(rows, dtype=np.int64)
    centroid = model.decode_array(table.latents[rows].mean(0, keepdims=True))[0]
    return _view(f"{len(rows)} selected", -1, rows, centroid, images, table.labels, n_classes, n_members, seed)


# ----- cluster styles (the SEQ paper's Fig. 4) -----
def cluster_table(table: PointTable) -> dict[int, list[int]]:
    """Cluster indices by label, largest first within each label; label -1 holds unused clusters."""
    order = np.argsort(-table.sizes, kind="stable")
    groups: dict[int, list[int]] = {}
    for k in order:
        groups.setdefault(int(table.cluster_labels[k]), []).append(int(k))
    return dict(sorted(groups.items(), key=lambda item: (item[0] < 0, item[0])))


def subclasses(table: PointTable, images: np.ndarray, label: int, n_members: int = 8,
               seed: int = 0) -> list[tuple[int, np.ndarray]]:
    """(cluster, member images) for each non-empty cluster of ``label``, largest first.

    The members shown are the ``n_members`` nearest to the cluster's mean latent in
    this split, so that each row shows the cluster's typical style.
    """
    out = []
    for k in cluster_table(table).get(label, []):
        rows = np.flatnonzero(table.clusters == k)
        if len(rows) == 0:
            continue
        z = table.latents[rows]
        near = rows[np.argsort(((z - z.mean(0)) ** 2).sum(1), kind="stable")[:n_members]]
        out.append((k, images[near]))
    return out


# ----- the style mixer (the SEQ paper's section 3.3, Fig. 5) -----
MIX_SOURCES = ("random", "one cluster", "clusters of one class")


def pick_triplet(table: PointTable, source: str, seed: int = 0, cluster: int | None = None,
                 label: int | None = None) -> np.ndarray:
    """Three row numbers to mix.

    ``"random"``: any three samples. ``"one cluster"``: three members of ``cluster``.
    ``"clusters of one class"``: the most typical member (nearest its cluster's mean)
    of three different clusters labelled ``label``, i.e. three styles of one class.
    """
    rng = np.random.default_rng(seed)
    n = len(table.labels)
    if source == "random" or not table.has_clusters:
        return rng.choice(n, 3, replace=n < 3)
    if source == "one cluster":
        rows = np.flatnonzero(table.clusters == cluster)
        if len(rows) == 0:
            raise ConfigError(f"cluster {cluster} has no member in this split")
        return rng.choice(rows, 3, replace=len(rows) < 3)
    if source == "clusters of one class":
        ks = [k for k in cluster_table(table).get(label, []) if table.sizes[k] > 0]
        if not ks:
            raise ConfigError(f"no cluster of class {label} has a member in this split")
        chosen = rng.choice(ks, 3, replace=len(ks) < 3)
        out = []
        for k in chosen:
            rows = np.flatnonzero(table.clusters == k)
            z = table.latents[rows]
            typical = rows[np.argsort(((z - z.mean(0)) ** 2).sum(1), kind="stable")]
            out.append(next((r for r in typical if r not in out), typical[0]))
        return np.asarray(out)
    raise ConfigError(f"unknown source {source!r}; choose one of {', '.join(MIX_SOURCES)}")


def mixture(model: Model, latents: np.ndarray, alphas: tuple[float, float]) -> np.ndarray:
    """(C, H, W): the decoded a1 z1 + a2 z2 + (1 - a1 - a2) z3 of three (3, d) latents."""
    z = convex_mix(torch.as_tensor(np.asarray(latents, dtype=np.float32)), alphas)
    return model.decode_array(z[None])[0]


#: Frame colours of z1, z2 and z3 in the mixing picture (red, green, blue, colour-blind-safe shades).
MARKS = ((213, 94, 0), (0, 158, 115), (0, 114, 178))


def mixing_picture(model: Model, latents: np.ndarray, steps: int = 6, scale: int = 4, gap: int = 8,
                   frame: int = 4) -> np.ndarray:
    """The Fig. 5 triangle as one (H', W', 3) uint8 picture: z1 top left, z2 top right,
    z3 bottom right, each framed in its colour of :data:`MARKS`.

    ``scale`` enlarges each decoded image; ``gap`` and ``frame`` are in screen pixels.
    """
    z, cells = mixing_grid(torch.as_tensor(np.asarray(latents, dtype=np.float32)), steps)
    tiles = to_uint8(model.decode_array(z))
    if tiles.shape[-1] == 1:
        tiles = np.repeat(tiles, 3, axis=-1)
    tiles = tiles.repeat(scale, 1).repeat(scale, 2)
    h, w = tiles.shape[1:3]
    out = np.full((steps * (h + gap) + gap, steps * (w + gap) + gap, 3), 255, dtype=np.uint8)
    corners = {(0, 0): 0, (0, steps - 1): 1, (steps - 1, steps - 1): 2}
    for tile, (row, col, *_) in zip(tiles, cells):
        row, col = int(row), int(col)
        y, x = gap + row * (h + gap), gap + col * (w + gap)
        if (row, col) in corners:
            out[y - frame : y + h + frame, x - frame : x + w + frame] = MARKS[corners[row, col]]
        out[y : y + h, x : x + w] = tile
    return out


def framed(images: np.ndarray, scale: int = 1, frame: int = 6) -> list[np.ndarray]:
    """Each of three (C, H, W) images, enlarged ``scale`` times, in a frame of its colour of :data:`MARKS`."""
    out = []
    for image, colour in zip(images, MARKS):
        tile = grid(image[None], pad=0, scale=scale)
        tile = np.repeat(tile, 3, axis=-1) if tile.shape[-1] == 1 else tile
        picture = np.empty((tile.shape[0] + 2 * frame, tile.shape[1] + 2 * frame, 3), dtype=np.uint8)
        picture[:] = colour
        picture[frame:-frame, frame:-frame] = tile
        out.append(picture)
    return out


# ----- downstream scores across checkpoints -----
def downstream_scores(model: Model, train, test, max_train: int = 10_000, random_state: int = 0) -> dict:
    """The soft VQ-VAE paper's downstream protocol on one model.

    k-means (as many clusters as classes) on the test latents, scored by Hungarian
    accuracy and NMI; a linear probe trained on at most ``max_train`` training
    latents (a seeded subsample) and scored on the test set; the reconstruction
    error of the test images through the model's own path (its quantizer included).
    """
    rng = np.random.default_rng(random_state)
    keep = np.sort(rng.choice(len(train), min(max_train, len(train)), replace=False))
    z_train = model.encode_array(train.images[keep])
    z_test = model.encode_array(test.images)
    out = metrics.kmeans_scores(z_test, test.labels, n_clusters=test.n_classes, random_state=random_state)
    out["linear_probe"] = metrics.linear_probe(z_train, train.labels[keep], z_test, test.labels,
                                               random_state=random_state)
    x = torch.as_tensor(np.array(test.images, dtype=np.float32))
    model.eval()
    x_hat = batched(lambda b: model.reconstruct(b.to(model.device)).cpu(), x)
    out.update(metrics.reconstruction_errors(x, x_hat))
    return out


# ----- uploaded checkpoints -----
#: Limits on an uploaded checkpoint .zip: compressed size, unpacked size, and entries.

__all__ = ["PointTable", "GroupView", "point_table", "check_inputs", "centroid_images",
           "selected_rows", "clusters_of", "cluster_view", "selection_view", "cluster_table", "subclasses",
           "pick_triplet", "mixture", "mixing_picture", "framed", "downstream_scores",
           "MIX_SOURCES", "MARKS"]


# ----- codebook usage and assignment entropy (the SK-VQ paper's Table 1) -----
@dataclass
class CodebookStats:
    """How a model uses its codebook on one split, and how sure each assignment is.

    Usage is that of the hard assignment the model makes in evaluation (``quantize``'s
    indices, as ``Model.evaluate`` counts it); the per-sample entropy is that of its
    soft assignment where it has one (``soft_probs``, else ``quantize``'s ``probs``).

    Attributes
    ----------
    n_codes : K, the codewords of each codebook.
    counts : (L, K) samples assigned to each codeword of each of the L codebooks (L = 1
        for one codebook).
    order : (L, K) each codebook's codewords, most used first (ties by index).
    usage_entropy : (L,) entropy of each codebook's usage frequencies, in nats (at most ln K).
    perplexity : (L,) exp(usage_entropy): the effective number of codewords in use.
    dead_codes : (L,) codewords that no sample of the split is assigned to.
    entropy : (N,) entropy of each sample's assignment probabilities, in nats (for L
        codebooks the mean over them); all 0 for a hard (one-hot) quantizer.
    soft_source : where the probabilities come from: "soft_probs" or "quantize".
    """

    n_codes: int
    counts: np.ndarray
    order: np.ndarray
    usage_entropy: np.ndarray
    perplexity: np.ndarray
    dead_codes: np.ndarray
    entropy: np.ndarray
    soft_source: str = "quantize"

    @property
    def n_codebooks(self) -> int:
        return len(self.counts)

    @property
    def max_entropy(self) -> float:
        """ln K: the entropy of a uniform assignment, and the largest usage entropy."""
        return float(np.log(self.n_codes))

    @property
    def sorted_counts(self) -> np.ndarray:
        """(L, K) each codebook's counts, largest first."""
        return np.take_along_axis(self.counts, self.order, 1)

    @property
    def hard(self) -> bool:
        """True when every assignment is one-hot, so that every per-sample entropy is 0."""
        return not self.entropy.any()


def codebook_stats(model: Model, images: np.ndarray, batch_size: int = 1024) -> CodebookStats:
    """Codebook usage over a whole split and each sample's assignment entropy.

    Parameters
    ----------
    model : a model with a quantizer (``model.has_quantizer``).
    images : (N, C, H, W) the split.

    Returns
    -------
    CodebookStats; its usage numbers are those of :func:`metrics.codebook_usage` on the
    model's indices, its entropies :func:`metrics.assignment_entropy` of the model's
    soft probabilities (SK-VQ's ``soft_probs``, softmax(-lambda d + log alpha-bar); soft
    VQ-VAE's posterior; one-hot for the nearest-codeword and k-means quantizers).
    """
    if not model.has_quantizer:
        raise ConfigError(f"{model.name} has no codebook: usage and assignment entropy need a quantizer")
    soft = getattr(model, "soft_probs", None)
    z = model.encode_array(images, batch_size)
    if len(z) == 0:
        raise ConfigError("codebook statistics of no samples")
    indices, probs = [], []
    with torch.no_grad():
        for part in torch.as_tensor(z).split(batch_size):
            part = part.to(model.device)
            q = model.quantize(part)
            indices.append(q.indices.cpu())
            probs.append((soft(part) if callable(soft) else q.probs).cpu())
    idx, p = torch.cat(indices).numpy(), torch.cat(probs).numpy()
    k = p.shape[-1]
    usage = metrics.codebook_usage(idx, k)
    counts = np.asarray(usage["counts"], dtype=np.int64).reshape(-1, k)  # (L, K)
    # (N, K) or (N, L, K) -> (N,): one entropy per sample, the mean over its L codebooks
    entropy = metrics.assignment_entropy(p.reshape(-1, k)).reshape(len(z), -1).mean(1)
    return CodebookStats(
        n_codes=k, counts=counts, order=np.argsort(-counts, axis=1, kind="stable"),
        usage_entropy=np.atleast_1d(np.asarray(usage["usage_entropy"], dtype=np.float64)),
        perplexity=np.atleast_1d(np.asarray(usage["perplexity"], dtype=np.float64)),
        dead_codes=np.atleast_1d(np.asarray(usage["dead_codes"], dtype=np.int64)),
        entropy=entropy, soft_source="soft_probs" if callable(soft) else "quantize")


def has_codebook(family: str, config: dict) -> bool:
    """Whether a checkpoint has a codebook, read from its meta.json without loading it:
    its family has a quantizer, and its config's ``quantizer`` (where the family has that
    setting, as SK-VQ does) is not "none"."""
    from .models import get

    try:
        cls = get(family)
    except ConfigError:
        return False
    return bool(cls.has_quantizer) and (config or {}).get("quantizer") != "none"


__all__ += ["CodebookStats", "codebook_stats", "has_codebook"]
