"""The sample protocol every dataset follows, whatever the modality.

A dataset yields plain samples as dicts of tensors and knows nothing of pretext tasks:

    {"x": Tensor (the modality's sample shape), "y": long (-1 when unlabelled),
     "subject": long (-1 when unknown), "index": long (position in this dataset)}

``labels`` / ``subjects`` are also exposed as whole arrays so that splits and probes need
not iterate over the samples.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from selfsup.errors import DataError

UNKNOWN = -1


def _as_int_array(values: Sequence[int] | np.ndarray | torch.Tensor | None, n: int, what: str, source: str):
    if values is None:
        return None
    arr = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values)
    if arr.ndim != 1:
        raise DataError(f"{what} must be one-dimensional (N,), got shape {arr.shape}", source)
    if len(arr) != n:
        raise DataError(f"{what} has {len(arr)} entries but there are {n} samples", source)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise DataError(f"{what} must be integers, got dtype {arr.dtype}", source)
    return arr.astype(np.int64)


class SampleDataset(Dataset):
    """Base class: subclasses implement ``__len__`` and ``load(i) -> Tensor``.

    ``info`` carries what the modality needs to know about the data (``sample_rate``,
    ``channel_names``, ``channel_groups`` ...), written once where the data is read.

    A sample whose ``load`` raises a DataError stops the run (the error names the file) unless
    ``bad_sample_log`` is set: then the sample is skipped (``__getitem__`` returns None, which
    ``collate_samples`` drops) and its file and problem are appended to that log, so nothing
    is skipped silently. The log is a file so that data-loader worker processes can write it.
    """

    source: str = "<memory>"
    bad_sample_log: Path | None = None

    def __init__(self, labels=None, subjects=None, class_names: Sequence[str] | None = None,
                 info: dict[str, Any] | None = None, source: str = "<memory>"):
        self.source = str(source)
        n = len(self)
        self.labels = _as_int_array(labels, n, "labels", self.source)
        self.subjects = _as_int_array(subjects, n, "subjects", self.source)
        self.class_names = list(class_names) if class_names is not None else None
        self.info = dict(info or {})

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, i: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def has_labels(self) -> bool:
        return self.labels is not None and bool(np.any(self.labels != UNKNOWN))

    @property
    def num_classes(self) -> int:
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.labels.max()) + 1 if self.has_labels else 0

    def __getitem__(self, i: int) -> dict[str, torch.Tensor] | None:
        try:
            x = self.load(i)
        except DataError as exc:
            if self.bad_sample_log is None:
                raise
            log_bad_sample(self.bad_sample_log, i, exc)
            return None
        return {
            "x": x,
            "y": torch.tensor(UNKNOWN if self.labels is None else self.labels[i], dtype=torch.long),
            "subject": torch.tensor(UNKNOWN if self.subjects is None else self.subjects[i], dtype=torch.long),
            "index": torch.tensor(i, dtype=torch.long),
        }

    def subset(self, indices: Sequence[int] | np.ndarray) -> "SubsetDataset":
        return SubsetDataset(self, np.asarray(indices, dtype=np.int64))


class SubsetDataset(SampleDataset):
    """A view on some samples of another dataset; ``index`` counts within the view."""

    def __init__(self, parent: SampleDataset, indices: np.ndarray):
        self.parent, self.indices = parent, indices
        super().__init__(
            labels=None if parent.labels is None else parent.labels[indices],
            subjects=None if parent.subjects is None else parent.subjects[indices],
            class_names=parent.class_names, info=parent.info, source=parent.source,
        )

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, i: int) -> torch.Tensor:
        return self.parent.load(int(self.indices[i]))


class ArrayDataset(SampleDataset):
    """Samples held in memory as one float tensor ``x`` of shape (N, *sample_shape)."""

    def __init__(self, x: torch.Tensor | np.ndarray, labels=None, subjects=None, class_names=None,
                 info=None, source: str = "<memory>"):
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
        self.x = x
        super().__init__(labels, subjects, class_names, info, source)
        if len(x) == 0:
            raise DataError("the dataset is empty (0 samples)", self.source)
        check_finite(x, self.source)

    def __len__(self) -> int:
        return len(self.x)

    def load(self, i: int) -> torch.Tensor:
        return self.x[i]

    def subset(self, indices) -> "ArrayDataset":
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        pick = lambda a: None if a is None else a[idx.numpy()]
        return ArrayDataset(self.x[idx], pick(self.labels), pick(self.subjects), self.class_names,
                            self.info, self.source)


def log_bad_sample(log: Path, index: int, exc: DataError) -> None:
    """Append one tab-separated line (index, file, problem); O_APPEND keeps lines whole across workers."""
    line = f"{index}\t{exc.path or ''}\t{exc.problem}\n".encode()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_bad_samples(log: Path) -> list[tuple[int, str, str]]:
    """The logged bad samples, each once (a bad file is met again every epoch), by index."""
    if not Path(log).exists():
        return []
    rows = {}
    for line in Path(log).read_text().splitlines():
        if line:
            i, path, problem = line.split("\t", 2)
            rows.setdefault((int(i), path), problem)
    return sorted((i, path, problem) for (i, path), problem in rows.items())


def collate_samples(samples: list[dict | None]) -> dict[str, torch.Tensor] | None:
    """Default collation, dropping samples that were skipped as bad (None); None if all were."""
    kept = [s for s in samples if s is not None]
    return default_collate(kept) if kept else None


def spread_samples(dataset: "SampleDataset", count: int) -> list[torch.Tensor]:
    """The ``x`` of up to ``count`` samples evenly spread over ``dataset`` (first and last
    included): a cheap, deterministic look at the data for statistics."""
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(len(dataset), count)).round().astype(int))
    return [dataset[int(i)]["x"] for i in picks]


def check_finite(x: torch.Tensor, source: str) -> None:
    """Raise a DataError naming the first sample that holds NaN or inf."""
    bad = ~torch.isfinite(x.reshape(len(x), -1)).all(dim=1)
    if bad.any():
        first = int(bad.nonzero()[0])
        raise DataError(f"{int(bad.sum())} sample(s) contain NaN or inf values (first: sample {first})", source)
