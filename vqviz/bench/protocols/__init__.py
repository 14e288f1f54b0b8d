"""The seed papers' protocols: what `bench repro` trains, how it scores a run, and the papers' numbers.

Each :class:`Protocol` (:mod:`.base`) lists its runs (:class:`Run`: a model, its config and the
paper's budget), a ``score`` that turns a trained model into figures, and the rows of the table
(:class:`Figure`), each with the paper's number on the data set and whether it compares. One
module per paper: :mod:`.seq`, :mod:`.softvq`, :mod:`.skvq`, :mod:`.dvq`, :mod:`.clustervae`; and
:mod:`.quantizers`, a comparison of quantizers that is no paper's.
"""

from __future__ import annotations

from . import clustervae, dvq, quantizers, seq, skvq, softvq
from .base import Figure, Protocol, Run
from .seq import SEQ_NAMES, SEQ_PAPER_BEST
from .skvq import SKVQ_COMMON

#: Every protocol by name, in the order of the tables.
PROTOCOLS = {p.name: p for p in (seq.PROTOCOL, softvq.PROTOCOL, skvq.PROTOCOL, dvq.PROTOCOL, clustervae.PROTOCOL,
                                      quantizers.PROTOCOL)}

__all__ = ["PROTOCOLS", "Figure", "Protocol", "Run", "SEQ_NAMES", "SEQ_PAPER_BEST", "SKVQ_COMMON"]
