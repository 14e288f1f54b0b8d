"""vqviz: train, load and explore quantized and clustered autoencoders."""

__version__ = "0.2.0"
