"""What the sidebar picked, passed to each page as an object."""

from __future__ import annotations

from dataclasses import dataclass

from vqviz import checkpoints, data
from vqviz.analysis import PointTable

from .catalog import Entry

#: What the map can be coloured by; all but "label" need a model with a quantizer.
COLOURS = {"label": "True label", "cluster": "Cluster", "predicted": "Predicted label",
           "correct": "Right / wrong", "entropy": "Assignment entropy"}
#: The splits the sidebar offers; "all" is train then test (the whole 70,000 of MNIST).
SPLITS = ("test", "train", "all")


@dataclass(frozen=True)
class Context:
    """What the sidebar picked, for every page of this run: data set, split, checkpoint
    (None when there is none) and what the map is coloured by."""

    dataset: str
    split: str
    entry: Entry | None
    colour: str


@dataclass
class Loaded:
    """The sidebar's choice, loaded: checkpoint, data split and the split's point table."""

    entry: Entry
    ckpt: checkpoints.Checkpoint
    data: data.Dataset
    table: PointTable

    @property
    def model(self):
        return self.ckpt.model

    @property
    def classes(self) -> tuple[str, ...]:
        return self.data.classes

    @property
    def decoder_warning(self) -> str | None:
        """The warning to show beside this model's decoded images, or None."""
        from vqviz.health import decoder_warning

        return decoder_warning(self.entry.metrics)
