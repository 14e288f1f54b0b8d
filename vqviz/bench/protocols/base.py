"""What a protocol is made of: the runs it trains, the figures of its table, and the protocol itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Run:
    """One model to train: its label in the protocol, registry name, config and budget.

    ``model`` "" trains nothing: the protocol's ``score`` gets None, and {"seed": seed} for the
    metrics, and scores the pixels (a paper's "raw data" row).
    """

    label: str
    model: str
    config: dict
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    #: Train until the training loss stops improving (``vqviz.train.plateau``); ``epochs`` is then a ceiling.
    until_plateau: bool = False


@dataclass(frozen=True)
class Figure:
    """One line of the table: a number computed from one seed's runs, and the paper's.

    ``value(runs)`` takes {run label: that run's figures} for one seed. ``paper`` is the
    paper's number on this data set (None: the paper gives none); ``comparable`` is False
    where the paper measured it on other data or in other units, so only the trend compares.
    """

    source: str
    model: str
    metric: str
    value: Callable[[dict], float]
    uses: tuple[str, ...]
    paper: float | None = None
    better: str = "higher"
    comparable: bool = True
    percent: bool = False
    note: str = ""


@dataclass
class Protocol:
    """A paper's experiment: the runs, how to score one, the figures and the known differences."""

    name: str
    paper: str
    datasets: tuple[str, ...]
    runs: Callable[[str], list[Run]]
    score: Callable[[object, dict, object, object, bool], dict]
    figures: Callable[[str], list[Figure]]
    differences: str
    paper_epochs: str = ""
    #: Runs whose every seed the notes below the table list, with the figures they give for each:
    #: ((run label, ((figure key, column title, percent), ...)), ...).
    per_seed: tuple = ()


def pick(label: str, key: str) -> Callable[[dict], float]:
    """A :attr:`Figure.value`: the figure ``key`` of the run ``label``."""
    return lambda runs: runs[label][key]


def pct(value: float | None) -> float | None:
    """A paper's percentage as a fraction (the table's unit); None stays None."""
    return None if value is None else value / 100
