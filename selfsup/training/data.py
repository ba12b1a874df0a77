"""Data loaders for training: a deterministic validation split and epoch-seeded shuffling."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from selfsup.datasets.base import SampleDataset, collate_samples


class EpochShuffleSampler(Sampler[int]):
    """A random order that depends only on (seed, epoch): Lightning calls ``set_epoch``, so a
    resumed run visits samples in the same order as the uninterrupted one.

    ``length`` > n chains several shuffles into one long epoch (few labelled samples would
    otherwise make every epoch a single step, and per-epoch overhead dominate).
    """

    def __init__(self, n: int, seed: int = 0, length: int | None = None):
        self.n, self.seed, self.epoch = n, seed, 0
        self.length = length or n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        rounds = -(-self.length // self.n)
        order = torch.cat([torch.randperm(self.n, generator=g) for _ in range(rounds)])
        return iter(order[: self.length].tolist())

    def __len__(self) -> int:
        return self.length


def validation_split(dataset: SampleDataset, fraction: float, seed: int):
    """(train, val or None): a fixed random ``fraction`` of samples held out (none if too few)."""
    n_val = int(round(len(dataset) * fraction))
    if fraction <= 0 or n_val < 2 or len(dataset) - n_val < 2:
        return dataset, None
    order = np.random.default_rng(seed).permutation(len(dataset))
    return dataset.subset(np.sort(order[n_val:])), dataset.subset(np.sort(order[:n_val]))


def make_loader(dataset: SampleDataset, batch_size: int, train: bool, seed: int = 0, num_workers: int = 0,
                pin_memory: bool = False, samples_per_epoch: int | None = None) -> DataLoader:
    batch_size = max(1, min(batch_size, len(dataset)))
    return DataLoader(
        dataset, batch_size=batch_size,
        sampler=EpochShuffleSampler(len(dataset), seed, samples_per_epoch) if train else None,
        drop_last=train and len(dataset) > batch_size,  # batch-wide losses and BatchNorm dislike tiny tails
        num_workers=num_workers, pin_memory=pin_memory, persistent_workers=num_workers > 0,
        # Workers start from a clean server process, not a fork of this one: a fork copies the
        # locks of decoder threads (FFmpeg, HDF5) that this process may hold, and can deadlock.
        multiprocessing_context="forkserver" if num_workers > 0 else None,
        collate_fn=collate_samples,
    )
