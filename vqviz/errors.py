"""The package's exceptions: one base class, one subclass per kind of failure.

Callers (the command line, the app) catch :class:`VqvizError` and show its
message; anything else is a bug.
"""


class VqvizError(Exception):
    """Base class of every error that vqviz raises on purpose."""


class DataError(VqvizError):
    """A data set is missing, unreadable or malformed. The message names the file."""


class CheckpointError(VqvizError):
    """A checkpoint is missing, corrupted, truncated, of another model, or not ours."""


class TrainingError(VqvizError):
    """Training cannot go on, e.g. the loss became NaN or infinite."""


class ExportError(VqvizError):
    """A model cannot be exported (e.g. its decoder to ONNX): the exporter could not trace its code."""


class ConfigError(VqvizError, ValueError):
    """An argument or configuration value is out of its allowed range."""


class UntrustedCodeError(CheckpointError, ConfigError):
    """A checkpoint or a config names code to import (a wrapped model's factory) that this installation
    does not allow: neither an installed entry point nor under a module prefix the operator lists."""
