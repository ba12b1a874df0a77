"""A store of pre-decoded samples in HDF5 shards, for data too slow to decode every epoch.

    STORE/
      index.json          format marker, modality, sample shape, shard list, labels, info
      shard-00000.h5      x (k, *sample_shape), y (k,), subject (k,)
      ...

``write_shards`` decodes a dataset once (shards written atomically, the index last, so an
interrupted write leaves no loadable half-store); ``ShardDataset`` reads samples lazily, each
process opening its own file handles (h5py handles must not cross a fork).
"""

from __future__ import annotations

import bisect
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from selfsup.datasets.base import SampleDataset
from selfsup.errors import DataError
from selfsup.io import atomic_path, write_json

FORMAT = "selfsup-shards"
INDEX = "index.json"


def is_shard_store(path: str | Path) -> bool:
    index = Path(path) / INDEX
    if not index.is_file():
        return False
    try:
        return json.loads(index.read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def _jsonable(info: dict) -> dict:
    out = {}
    for k, v in info.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            continue
    return out


def write_shards(dataset: SampleDataset, out: str | Path, modality: str, shard_size: int = 1024,
                 dtype: str = "float32", num_workers: int = 0, progress: bool = True) -> Path:
    """Decode every sample of ``dataset`` into ``out``; returns the store's folder."""
    import h5py

    out = Path(out)
    if (out / INDEX).exists():
        raise DataError("already holds a shard store; choose another folder", out)
    out.mkdir(parents=True, exist_ok=True)
    loader = DataLoader(dataset, batch_size=shard_size, shuffle=False, num_workers=num_workers)
    shards, shape = [], None
    for k, batch in enumerate(tqdm(loader, desc="writing shards", disable=not progress)):
        name = f"shard-{k:05d}.h5"
        with atomic_path(out / name) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("x", data=batch["x"].numpy().astype(dtype))
            f.create_dataset("y", data=batch["y"].numpy())
            f.create_dataset("subject", data=batch["subject"].numpy())
        shards.append({"file": name, "n": len(batch["x"])})
        shape = list(batch["x"].shape[1:])
    write_json(out / INDEX, {
        "format": FORMAT, "version": 1, "modality": modality, "n": sum(s["n"] for s in shards),
        "sample_shape": shape, "dtype": dtype, "shards": shards, "class_names": dataset.class_names,
        "info": _jsonable(dataset.info), "source": dataset.source})
    return out


class ShardDataset(SampleDataset):
    def __init__(self, path: str | Path, expect_modality: str | None = None):
        import h5py

        self.root = Path(path)
        try:
            index = json.loads((self.root / INDEX).read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"unreadable shard index ({exc})", self.root / INDEX) from None
        if expect_modality and index.get("modality") != expect_modality:
            raise DataError(f"shard store of modality '{index.get('modality')}', not '{expect_modality}'", self.root)
        self.files = [self.root / s["file"] for s in index["shards"]]
        self.offsets = np.cumsum([0] + [s["n"] for s in index["shards"]]).tolist()
        labels, subjects = [], []
        for f in self.files:
            try:
                with h5py.File(f, "r") as h:
                    labels.append(h["y"][()])
                    subjects.append(h["subject"][()])
            except (OSError, KeyError) as exc:
                raise DataError(f"unreadable shard ({exc})", f) from None
        self._handles: dict[int, tuple[int, object]] = {}
        y, s = np.concatenate(labels), np.concatenate(subjects)
        super().__init__(y if (y >= 0).any() else None, s if (s >= 0).any() else None, index.get("class_names"),
                         index.get("info"), source=str(self.root))

    def __len__(self) -> int:
        return self.offsets[-1]

    def _file(self, k: int):
        import h5py

        pid, handle = self._handles.get(k, (None, None))
        if pid != os.getpid():                   # first use in this process (e.g. a new worker)
            try:
                handle = h5py.File(self.files[k], "r")
            except OSError as exc:
                raise DataError(f"unreadable shard ({exc})", self.files[k]) from None
            self._handles[k] = (os.getpid(), handle)
        return handle

    def load(self, i: int) -> torch.Tensor:
        k = bisect.bisect_right(self.offsets, i) - 1
        try:
            x = self._file(k)["x"][i - self.offsets[k]]
        except (OSError, KeyError) as exc:
            raise DataError(f"sample {i} unreadable ({exc})", self.files[k]) from None
        return torch.from_numpy(np.asarray(x, dtype=np.float32))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state


__all__ = ["write_shards", "ShardDataset", "is_shard_store"]
