"""Open what you have in hand in the explorer: a model, or a file of latents.

:func:`explore` saves it where the app lists checkpoints (:func:`vqviz.workflow.checkpoints_dir`) and
returns the link to its view; :func:`open_latents` turns a file of latents (:mod:`vqviz.data.latents`)
into a checkpoint of the ``latents`` family (:class:`vqviz.models.table.LatentTable`) beside a checked
copy of the file, the data set ``latents:<copy>``. ``vqviz app --latents FILE`` calls it too.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

from . import checkpoints, data
from .cluster import KMeans
from .data import latents as files
from .errors import ConfigError
from .models import Model
from .models.table import LatentTable
from .workflow import checkpoints_dir

#: Where the app listens unless told otherwise (Streamlit's port).
DEFAULT_URL = "http://127.0.0.1:8501"
#: The most rows x codes x codebooks of a file of latents: its one-hot assignment is that many float32s.
MAX_ASSIGNMENT = 2**28


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "latents"


def open_latents(source: str | os.PathLike | files.Latents, out: str | os.PathLike | None = None, *,
                 k: int | None = None, name: str = "", seed: int = 0) -> Path:
    """Check a file of latents and save it as a checkpoint the app lists; return the checkpoint's folder.

    Parameters
    ----------
    source : a ``.npz`` or ``.parquet`` file of latents, or a :class:`~vqviz.data.latents.Latents`.
    out : the checkpoint folder (default: ``latents-<name>-<hash>`` in the app's checkpoints folder).
    k : clusters of the k-means that gives a file without codes its clusters (default: one per class,
        at least 2, or 10 without labels; never more than the rows).
    name : what the checkpoint and messages call the file (default: its file name).

    The folder holds the checkpoint and ``latents.npz``, the checked copy of the file (image paths read
    into images) that is its data set, ``latents:<folder>/latents.npz``.

    Raises
    ------
    DataError : the file breaks a rule of :mod:`vqviz.data.latents`, with a message that names it.
    """
    got = source if isinstance(source, files.Latents) else files.read(source, name=name)
    stem = _safe(name or (Path(source).stem if not isinstance(source, files.Latents) else "latents"))
    if out is None:
        digest = hashlib.sha256(np.ascontiguousarray(got.latents).tobytes()).hexdigest()[:10]
        out = checkpoints_dir() / f"latents-{stem}-{digest}"
    out = Path(out)
    codes, how = got.codes, "codes"
    if codes is None:  # k-means gives the clusters that the file does not
        n_classes = len(got.classes) if got.labels is not None else 0
        k = min(k or (max(2, n_classes) if n_classes else 10), got.n)
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        codes = KMeans(k, random_state=seed).fit(got.latents).labels_
        codes, how = np.asarray(codes, dtype=np.int64), "kmeans"
    k_all = int(codes.max()) + 1
    if got.n * k_all * (1 if codes.ndim == 1 else codes.shape[1]) > MAX_ASSIGNMENT:
        raise ConfigError(f"{got.source}: its codes run up to {k_all - 1:,} over {got.n:,} rows, too many to show "
                          f"(vqviz.explorer.MAX_ASSIGNMENT = {MAX_ASSIGNMENT:,} row-codes); number them from 0")
    out.mkdir(parents=True, exist_ok=True)
    copy = files.write(out / "latents.npz", got.latents, got.labels, got.images, got.codes,
                       got.classes if got.labels is not None else None)
    shape = tuple(got.images.shape[1:]) if got.images is not None else files.NO_IMAGES
    model = LatentTable.of(got.latents, codes, shape, len(got.classes) or 1, clusters_from=how)
    dataset = f"latents:{copy.resolve()}"
    metrics = model.evaluate(files.as_dataset(got, dataset, "test"))  # the rows in hand, not read back
    return checkpoints.save(model, out, dataset=dataset, split_sizes={"train": got.n, "test": got.n},
                            metrics=metrics)


def view_url(checkpoint: str | os.PathLike, dataset: str, base: str = DEFAULT_URL) -> str:
    """The link that opens the app on ``checkpoint`` and ``dataset``, on the Latent map."""
    query = {"page": "latent_map", "checkpoint": str(Path(checkpoint).resolve()), "dataset": dataset}
    return f"{base.rstrip('/')}/?{urlencode(query)}"


def _listening(base: str) -> bool:
    host, _, port = base.split("//", 1)[-1].partition(":")
    try:
        with socket.create_connection((host, int(port.split("/")[0] or 80)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


def explore(what: Model | str | os.PathLike | files.Latents, dataset: str | None = None, *,
            out: str | os.PathLike | None = None, url: str = DEFAULT_URL, k: int | None = None,
            quiet: bool = False) -> str:
    """Open a model, or a file of latents, in the explorer: save it where the app looks, print the link to
    its view (and how to start the app, if it is not running) and return the link.

    Parameters
    ----------
    what : a trained :class:`~vqviz.models.Model` (``vqviz.wrap``'s included), a ``.npz`` or ``.parquet``
        file of latents, or :class:`~vqviz.data.latents.Latents`.
    dataset : the data set a model is shown on (``"mnist"``, ``"folder:PATH"``; required for a model);
        a file of latents is its own.
    out : the checkpoint folder (default: one in :func:`~vqviz.workflow.checkpoints_dir`).
    url : where the app listens.
    k : a file of latents without codes: the clusters of its k-means.
    """
    if isinstance(what, Model):
        if not dataset:
            raise ConfigError("explore(model, dataset): name the data set the model is shown on, e.g. 'mnist'")
        shape = data.shape_of(dataset)
        if shape is not None and tuple(shape) != tuple(what.config.in_shape):
            raise ConfigError(f"the model takes {tuple(what.config.in_shape)} images, but {dataset} has {shape}")
        folder = Path(out) if out is not None else checkpoints_dir() / f"{_safe(what.name)}-{_safe(dataset)}"
        folder = checkpoints.save(what, folder, dataset=dataset)
    else:
        if dataset:
            raise ConfigError("a file of latents is its own data set: leave dataset out")
        folder = open_latents(what, out, k=k)
        dataset = checkpoints.read_meta(folder)["dataset"]
    link = view_url(folder, dataset, url)
    if not quiet:
        print(f"saved {folder}\nopen {link}")
        listed = [checkpoints_dir(), *(Path(p) for p in os.environ.get("VQVIZ_CHECKPOINTS", "").split(os.pathsep) if p)]
        if not any(Path(folder).resolve().is_relative_to(p.expanduser().resolve()) for p in listed):
            print(f"the app lists it when VQVIZ_CHECKPOINTS names {Path(folder).resolve().parent}")
        if not _listening(url):
            print("the app is not running: start it with `vqviz app`")
    return link
