"""Checks that what a model shows is not silently wrong.

A decoder can collapse to a constant picture: a sigmoid output whose pre-activations
all sit far below zero decodes every latent to black, and its mean squared error is
then that of an all-zero image, which looks like a small number. Nothing in the loss
curve says so. :func:`check_decoder` measures the collapse on a sample of decoded
images, training records its result in the checkpoint's metrics under
``"decoder_check"``, and :func:`decoder_warning` turns that record into the sentence
that the command line prints and the app shows wherever decoded images appear.

A decoder can also draw pictures that vary but say nothing: grey blobs after too short
a training. :func:`check_recognisable` asks an independent reader, a logistic regression
fitted on the training images' pixels, what the decoded cluster centres show, and
records how many it reads as their cluster's label (``recognisable``) beside how many
real test images it reads right (``recognisable_on_data``, the reader's own ceiling).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .models import Model

#: A decoder is degenerate when its decoded images vary, per image, by less than this
#: share of the data's own per-image standard deviation.
BLANK_RATIO = 0.01
#: Decoded centres are unrecognisable when the reader reads fewer of them as their label
#: than this share of its accuracy on real test images.
RECOGNISABLE_RATIO = 0.6
#: Training images the reader is fitted on, and test images it is scored on (a seeded sample).
READER_SAMPLE = 3000


def check_decoder(decoded: np.ndarray, data: np.ndarray, threshold: float = BLANK_RATIO) -> dict:
    """Measure whether decoded images are near-constant.

    Parameters
    ----------
    decoded : (N, C, H, W) decoded images of a sample of the data, in [0, 1].
    data : (M, C, H, W) images of the data set (the reference spread).
    threshold : the ratio below which the decoder counts as degenerate.

    Returns
    -------
    A JSON-ready dict: ``degenerate`` (bool), ``std_ratio`` (the median per-image
    standard deviation of the decoded images over that of the data), ``between_ratio``
    (the spread across decoded images, pixel by pixel, over the data's), and
    ``threshold``. A decoder is degenerate when either ratio is below the threshold:
    every image flat, or every image the same.
    """
    decoded = np.asarray(decoded, dtype=np.float64).reshape(len(decoded), -1)
    data = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    eps = 1e-12
    within = float(np.median(decoded.std(axis=1)) / max(float(np.median(data.std(axis=1))), eps))
    between = float(decoded.std(axis=0).mean() / max(float(data.std(axis=0).mean()), eps))
    return {"degenerate": bool(within < threshold or between < threshold),
            "std_ratio": round(within, 6), "between_ratio": round(between, 6), "threshold": threshold}


def check_model(model: Model, images: np.ndarray, n: int = 512, seed: int = 0) -> dict:
    """:func:`check_decoder` on ``model``'s reconstructions of a seeded sample of ``images``."""
    rows = np.sort(np.random.default_rng(seed).choice(len(images), min(n, len(images)), replace=False))
    sample = np.asarray(images[rows], dtype=np.float32)
    model.eval()
    with torch.no_grad():
        decoded = model.reconstruct(torch.as_tensor(sample, device=model.device)).cpu().numpy()
    return check_decoder(decoded, sample)


def check_recognisable(model: Model, train, test, seed: int = 0, n: int = READER_SAMPLE) -> dict:
    """Whether the decoded cluster centres show their cluster's label, as an independent reader sees them.

    The reader is a logistic regression on the pixels of a seeded sample of ``train``. The
    decoded pictures are each cluster's codeword decoded (the clusters of
    :meth:`Model.assign` on the sample, labelled by the model's own labels or the majority);
    for a model without a codebook, or with a map of codes, the reconstructions of test images.

    Parameters
    ----------
    train, test : the data sets (``images`` (N, C, H, W) in [0, 1], ``labels``).

    Returns
    -------
    A JSON-ready dict: ``recognisable`` (the share of decoded pictures read as their label),
    ``recognisable_on_data`` (the share of real test images read right), ``decoded`` (how many
    pictures were read), ``decoded_what`` (which pictures) and ``recognisable_ratio``; empty for a
    data set of one class.
    """
    from sklearn.linear_model import LogisticRegression

    from .cluster import majority_vote

    n_classes = int(max(train.labels.max(), test.labels.max())) + 1
    if n_classes < 2:
        return {}
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.choice(len(train.images), min(n, len(train.images)), replace=False))
    te = np.sort(rng.choice(len(test.images), min(n, len(test.images)), replace=False))
    x_tr, y_tr = np.asarray(train.images[tr], np.float32), np.asarray(train.labels[tr])
    x_te, y_te = np.asarray(test.images[te], np.float32), np.asarray(test.labels[te])
    reader = LogisticRegression(max_iter=300, random_state=seed).fit(x_tr.reshape(len(x_tr), -1), y_tr)
    on_data = float(reader.score(x_te.reshape(len(x_te), -1), y_te))
    model.eval()
    if model.has_quantizer and model.code_map_shape is None:
        a = model.assign(x_tr)
        own = model.cluster_labels
        if own is not None and a.indices.ndim == 1 and len(own) == a.n_codes:
            labels = own.cpu().numpy().astype(np.int64)
        else:
            labels = majority_vote(a.clusters, y_tr, len(a.codes), n_classes)
        used = np.unique(a.clusters)  # the clusters some sample falls in: the ones a user can click
        centres = model.cluster_centres(a)[used]  # as the Cluster styles page draws them
        decoded, wanted, what = model.decode_array(centres), labels[used], "cluster centres"
    else:
        with torch.no_grad():
            decoded = model.reconstruct(torch.as_tensor(x_te, device=model.device)).cpu().numpy()
        wanted, what = y_te, "reconstructions of test images"
    read = reader.predict(decoded.reshape(len(decoded), -1))
    return {"recognisable": round(float((read == wanted).mean()), 6), "recognisable_on_data": round(on_data, 6),
            "decoded": int(len(decoded)), "decoded_what": what, "recognisable_ratio": RECOGNISABLE_RATIO}


