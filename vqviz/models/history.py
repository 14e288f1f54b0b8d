"""Codebook use over training: what a model's quantizer does to a fixed held-out sample, epoch by epoch.

Dead codes and codebook collapse build up during training, and the final figures do not say when.
:class:`CodebookHistory` is an ``on_epoch`` callback that assigns a fixed, seeded sample of the split
that ``fit`` scores on (:meth:`Model.assign`, the one assignment the map and the Assignment entropy
page read) and keeps its usage entropy, perplexity and dead codes (:func:`vqviz.metrics.codebook_usage`,
counted as :meth:`Model.evaluate` counts them: L codebooks each apart, a map of codes as one codebook).
A fit stores the result in its metrics as ``codebook_history``, which the checkpoint keeps.

Which stages are recorded is the family's choice, made in its ``fit``: every epoch of the stages that
train the encoder or the codebook. A stage that trains a decoder alone on frozen latents (SEQ's and
SK-VQ's decoder stages) cannot change any assignment and is not recorded; SEQ, whose quantizer is
fitted by k-means between its encoder and decoder stages, records one entry, at its k-means stage
(epoch 0).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import numpy as np

from .. import metrics

if TYPE_CHECKING:
    from ..data import Dataset
    from ..train import Progress, Trainer
    from .base import Assignment, Model

#: The fields of a history that hold one value per recorded epoch, in order.
SERIES = ("epoch", "stage", "usage_entropy", "perplexity", "dead_codes")


def sample_rows(n: int, size: int, seed: int = 0) -> np.ndarray:
    """(min(n, size),) sorted row indices: the fixed, seeded sample of a split of ``n`` rows (all of
    them when ``size`` >= n)."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def usage_of(model: Model, a: Assignment) -> dict:
    """:func:`vqviz.metrics.codebook_usage` of an assignment, counted as :meth:`Model.evaluate` counts it:
    for L codebooks each apart (lists of L values), for a map of codes every position in one codebook."""
    idx = a.indices.reshape(-1) if model.code_map_shape is not None else a.indices
    return metrics.codebook_usage(idx, a.n_codes)


class CodebookHistory:
    """Records a model's codebook use on a fixed held-out sample after every epoch it watches.

    Parameters
    ----------
    model : the model being trained.
    held_out : the split whose sample is assigned (the one ``fit`` scores on).
    size : images in the sample (all of ``held_out`` if it has fewer); 0 records nothing.
    seed : draws the sample.

    Use it around the stages whose epochs count (:meth:`watching`), or call :meth:`record` after a
    stage without epochs; :meth:`into` adds ``codebook_history`` to a fit's metrics.
    """

    def __init__(self, model: Model, held_out: Dataset, size: int = 2000, seed: int = 0):
        self.model, self.held_out, self.size, self.seed = model, held_out, size, seed
        self.rows = sample_rows(len(held_out.images), size, seed) if size > 0 else np.zeros(0, np.int64)
        self._images: np.ndarray | None = None
        self.entries: dict[str, list] = {key: [] for key in SERIES}
        self.n_codes = 0

    @classmethod
    def for_fit(cls, model: Model, train: Dataset, test: Dataset | None, trainer: Trainer) -> CodebookHistory:
        """The history of a fit: a sample of ``test`` (else ``train``) of the trainer's ``history_sample``,
        drawn with its seed."""
        return cls(model, test if test is not None else train, trainer.config.history_sample, trainer.config.seed)

    @property
    def ready(self) -> bool:
        """Whether there is a sample and a codebook to assign it to (SEQ has none before its k-means)."""
        return len(self.rows) > 0 and self.model.has_quantizer and bool(self.model.n_codes)

    def record(self, stage: str, epoch: int) -> None:
        """Assign the sample and keep its usage as the entry of ``epoch`` (1-based; 0 for a stage
        without epochs) of ``stage``. Every module's train or eval mode is left as it was."""
        if not self.ready:
            return
        if self._images is None:  # taken once: a copy of the sample, not of the split
            self._images = np.ascontiguousarray(self.held_out.images[self.rows], dtype=np.float32)
        modes = [(m, m.training) for m in self.model.modules()]
        try:
            a = self.model.assign(self._images)  # eval mode: no codebook update, no noise, no RNG drawn
        finally:
            for m, training in modes:
                m.training = training
        usage = usage_of(self.model, a)
        self.n_codes = a.n_codes
        for key, value in (("epoch", int(epoch)), ("stage", stage),
                           ("usage_entropy", _each(usage["usage_entropy"], float)),
                           ("perplexity", _each(usage["perplexity"], float)),
                           ("dead_codes", _each(usage["dead_codes"], int))):
            self.entries[key].append(value)

    def on_epoch(self, progress: Progress) -> None:
        """The ``on_epoch`` callback: record the epoch just ended."""
        self.record(progress.stage, progress.epoch)

    @contextmanager
    def watching(self, trainer: Trainer) -> Iterator[CodebookHistory]:
        """Record after every epoch run inside the block. The callback goes first, so that a callback
        which ends the stage (``EndStage``) cannot skip its last epoch."""
        if not len(self.rows):
            yield self
            return
        trainer.add_callback("on_epoch", self.on_epoch, first=True)
        try:
            yield self
        finally:
            trainer.remove_callback("on_epoch", self.on_epoch)

    def as_metric(self) -> dict | None:
        """The history as JSON-ready data (see ``docs/checkpoints.md``), or None if nothing was recorded."""
        if not self.entries["epoch"]:
            return None
        return {**{key: list(values) for key, values in self.entries.items()}, "n_codes": int(self.n_codes),
                "sample": int(len(self.rows)), "split": self.held_out.split}

    def into(self, out: dict) -> dict:
        """``out`` with ``codebook_history`` added, if anything was recorded."""
        history = self.as_metric()
        if history is not None:
            out["codebook_history"] = history
        return out


def _each(value, kind):
    """One value, or a list of L, as ``kind``: dead codes as integers (one codebook's count comes back
    as a float), and an entropy of -0.0 as 0.0."""
    return [kind(v) + 0 for v in value] if isinstance(value, list) else kind(value) + 0
