"""Image data sets as arrays: the bundled digits, MNIST, Fashion-MNIST, CIFAR-10, a folder, a file of latents.

Every data set comes back from :func:`load` as a :class:`Dataset` of images
``(N, C, H, W)`` float32 in [0, 1]. Files are looked for in the explicit ``data_dir``,
then in ``$VQVIZ_DATA/<name>/``, ``/usr/share/datasets/<name>/`` (where Debian's
``dataset-fashion-mnist`` installs) and the cache ``$XDG_CACHE_HOME/vqviz/<name>/``
(default ``~/.cache/vqviz``). Missing files are downloaded into the cache
(``$VQVIZ_MIRROR`` overrides the mirror) and checked against SHA-256 sums; local
copies are not, as distributions re-gzip them.

Adding a data set is one module with one decorated reader (:func:`register_dataset`),
imported below. The caps (``MAX_IDX_BYTES``, ``MAX_IMAGE_PIXELS``, ...) live in the
module that applies them; each is also a setting of this package, read and written
through it: ``vqviz.data.MAX_IMAGE_PIXELS = 2**20`` changes ``vqviz.data.folder``'s.
"""

from __future__ import annotations

from vqviz.utils import package_settings

from . import download, paths, registry
from . import digits, idx, cifar, folder, latents  # noqa: F401  the order of registration is the order of NAMES
from .idx import read_idx, write_idx
from .registry import (SPLITS, Dataset, Progress, cache_dir, find_dir, load, register_dataset, register_scheme,
                       search_dirs, shape_of)

__all__ = ["Dataset", "Progress", "load", "find_dir", "search_dirs", "cache_dir", "read_idx", "write_idx",
           "register_dataset", "register_scheme", "shape_of", "NAMES", "SPLITS"]

#: Each setting of this package, and the module that owns it.
_SETTINGS = {
    **dict.fromkeys(("NAMES", "MAX_CLASSES"), registry),
    **dict.fromkeys(("SYSTEM_DIR", "CACHE_DIR"), paths),
    **dict.fromkeys(("MIRRORS", "CHECKSUMS", "SIZES", "TIMEOUT", "MAX_DOWNLOAD_BYTES",
                     "DOWNLOAD_DEADLINE", "STALE_SECONDS"), download),
    "MAX_IDX_BYTES": idx,
    **dict.fromkeys(("MAX_PICKLE_BYTES", "MAX_PICKLE_OPS", "MAX_PICKLE_DEPTH"), cifar),
    **dict.fromkeys(("MAX_IMAGE_PIXELS", "MAX_FOLDER_FILES", "MAX_FOLDER_DEPTH", "MAX_DATASET_BYTES",
                     "IMAGE_SUFFIXES", "MAX_IMAGE_FILE_BYTES", "MAX_IMAGE_SECONDS", "MAX_FOLDER_SECONDS"), folder),
    **dict.fromkeys(("MAX_LATENTS_FILE_BYTES", "MAX_DECODED_BYTES", "MAX_ROWS", "MAX_DIM", "MAX_CODES"), latents),
}
package_settings(__name__, _SETTINGS)
