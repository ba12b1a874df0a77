"""HDF5 files of windows: the on-disk format of the sensor modality.

Layout (h5py):
    x        float (N, T, C)   windows (or long recordings, cut on load with window/step)
    y        int   (N,)        optional label per row, or (N, T) a label per time step
    subject  int   (N,)        optional subject id per row
    attrs:   sample_rate (Hz), channel_names (list of str), class_names (list of str)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from selfsup.errors import DataError


def _open(path: Path):
    import h5py

    if not path.exists():
        raise DataError("no such file", path)
    if path.is_dir():
        raise DataError("is a folder, expected an HDF5 file (.h5)", path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"not a readable HDF5 file ({exc.__class__.__name__}: {exc})", path) from None


def _read_arrays(f, path: Path):
    if "x" not in f:
        raise DataError(f"has no dataset 'x' (found: {', '.join(sorted(f.keys())) or 'nothing'})", path)
    try:
        x = np.asarray(f["x"][()], dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"dataset 'x' cannot be read as floats ({exc})", path) from None
    if x.ndim != 3:
        raise DataError(f"'x' must have shape (N, T, C), got {x.shape}", path)
    if len(x) == 0:
        raise DataError("the dataset is empty ('x' has 0 rows)", path)
    y = np.asarray(f["y"][()]) if "y" in f else None
    subject = np.asarray(f["subject"][()]) if "subject" in f else None
    return x, y, subject, {k: f.attrs[k] for k in f.attrs}


def _str_list(value) -> list[str] | None:
    if value is None:
        return None
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(value)]


def read_hdf5(path: str | Path) -> dict[str, Any]:
    """Read and validate an HDF5 window file; returns x (N, T, C) float32, y, subject, attrs."""
    path = Path(path)
    with _open(path) as f:
        try:
            x, y, subject, attrs = _read_arrays(f, path)
        except DataError:
            raise
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            # h5py reports a damaged file's inner structures with several exception types
            raise DataError(f"corrupt HDF5 file ({exc.__class__.__name__}: {exc})", path) from None
    if y is not None and not (y.shape == (len(x),) or y.shape == x.shape[:2]):
        raise DataError(f"'y' has shape {y.shape}; expected ({len(x)},) or {x.shape[:2]} to match 'x' {x.shape}",
                        path)
    if subject is not None and subject.shape != (len(x),):
        raise DataError(f"'subject' has shape {subject.shape}; expected ({len(x)},) to match 'x' {x.shape}", path)
    return {
        "x": x, "y": y, "subject": subject,
        "sample_rate": float(attrs["sample_rate"]) if "sample_rate" in attrs else None,
        "channel_names": _str_list(attrs.get("channel_names")),
        "class_names": _str_list(attrs.get("class_names")),
    }


def write_hdf5(path: str | Path, x: np.ndarray, y: np.ndarray | None = None, subject: np.ndarray | None = None,
               sample_rate: float | None = None, channel_names: Sequence[str] | None = None,
               class_names: Sequence[str] | None = None, extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write windows (N, T, C) atomically: a half-written file never takes the final name."""
    import h5py

    from selfsup.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("x", data=np.asarray(x, dtype=np.float32), compression="gzip", compression_opts=4)
        if y is not None:
            f.create_dataset("y", data=np.asarray(y, dtype=np.int64))
        if subject is not None:
            f.create_dataset("subject", data=np.asarray(subject, dtype=np.int64))
        for name, arr in (extra or {}).items():
            f.create_dataset(name, data=arr)
        if sample_rate is not None:
            f.attrs["sample_rate"] = float(sample_rate)
        if channel_names is not None:
            f.attrs["channel_names"] = np.array(list(channel_names), dtype=h5py.string_dtype())
        if class_names is not None:
            f.attrs["class_names"] = np.array(list(class_names), dtype=h5py.string_dtype())
    return path
