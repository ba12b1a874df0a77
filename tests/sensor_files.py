"""Small sensor files in the formats users bring, written by the tests."""

from pathlib import Path

import numpy as np

from selfsup.datasets.hdf5 import write_hdf5


def small_watch_h5(watch, path: Path, n: int = 300, seed: int = 0) -> Path:
    """n real watch windows written as an HDF5 file (N, T, C) with labels and subjects."""
    idx = np.sort(np.random.default_rng(seed).choice(len(watch), n, replace=False))
    x = watch.x[idx].numpy().transpose(0, 2, 1)
    return write_hdf5(path, x, watch.labels[idx], watch.subjects[idx], 50.0, watch.info["channel_names"],
                      watch.class_names)
