"""Cutting long recordings into fixed-length, overlapping windows."""

from __future__ import annotations

import numpy as np

from selfsup.errors import DataError


def window_starts(length: int, window: int, step: int) -> np.ndarray:
    """Start indices of every full window of ``window`` samples, ``step`` apart."""
    if window <= 0 or step <= 0:
        raise ValueError(f"window and step must be positive, got window={window}, step={step}")
    if length < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - window + 1, step, dtype=np.int64)


def sliding_windows(x: np.ndarray, window: int, step: int) -> np.ndarray:
    """(T, C) recording -> (N, window, C) windows (a copy, so the recording can be freed)."""
    starts = window_starts(len(x), window, step)
    # Shapes: index (N, window) gathers rows of x -> (N, window, C).
    index = starts[:, None] + np.arange(window)[None, :]
    return x[index]


def majority_labels(labels: np.ndarray, window: int, step: int) -> np.ndarray:
    """(T,) per-sample labels -> (N,) the most frequent label inside each window (ties: smallest)."""
    starts = window_starts(len(labels), window, step)
    out = np.empty(len(starts), dtype=np.int64)
    for i, s in enumerate(starts):
        values, counts = np.unique(labels[s:s + window], return_counts=True)
        out[i] = values[np.argmax(counts)]
    return out


def window_recordings(recordings: list[np.ndarray], window: int, step: int,
                      labels: list[np.ndarray | int] | None = None,
                      subjects: list[int] | None = None, source: str = "<memory>"):
    """Cut several (T_i, C) recordings into windows.

    ``labels[i]`` is either one label for the whole recording or a (T_i,) per-sample array
    (each window then takes its majority label). Returns (x (N, window, C), y (N,) or None,
    subject (N,) or None, recording index (N,)).
    """
    xs, ys, ss, rs = [], [], [], []
    for r, rec in enumerate(recordings):
        rec = np.asarray(rec)
        if rec.ndim != 2:
            raise DataError(f"recording {r} must have shape (T, C), got {rec.shape}", source)
        w = sliding_windows(rec, window, step)
        xs.append(w)
        rs.append(np.full(len(w), r))
        if labels is not None:
            lab = np.asarray(labels[r])
            ys.append(np.full(len(w), int(lab)) if lab.ndim == 0 else majority_labels(lab, window, step))
        if subjects is not None:
            ss.append(np.full(len(w), int(subjects[r])))
    total = sum(len(w) for w in xs)
    if total == 0:
        longest = max((len(r) for r in recordings), default=0)
        raise DataError(f"no window of {window} samples fits: the longest recording has {longest}", source)
    cat = lambda parts: np.concatenate(parts) if parts else None
    return np.concatenate(xs), cat(ys), cat(ss), cat(rs)
