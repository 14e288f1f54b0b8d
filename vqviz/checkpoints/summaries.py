"""What a catalogue lists about a checkpoint, without building its model: the summary saved
in ``meta.json``, or, for a checkpoint saved before summaries, one worked out on PyTorch's
``meta`` device (which allocates nothing)."""

from __future__ import annotations

import torch

from ..errors import CheckpointError, ConfigError
from ..models import Model, get
from ..schema import META, _field, _is_number
from .loading import config_of, skeleton

#: The metrics a catalogue shows for a checkpoint, in this order where present.
HEADLINE = ("quantizer_test_accuracy", "test_accuracy", "test_kmeans_accuracy", "test_bce_per_image",
            "test_mse_per_image", "test_usage_entropy")


def summary_of(model: Model, dataset: str | None, metrics: dict) -> dict:
    """What a catalogue lists about a model, so that listing needs no model import and no guess:
    family, K and L (None without a quantizer), data set, input shape and headline metrics."""
    return {"family": model.name, "n_codes": model.n_codes, "n_codebooks": model.n_codebooks,
            "dataset": dataset, "in_shape": list(model.config.in_shape),
            "headline": {k: metrics[k] for k in HEADLINE if _is_number(metrics.get(k))}}


def summary(meta: dict) -> dict:
    """A checked meta's summary: as saved, or, for a checkpoint saved before summaries, worked
    out from its config and state on PyTorch's ``meta`` device (which allocates nothing)."""
    if isinstance(meta.get("summary"), dict):
        return meta["summary"]
    name = meta["model"]
    config = config_of(meta)
    skeleton(name, config, META)  # refuses a config over the parameter budget
    with torch.device("meta"):
        model = get(name)(config)
    try:
        model.load_extra_state(meta.get("state") or {})
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{_field('', 'state')} does not fit the {name!r} model: {e}") from None
    return summary_of(model, meta.get("dataset"), meta.get("metrics") or {})
