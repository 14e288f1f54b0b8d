"""The app's shared small widgets and the page guard: counts in words, a duration, an error or a
decoder's warning shown the same way on every page, and :func:`run_page`, which keeps a failing
page from showing a traceback."""

from __future__ import annotations

import gc
import logging
import sys
from typing import Callable

import streamlit as st

from vqviz import analysis
from vqviz.errors import VqvizError

from . import catalog, figures
from .state import Context, Loaded

log = logging.getLogger(__name__)


def plural(n: int, word: str, many: str | None = None) -> str:
    """A count and its noun, in the right number: "1 member", "2 members", "1,000 classes" (``many``
    for an irregular plural)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def duration(seconds: float) -> str:
    """Seconds as people say them: "45 s", "2 min", "2 min 05 s"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min" + (f" {seconds % 60:02d} s" if seconds % 60 else "")


def listed(values) -> str:
    """1, 2 and 3."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} and {values[-1]}"


def error(e: BaseException) -> None:
    """Show an intended error's message (its line breaks kept)."""
    st.error(catalog.printable(str(e)).replace("\n", "  \n"), icon=":material/error:")


def decoder_warning(loaded: Loaded) -> None:
    """Warn beside decoded images when the checkpoint recorded a degenerate decoder."""
    message = loaded.decoder_warning
    if message is not None:
        st.warning(message, icon=":material/warning:")


def codebook_history(entry: catalog.Entry, colour: str = "#1f77b4") -> None:
    """The checkpoint's codebook use over training (its perplexity and dead codes after every epoch),
    or one line saying why it has none."""
    h = analysis.usage_history(entry.metrics)
    if h is None:
        st.caption(f"{entry.label} has no codebook, so no codebook use over training." if not entry.has_codebook
                   else f"No codebook history: {entry.label} has none (made before vqviz recorded one, trained "
                        "with `history_sample=0`, or not trained here).")
        return
    st.plotly_chart(figures.codebook_history_figure(h, colour), width="stretch", config=figures.PLAIN)
    once = len(h.epoch) == 1 and h.epoch[0] == 0
    when = (f"Its codebook is fitted once, at its {h.stage[0]} stage, and no later stage moves a code: one point"
            if once else "After every epoch that trains the encoder or the codebook")
    st.caption(f"{when}, on a fixed sample of {plural(h.sample, h.split + ' image')}: the perplexity, the number of "
               "codewords in effective use (at most K), and the dead codes, codewords no image of the sample gets. "
               "A collapse shows as the perplexity falling while dead codes rise.")


#: What a page says where a model cannot draw: a wrapped encoder without a decoder.
NO_DECODER = "This model has no decoder"


def no_decoder(loaded: Loaded, what: str) -> bool:
    """Say that this model has no decoder, so ``what`` (e.g. "no mixture is drawn") cannot be shown, and
    return True; return False, saying nothing, for a model that decodes."""
    if loaded.model.has_decoder:
        return False
    st.info(f"{NO_DECODER}: {what}.", icon=":material/hide_image:")
    return True


def run_page(render: Callable[[Context], None], sidebar: Callable[[str], Context], page: str = "") -> None:
    """Draw the sidebar (``sidebar(page)``, :func:`vqviz_app.sidebar.sidebar`), then the page
    ``render(ctx)`` with its choice; a VqvizError or a bug in either becomes a message, never a
    traceback. ``page`` is the page's URL path, kept in the view's link."""
    try:
        render(sidebar(page))
    except VqvizError as e:
        error(e)
    except Exception as e:  # a bug: say so in the page, log the traceback on the server
        log.exception("page %s failed", getattr(render, "__module__", render))
        st.error(f"Something went wrong ({type(e).__name__}: {e}). The rest of the app still works; "
                 "the details are in the server's log.", icon=":material/bug_report:")


_modules = [0]


def freeze_new_imports() -> None:
    """After a run that imported modules, move every object alive into the garbage collector's
    permanent generation (``gc.freeze``), so that later collections skip the hundreds of
    thousands of objects the libraries hold for the life of the server.

    Runs only when the count of imported modules grew, so it freezes a bounded set: what the
    imports made, and what was alive beside them then.
    """
    if len(sys.modules) > _modules[0]:
        _modules[0] = len(sys.modules)
        gc.collect()
        gc.freeze()
