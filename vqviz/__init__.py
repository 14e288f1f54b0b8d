"""vqviz: train, load and explore quantized and clustered autoencoders.

``vqviz.wrap(encoder, decoder, quantizer, factory=...)`` puts a model you already have behind the
model contract (:func:`vqviz.models.wrap`); ``vqviz.explore(model_or_latents, dataset)`` opens what
you have in the explorer (:func:`vqviz.explorer.explore`). Both are imported when first asked for, so that
``import vqviz.errors`` (or reading the version) loads no torch.
"""

__version__ = "0.2.0"


def __getattr__(name: str):
    if name == "wrap":  # PEP 562: the public face of the library, loaded when first used
        from .models import wrap

        return wrap
    if name == "explore":
        from .explorer import explore

        return explore
    raise AttributeError(f"module 'vqviz' has no attribute {name!r}")
