"""The seglearn smartwatch recordings: real 6-axis inertial data that ships inside ``pip install seglearn``.

140 recordings (ax, ay, az in g; wx, wy, wz in rad/s) at 50 Hz of 7 shoulder exercises by 10
subjects. Read straight from the package's data file so that seglearn's own imports (pandas)
are not needed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from selfsup.datasets.windows import window_recordings
from selfsup.errors import DataError

SAMPLE_RATE = 50.0
CHANNEL_NAMES = ["ax", "ay", "az", "wx", "wy", "wz"]
CHANNEL_GROUPS = [[0, 1, 2], [3, 4, 5]]  # accelerometer, gyroscope: rotated together


def watch_file() -> Path:
    spec = importlib.util.find_spec("seglearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the built-in 'watch' data needs the seglearn package: pip install seglearn")
    path = Path(spec.submodule_search_locations[0]) / "data" / "watch_dataset.npy"
    if not path.exists():
        raise DataError("seglearn is installed but its watch data file is missing", path)
    return path


def load_watch_windows(window: int = 100, step: int = 50) -> dict:
    """Windows (N, window, 6) with exercise label and subject, 2 s / 50% overlap by default."""
    raw = np.load(watch_file(), allow_pickle=True).item()
    x, y, subject, recording = window_recordings(
        [np.asarray(r, dtype=np.float32) for r in raw["X"]], window, step,
        labels=list(raw["y"]), subjects=[int(s) for s in raw["subject"]], source=str(watch_file()))
    return {"x": x, "y": y, "subject": subject, "recording": recording, "sample_rate": SAMPLE_RATE,
            "channel_names": list(raw["X_labels"]), "class_names": list(raw["y_labels"]),
            "channel_groups": CHANNEL_GROUPS}
