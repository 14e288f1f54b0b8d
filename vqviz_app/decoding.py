"""Decoding in the browser: the decoder a page sends (its ONNX export, :mod:`vqviz.export`), or why the
server decodes instead; and what decoding under the cursor needs on the Latent map.

A decoder goes to the browser when the model has one, it exports to ONNX, and the file is at most
:data:`vqviz.export.MAX_BROWSER_BYTES`. The export is written beside the checkpoint on first use and
read back after. Where no decoder can be sent, or the browser could not run it, the page says why and
the server decodes as before.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st

from vqviz import export
from vqviz.analysis import placement
from vqviz.errors import VqvizError
from vqviz.web import Blob, decoder_blob, latents_blob

from vqviz_app import cache
from vqviz_app.mapview import Decode
from vqviz_app.state import Loaded

#: Map points mixed for a spot without an exact inverse: as many as the server mixes on a click.
K_MIX = placement.K_NEIGHBOURS
#: The most bytes of map points and latents sent for decoding under the cursor (a million 64-dimensional
#: latents are 264 MB: past this, a click decodes on the server).
MAX_LATENT_BYTES = 64 * 2**20


class InBrowser(NamedTuple):
    """The decoder's blob for the browser, or None and why the server decodes instead."""

    blob: Blob | None
    why: str = ""


def decoder(loaded: Loaded) -> InBrowser:
    """The loaded model's decoder for the browser (exported on first use, then read from its file)."""
    if not loaded.model.has_decoder:
        return InBrowser(None, "this model has no decoder")
    return _decoder(loaded.view.path, loaded.view.stamp, int(loaded.table.latents.shape[1]))


@st.cache_resource(max_entries=4, show_spinner="Exporting the decoder for the browser...")
def _decoder(path: str, stamp: int, d: int) -> InBrowser:
    ckpt = cache.checkpoint(path, stamp)
    model = ckpt.model
    try:
        file = export.decoder_file(model, ckpt.path, ckpt.meta["weights"]["sha256"])
        size = file.stat().st_size
        if size > export.MAX_BROWSER_BYTES:
            return InBrowser(None, f"its decoder is {_size(size)}, more than the {_size(export.MAX_BROWSER_BYTES)} "
                                   "sent to a browser")
        onnx = file.read_bytes()
    except (VqvizError, OSError, KeyError) as e:
        return InBrowser(None, f"its decoder cannot be exported to ONNX ({str(e)[:200]})")
    return InBrowser(decoder_blob(onnx, model.config.in_shape, d))


def _size(n: int) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 2**10:,.0f} kB"


def under_cursor(key: object, model: placement.MapModel, blob: Blob) -> Decode | str:
    """What decoding under the cursor needs for the shown map ``model`` (a
    :class:`~vqviz.analysis.placement.MapModel`): PCA's exact inverse when the server has it, else the map's
    points and latents, mixed as the server mixes them for a click; or why it cannot be sent."""
    if model.projector is not None and model.method == "pca":
        pca, fit = model.projector.model_, model.projector
        d = int(fit.n_features_in_)
        inverse = dict(kind="pca", mean=pca.mean_.tolist(), components=pca.components_.tolist(),
                       offset=[float(v) for v in fit.offset_], d=d,
                       how="PCA's exact inverse")
        return Decode(blob, inverse)
    size = len(model.latents) * (model.latents.shape[1] + 2) * 4
    if size > MAX_LATENT_BYTES:
        return (f"the map's {len(model.latents):,} latents are {_size(size)}, more than the "
                f"{_size(MAX_LATENT_BYTES)} sent to a browser to mix them (PCA's map needs none of them)")
    how = f"a mix of the {K_MIX} nearest map points"
    if model.method == "umap":  # a click fits UMAP's model, where the map is small enough, to invert it
        how += " (a click may decode by UMAP's inverse_transform)"
    return Decode(blob, dict(kind="mix", k=K_MIX, how=how), _latents(key, model.map_xy, model.latents))


@st.cache_resource(max_entries=2, show_spinner=False)
def _latents(key: object, _map_xy: np.ndarray, _latents: np.ndarray) -> Blob:
    """The blob of the map ``key``'s points and latents, packed once per map."""
    return latents_blob(_map_xy, _latents)
