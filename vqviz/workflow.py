"""Train a registered model on a named data set and save it: what the command line
and the app both call, so neither holds any per-model code."""

from __future__ import annotations

import time
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Callable

from . import checkpoints, data, distributed, health
from .checkpoints import Checkpoint
from .models import build, get
from .train import TrainConfig, Trainer
from .utils import set_seed

#: Config fields that come from the data set rather than from the user.
DATA_FIELDS = ("in_shape", "n_classes")


def checkpoints_dir() -> Path:
    """Where trained checkpoints go unless told otherwise, and where the app lists them:
    ``$XDG_DATA_HOME/vqviz/checkpoints`` (else ``~/.local/share/vqviz/checkpoints``)."""
    return data.paths.user_data_dir() / "checkpoints"


def default_out(name: str, dataset: str) -> Path:
    """The default checkpoint folder, e.g. ``~/.local/share/vqviz/checkpoints/seq-digits``."""
    safe = dataset.replace("folder:", "folder-").replace("/", "_").strip("_")
    return checkpoints_dir() / f"{name}-{safe}"


def train(name: str, dataset: str = "digits", *, data_dir: str | None = None, out: str | Path | None = None,
          train_config: TrainConfig | None = None, callbacks: dict[str, Callable] | None = None,
          download_progress: Callable[[int, int], None] | None = None, overwrite: bool = False,
          **config) -> Checkpoint:
    """Train model ``name`` on ``dataset`` and write its checkpoint to ``out``.

    ``config`` holds the model's settings (its config dataclass's fields); the
    input shape and number of classes come from the data. The checkpoint is
    written only once training has finished, so a run that diverges or is
    stopped leaves any earlier checkpoint at ``out`` untouched.
    ``download_progress(done, total)`` reports bytes if the data must be downloaded.
    If ``out`` holds a checkpoint of the same model and data set that scores clearly
    better, it is kept in ``<out>.previous`` (the returned checkpoint's ``previous``
    says where, ``previous_message`` why), unless ``overwrite``.

    Under ``torchrun`` (inside :func:`vqviz.distributed.session`) every process trains
    its share, rank 0 downloads the data first and alone writes the checkpoint, and
    every rank returns it.
    """
    train_config = train_config or TrainConfig()
    with distributed.main_first():  # one download into a shared cache, not one per rank
        train_set = data.load(dataset, "train", data_dir, progress=download_progress)
        test_set = data.load(dataset, "test", data_dir, progress=download_progress)
    known = {f.name for f in fields(get(name).Config)}
    from_data = {"in_shape": train_set.shape, "n_classes": train_set.n_classes}
    config = {**{k: v for k, v in from_data.items() if k in known}, **config}
    set_seed(train_config.seed)  # the initial weights too come from the seed
    model = build(name, **config)
    trainer = Trainer(train_config, callbacks)
    t0 = time.perf_counter()
    metrics = model.fit(train_set, test_set, trainer)
    metrics["train_seconds"] = time.perf_counter() - t0
    # No picture may be silently wrong: a decoder that collapsed to a constant image is
    # recorded in the checkpoint (the app shows it beside every decoded image) and said now.
    if model.has_decoder:  # a wrapped encoder may come without one: then nothing is drawn
        metrics["decoder_check"] = health.decoder_check(model, train_set, test_set, seed=train_config.seed)
    if message := health.decoder_warning(metrics):
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    metrics["device"] = str(trainer.device)
    if distributed.active():
        metrics["processes"] = distributed.world_size()
    folder = Path(out or default_out(name, dataset))
    kept = None
    with distributed.main_first():
        if distributed.is_main():
            if not overwrite:
                kept = checkpoints.keep_if_better(folder, name, dataset, metrics)
            checkpoints.save(model, folder, dataset=dataset,
                             split_sizes={"train": len(train_set), "test": len(test_set)},
                             seed=train_config.seed, metrics=metrics, train_config=train_config)
    ckpt = checkpoints.load(folder)
    if kept is not None:
        ckpt.previous, ckpt.previous_message = kept
    return ckpt