def decoder_check(model: Model, train, test, seed: int = 0) -> dict:
    """What a checkpoint records as its ``decoder_check``: :func:`check_model` on the test
    images and :func:`check_recognisable`, in one JSON-ready dict."""
    return {**check_model(model, test.images, seed=seed), **check_recognisable(model, train, test, seed=seed)}


def decoder_warning(metrics: Mapping | None) -> str | None:
    """The warning to show beside decoded images, or None when the decoder is fine.

    ``metrics`` is a checkpoint's metrics; checkpoints made before the check existed
    have no ``decoder_check`` and get None.
    """
    check = (metrics or {}).get("decoder_check")
    if not isinstance(check, Mapping):
        return None
    if not check.get("degenerate"):
        return _unrecognisable(check)
    within, between = check.get("std_ratio", 0.0), check.get("between_ratio", 0.0)
    what = "are nearly blank" if within < check.get("threshold", BLANK_RATIO) else "are all nearly the same"
    return (f"This model's decoder is degenerate: its decoded images {what} (spread within an image "
            f"{within:.1%} of the data's, across images {between:.1%}). Pictures decoded by it do not show "
            "what its latents hold; retrain it (for example with the BCE reconstruction loss).")


def _unrecognisable(check: Mapping) -> str | None:
    read, ceiling = check.get("recognisable"), check.get("recognisable_on_data")
    ratio = check.get("recognisable_ratio", RECOGNISABLE_RATIO)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (read, ceiling, ratio)) \
            or read >= ratio * ceiling:
        return None
    what = check.get("decoded_what")
    what = what if what in ("cluster centres", "reconstructions of test images") else "decoded pictures"
    label = "their cluster's label" if what == "cluster centres" else "their label"
    return (f"This model's decoded pictures say little: a classifier fitted on the training images reads only "
            f"{read:.0%} of its {'decoded ' * (what == 'cluster centres')}{what} as {label}, where it reads {ceiling:.0%} of "
            "real test images right. The pictures may be blurred or blobs; train longer before reading styles "
            "from them.")


__all__ = ["BLANK_RATIO", "RECOGNISABLE_RATIO", "check_decoder", "check_model", "check_recognisable",
           "decoder_warning"]
