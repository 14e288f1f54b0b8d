"""One checkpoint format for every model: a folder with two files.

``meta.json``
    Format tag and version, model name, config, training settings, data set,
    split sizes, seed, metrics, library versions, the model's extra state
    (SEQ: k-means centres and cluster labels), and the weights file's name and
    SHA-256. Its schema is :mod:`vqviz.schema`.
``weights-<sha>.safetensors``
    The weights. safetensors holds raw tensors only, so loading runs no code.

One module per idea:

- :mod:`.saving`: :func:`save`, atomic, under the folder's writer lock (:func:`writer_lock`);
- :mod:`.loading`: :func:`read_meta` and :func:`load`, each part checked before it is trusted,
  and :func:`find`;
- :mod:`.summaries`: what a catalogue lists about a checkpoint (:func:`summary`);
- :mod:`.keeping`: :func:`keep_if_better`, which keeps a clearly better old checkpoint aside;
- :mod:`.upload`: :func:`install_checkpoint_zip`, an uploaded ``.zip`` checked and installed.

The caps (``MAX_PARAMS``, ``MAX_META_BYTES``, ``LOCK_TIMEOUT``, ``MAX_ZIP_BYTES``, ...) live in the
module that applies them; each is also a setting of this package, read and written through it:
``vqviz.checkpoints.MAX_PARAMS = 10**9`` changes ``vqviz.checkpoints.loading``'s.
"""

from __future__ import annotations

from ..schema import FORMAT, FORMAT_VERSION, META, WEIGHTS_NAME
from ..utils import package_settings
from . import loading, saving, upload
from .keeping import HEADLINES, headline, keep_if_better
from .loading import PICKLE_SUFFIXES, Checkpoint, find, load, read_meta
from .saving import LOCK, save, writer_lock
from .summaries import HEADLINE, summary, summary_of
from .upload import install_checkpoint_zip

__all__ = ["Checkpoint", "save", "load", "read_meta", "find", "summary", "summary_of", "keep_if_better",
           "headline", "install_checkpoint_zip", "writer_lock", "FORMAT", "FORMAT_VERSION", "META",
           "WEIGHTS_NAME", "LOCK", "PICKLE_SUFFIXES", "HEADLINE", "HEADLINES"]

#: Each setting of this package, and the module that owns it.
_SETTINGS = {
    **dict.fromkeys(("MAX_META_BYTES", "MAX_PARAMS", "MAX_HEADER_BYTES", "READ_RETRIES"), loading),
    "LOCK_TIMEOUT": saving,
    **dict.fromkeys(("MAX_ZIP_BYTES", "MAX_UNPACKED_BYTES", "MAX_ENTRIES", "MAX_CENTRAL_DIRECTORY"), upload),
}
package_settings(__name__, _SETTINGS)
