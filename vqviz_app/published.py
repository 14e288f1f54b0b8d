"""The published ``bench repro`` results that ship with the app, read as plain data.

``python -m vqviz bench repro`` writes ``<dataset>.json`` into this package's ``results/`` folder
with everything the Metrics page shows: each table row's numbers and, in ``shown``, the text it is
shown with; the paper each row cites; SEQ's Fig. 3 curves and the paper's best. This module reads
that file and nothing else, so the app never imports the benchmark (:mod:`vqviz.bench`), research
code that changes with every experiment.

``VQVIZ_RESULTS`` names another folder of results files (say, a server that publishes its own runs).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from vqviz.errors import VqvizError
from vqviz.utils import read_regular

#: The results that ship inside the package.
FOLDER = Path(__file__).resolve().parent / "results"
#: The environment variable naming another folder.
ENV = "VQVIZ_RESULTS"
#: The largest results file read: the published ones weigh about 0.3 MB.
MAX_BYTES = 64 * 2**20
#: What every row of the table holds as text; ``shown`` holds ``SHOWN``.
ROW = ("model", "metric", "verdict", "budget", "source", "citation")
SHOWN = ("ours", "paper", "time")


class ResultsError(VqvizError):
    """A results file that cannot be read, or is not one that ``bench repro`` wrote."""


class Results(NamedTuple):
    """One data set's published results, as the Metrics page shows them.

    Attributes
    ----------
    dataset : the data set the runs were measured on
    rows : the table, one dict per figure: ``model``, ``metric``, ``verdict``, ``budget``, ``source``
        (the table or figure of the paper), ``citation`` (the paper), ``shown`` ({"ours", "paper",
        "time"}: the text of our mean ± std, of the paper's number, of the training time), and the
        numbers behind them (``mean``, ``std``, ``seeds``, ``paper``, ``percent``...)
    seq_curves : SEQ's Fig. 3, {encoder name: {"k": [K...], "test_accuracy": [P_Q...], "p_e": P_E}}
    seq_paper_best : the paper's best accuracy in Fig. 3 on this data set, or None
    path : the file read
    """

    dataset: str
    rows: list[dict]
    seq_curves: dict[str, dict]
    seq_paper_best: float | None
    path: Path


def folder() -> Path:
    """The folder of results files: ``$VQVIZ_RESULTS``, else the package's :data:`FOLDER`."""
    return Path(os.environ.get(ENV) or FOLDER).expanduser()


def file(dataset: str, where: str | Path | None = None) -> Path | None:
    """The results file of ``dataset`` in ``where`` (default :func:`folder`); None for a name that is
    not a plain file name (a data set named ``../x`` has no published results)."""
    if not dataset or dataset.startswith(".") or Path(dataset).name != dataset:
        return None
    return Path(where or folder()) / f"{dataset}.json"


def read(dataset: str, where: str | Path | None = None) -> Results | None:
    """The published results of ``dataset`` in ``where`` (default :func:`folder`); None if there are none.

    Raises
    ------
    ResultsError
        The file cannot be read, is larger than :data:`MAX_BYTES`, is not JSON, or lacks what the page
        shows (a file written by an older ``bench repro``: ``--table-only`` rewrites it).
    """
    path = file(dataset, where)
    if path is None:
        return None
    try:
        raw = read_regular(path, MAX_BYTES, error=ResultsError, what=f"the results file {path}")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ResultsError(f"cannot read the results file {path}: {e.strerror or e}") from None
    try:
        body = json.loads(raw)
    except ValueError as e:  # a UnicodeDecodeError too
        raise ResultsError(f"{path} is not JSON ({e})") from None
    problem = _problem(body)
    if problem:
        raise ResultsError(f"{path} is not a results file of `bench repro` ({problem}); if an older version "
                           f"wrote it, `python -m vqviz bench repro --dataset {dataset} --table-only` rewrites it")
    return Results(body.get("dataset", dataset), body["table"], body["seq_curves"], body["seq_paper_best"], path)


def _problem(body) -> str:
    """What ``body`` lacks of a results file, or "" if nothing."""
    if not isinstance(body, dict):
        return "not a JSON object"
    for key, kind in (("table", list), ("seq_curves", dict)):
        if not isinstance(body.get(key), kind):
            return f"no {key!r}"
    if not _number_or_none(body.get("seq_paper_best", "")):
        return "no number in 'seq_paper_best'"
    for i, row in enumerate(body["table"]):
        shown = row.get("shown") if isinstance(row, dict) else None
        if not isinstance(shown, dict) or any(not isinstance(row.get(k), str) for k in ROW) \
                or any(not isinstance(shown.get(k), str) for k in SHOWN):
            return f"row {i} of the table lacks the text of {', '.join(ROW)} or shown: {', '.join(SHOWN)}"
    for name, c in body["seq_curves"].items():
        if not _curve(c):
            return f"the SEQ curve of {name!r} is not lists of K and accuracies of the same length, and a P_E"
    return ""


def _curve(c) -> bool:
    """Whether ``c`` is {"k": [...], "test_accuracy": [...], "p_e": number}, the lists of numbers, as long."""
    if not isinstance(c, dict) or not isinstance(c.get("k"), list) or not isinstance(c.get("test_accuracy"), list):
        return False
    numbers = [*c["k"], *c["test_accuracy"], c.get("p_e")]
    return bool(c["k"]) and len(c["k"]) == len(c["test_accuracy"]) and all(_number(v) for v in numbers)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_or_none(value) -> bool:
    return value is None or _number(value)
