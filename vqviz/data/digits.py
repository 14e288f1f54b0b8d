"""scikit-learn's bundled 1,797 8x8 digits, with a fixed seeded stratified split (1,437 / 360)."""

from __future__ import annotations

import numpy as np

from .registry import SPLITS, register_dataset


@register_dataset("digits", shape=(1, 8, 8))
def digits(folder: None, split: str):
    """The digits of ``split``, pixels 0..16 scaled to [0, 1]; no files needed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    parts = train_test_split(np.arange(len(bunch.target)), test_size=0.2, random_state=0,
                             stratify=bunch.target)
    idx = np.sort(parts[SPLITS.index(split)])
    return bunch.images[idx, None].astype(np.float32) / 16, bunch.target[idx], tuple("0123456789")
