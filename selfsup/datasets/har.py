"""Parsers (and download code) for the published layouts of standard HAR datasets.

Each parser returns the same dict as the HDF5 reader (x (N, T, C), y, subject, channel and
class names, sample rate), so ``selfsup prepare`` can write it to our HDF5 format.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from selfsup.datasets.download import fetch_and_extract
from selfsup.datasets.windows import window_recordings
from selfsup.errors import DataError

UCI_HAR_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00240/UCI%20HAR%20Dataset.zip"
UCI_HAR_DIR = "UCI HAR Dataset"
UCI_HAR_SIGNALS = {
    "total_acc": ["total_acc_x", "total_acc_y", "total_acc_z"],
    "body_acc": ["body_acc_x", "body_acc_y", "body_acc_z"],
    "body_gyro": ["body_gyro_x", "body_gyro_y", "body_gyro_z"],
}

MOTIONSENSE_URL = "https://github.com/mmalekzadeh/motion-sense/raw/master/data/A_DeviceMotion_data.zip"
MOTIONSENSE_DIR = "A_DeviceMotion_data"
MOTIONSENSE_ACTIVITIES = ["dws", "ups", "wlk", "jog", "sit", "std"]


def _load_matrix(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataError("missing file of the UCI HAR layout", path)
    try:
        return np.loadtxt(path, dtype=np.float32, ndmin=2)
    except ValueError as exc:
        raise DataError(f"cannot parse numbers ({exc})", path) from None


def load_uci_har(root: str | Path, split: str = "train", signals=("total_acc", "body_gyro"),
                 download: bool = False) -> dict:
    """UCI HAR (Anguita et al. 2013): 128-sample windows at 50 Hz from ``Inertial Signals``.

    ``root`` holds the ``UCI HAR Dataset`` folder (or is it). Channels: the tri-axial groups
    named in ``signals``, in order; labels 0..5 from ``y_<split>.txt`` (1..6 in the files).
    """
    root = Path(root)
    if download:
        fetch_and_extract(UCI_HAR_URL, root, UCI_HAR_DIR)
    base = root / UCI_HAR_DIR if (root / UCI_HAR_DIR).exists() else root
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    folder = base / split / "Inertial Signals"
    if not folder.is_dir():
        raise DataError(f"not the UCI HAR layout: no '{split}/Inertial Signals' folder (pass download=True?)", base)
    names = [n for group in signals for n in UCI_HAR_SIGNALS[group]]
    channels = [_load_matrix(folder / f"{n}_{split}.txt") for n in names]
    if len({c.shape for c in channels}) != 1:
        raise DataError(f"signal files disagree in shape: {[c.shape for c in channels]}", folder)
    x = np.stack(channels, axis=-1)  # (N, 128, C)
    y = _load_matrix(base / split / f"y_{split}.txt").reshape(-1).astype(np.int64) - 1
    subject = _load_matrix(base / split / f"subject_{split}.txt").reshape(-1).astype(np.int64)
    if not len(y) == len(subject) == len(x):
        raise DataError(f"{len(x)} windows but {len(y)} labels and {len(subject)} subjects", base / split)
    labels_file = base / "activity_labels.txt"
    class_names = ([line.split()[1] for line in labels_file.read_text().splitlines() if line.strip()]
                   if labels_file.exists() else [str(i) for i in range(int(y.max()) + 1)])
    return {"x": x, "y": y, "subject": subject, "sample_rate": 50.0, "channel_names": names,
            "class_names": class_names, "channel_groups": [[3 * i, 3 * i + 1, 3 * i + 2] for i in range(len(signals))]}


def load_motionsense(root: str | Path, window: int = 128, step: int = 64, download: bool = False) -> dict:
    """MotionSense (Malekzadeh et al. 2019) device-motion CSVs at 50 Hz, cut into windows.

    Channels: total acceleration (userAcceleration + gravity, in g) and rotation rate (rad/s).
    """
    root = Path(root)
    if download:
        fetch_and_extract(MOTIONSENSE_URL, root, MOTIONSENSE_DIR)
    base = root / MOTIONSENSE_DIR if (root / MOTIONSENSE_DIR).exists() else root
    folders = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    recordings, labels, subjects = [], [], []
    for folder in folders:
        activity = folder.name.split("_")[0]
        if activity not in MOTIONSENSE_ACTIVITIES:
            continue
        for csv_path in sorted(folder.glob("sub_*.csv")):
            cols = _read_csv_columns(csv_path)
            try:
                acc = [np.asarray(cols[f"userAcceleration.{a}"], np.float32) + np.asarray(cols[f"gravity.{a}"], np.float32)
                       for a in "xyz"]
                gyro = [np.asarray(cols[f"rotationRate.{a}"], np.float32) for a in "xyz"]
            except KeyError as exc:
                raise DataError(f"missing column {exc} of the MotionSense layout", csv_path) from None
            except ValueError as exc:
                raise DataError(f"cannot parse numbers ({exc})", csv_path) from None
            recordings.append(np.stack(acc + gyro, axis=-1))
            labels.append(MOTIONSENSE_ACTIVITIES.index(activity))
            subjects.append(int(csv_path.stem.split("_")[1]))
    if not recordings:
        raise DataError(f"no MotionSense recordings (<activity>_<trial>/sub_<n>.csv) found", base)
    x, y, subject, _ = window_recordings(recordings, window, step, labels, subjects, source=str(base))
    return {"x": x, "y": y, "subject": subject, "sample_rate": 50.0,
            "channel_names": ["ax", "ay", "az", "wx", "wy", "wz"], "class_names": MOTIONSENSE_ACTIVITIES,
            "channel_groups": [[0, 1, 2], [3, 4, 5]]}


def _read_csv_columns(path: Path) -> dict[str, list[str]]:
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError("empty CSV file", path)
            rows = list(reader)
    except UnicodeDecodeError:
        raise DataError("not a text CSV file", path) from None
    columns = {name.strip(): [] for name in header}
    names = list(columns)
    for line, row in enumerate(rows, start=2):
        if len(row) != len(names):
            raise DataError(f"line {line} has {len(row)} fields, the header has {len(names)}", path)
        for name, value in zip(names, row):
            columns[name].append(value)
    return columns


def csv_to_windows(path: str | Path, channels: list[str], window: int, step: int,
                   label_column: str | None = None, subject_column: str | None = None,
                   recording_column: str | None = None, sample_rate: float | None = None) -> dict:
    """A long-format CSV (one row per time step) -> windows, as the HDF5 reader returns them.

    Consecutive rows sharing subject (and recording) values form one recording; windows never
    cross recordings. A window's label is the most frequent label among its rows.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("no such file", path)
    cols = _read_csv_columns(path)
    wanted = list(channels) + [c for c in (label_column, subject_column, recording_column) if c]
    missing = [c for c in wanted if c not in cols]
    if missing:
        raise DataError(f"no column(s) {missing}; the header has {list(cols)}", path)
    try:
        data = np.stack([np.asarray(cols[c], dtype=np.float32) for c in channels], axis=-1)
    except ValueError as exc:
        raise DataError(f"a channel column holds a value that is not a number ({exc})", path) from None
    if len(data) == 0:
        raise DataError("the CSV has a header but no rows", path)
    keys = list(zip(*(cols[c] for c in (subject_column, recording_column) if c))) or [()] * len(data)
    class_names = sorted(set(cols[label_column])) if label_column else None
    label_ids = np.array([class_names.index(v) for v in cols[label_column]]) if label_column else None
    subject_names = sorted(set(cols[subject_column]), key=_natural_key) if subject_column else None
    bounds = [0] + [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]
    recordings, labels, subjects = [], [], []
    for start, end in zip(bounds[:-1], bounds[1:]):
        recordings.append(data[start:end])
        labels.append(label_ids[start:end] if label_ids is not None else 0)
        subjects.append(subject_names.index(cols[subject_column][start]) if subject_column else 0)
    x, y, subject, _ = window_recordings(recordings, window, step, labels, subjects, source=str(path))
    return {"x": x, "y": y if label_column else None, "subject": subject if subject_column else None,
            "sample_rate": sample_rate, "channel_names": list(channels), "class_names": class_names}


def _natural_key(value: str):
    return (0, int(value), "") if value.strip().lstrip("-").isdigit() else (1, 0, value)
