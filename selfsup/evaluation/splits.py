"""Train/test splits (by subject when subjects are known) and few-label subsets."""

from __future__ import annotations

import math

import numpy as np

from selfsup.datasets.base import SampleDataset
from selfsup.errors import DataError


def subject_split(subjects: np.ndarray, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): the last ceil(fraction * #subjects) subject ids, sorted, are the test set."""
    ids = np.unique(subjects)
    n_test = max(1, math.ceil(len(ids) * test_fraction))
    if len(ids) < 2:
        raise DataError("a subject-wise split needs at least 2 subjects")
    test_ids = ids[-n_test:]
    test = np.isin(subjects, test_ids)
    return np.flatnonzero(~test), np.flatnonzero(test)


def stratified_split(labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    train, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


def split_dataset(dataset: SampleDataset, test_fraction: float = 0.2) -> tuple[SampleDataset, SampleDataset, str]:
    """Deterministic (train, test, description): by subject if known, else stratified at seed 0."""
    labelled = labelled_indices(dataset)
    labelled_set = dataset.subset(labelled)
    if dataset.subjects is not None and len(np.unique(labelled_set.subjects)) >= 2:
        train, test = subject_split(labelled_set.subjects, test_fraction)
        test_ids = sorted(np.unique(labelled_set.subjects[test]).tolist())
        how = f"by subject (test subjects {test_ids})"
    else:
        train, test = stratified_split(labelled_set.labels, test_fraction)
        how = f"stratified random {int(round(100 * (1 - test_fraction)))}/{int(round(100 * test_fraction))} (seed 0)"
    return labelled_set.subset(train), labelled_set.subset(test), how


def labelled_indices(dataset: SampleDataset) -> np.ndarray:
    if not dataset.has_labels:
        raise DataError("has no labels; probing needs labelled data (class subfolders or a 'y' dataset)",
                        dataset.source)
    return np.flatnonzero(dataset.labels >= 0)


def label_subset(labels: np.ndarray, seed: int, fraction: float | None = None,
                 per_class: int | None = None, draw: int = 0) -> np.ndarray:
    """Indices of a stratified subset: ``per_class`` labels of each class, or a ``fraction`` of
    each class (at least one), drawn with ``seed``. Neither given: all indices.

    ``draw`` k > 0 gives a further, independent subset for the same seed (draw 0 is the subset
    of ``seed`` alone, so one draw per seed reproduces earlier runs)."""
    if fraction is None and per_class is None:
        return np.arange(len(labels))
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed if draw == 0 else [seed, draw])
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = per_class if per_class is not None else max(1, int(round(fraction * len(members))))
        chosen.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))
