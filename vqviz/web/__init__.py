"""The latent map as the browser draws it: its binary payload (:mod:`.payload`), the blobs that
decode in the browser (:mod:`.blobs`: a decoder, a map's latents) and the built frontend (``static/``, from the repository's ``frontend/`` folder).

The frontend is a Streamlit component (components v2) that draws the map with regl-scatterplot; its
Python side lives with the app (:mod:`vqviz_app.mapview`). The built files sit in this package,
not the app's, because Streamlit serves a component's assets from the import package named after
the distribution (``vqviz``), as declared by ``vqviz/pyproject.toml``. Packing needs only numpy
and Pillow: a notebook can build a payload without Streamlit.
"""

from .blobs import Blob, decoder_blob, latents_blob, pack_blob, unpack_blob
from .payload import Field, MapData, atlas_png, pack, positions, unpack

__all__ = ["Field", "MapData", "pack", "unpack", "positions", "atlas_png", "Blob", "pack_blob", "unpack_blob",
           "decoder_blob", "latents_blob"]
