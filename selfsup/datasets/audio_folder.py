"""Fixed-length clips from audio files: a folder of clips, or any list of files with labels.

    root/
      yes/a.wav  yes/speaker7/b.flac      class subfolders give labels, at any depth below
      no/c.wav
      unsorted.wav                        files at the top level are unlabelled (y = -1)
      metadata.csv                        optional: file,label,subject,... (overrides folders)

Each file gives one clip (cropped or zero-padded to ``clip_seconds``) or, with
``hop_seconds``, every window of a long recording. Files are checked once when the dataset is
built (readable, not empty), so a bad file stops a run before training, not in the middle.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from selfsup.datasets.audio_io import AUDIO_EXTENSIONS, RateReport, fix_length, load_audio, probe_audio
from selfsup.datasets.base import UNKNOWN, SampleDataset
from selfsup.datasets.windows import window_starts
from selfsup.errors import DataError

METADATA_FILE = "metadata.csv"
FILE_COLUMNS = ("file", "filename", "path")


class AudioClips(SampleDataset):
    """Clips (C, clip_samples) at ``sample_rate`` from ``files``; labels/subjects per file."""

    def __init__(self, files: Sequence[str | Path], labels=None, subjects=None, class_names=None,
                 sample_rate: int = 16000, clip_seconds: float = 1.0, mono: bool = True,
                 hop_seconds: float | None = None, crop: str = "center", source: str = "<files>",
                 info: dict | None = None):
        if not files:
            raise DataError("no audio files", source)
        if crop not in ("center", "start"):
            raise ValueError(f"crop must be 'center' or 'start', got {crop!r}")
        self.sample_rate, self.mono, self.crop = int(sample_rate), mono, crop
        self.clip_samples = int(round(clip_seconds * sample_rate))
        if self.clip_samples < 1:
            raise DataError(f"clip_seconds={clip_seconds} gives no samples at {sample_rate} Hz", source)
        infos = [probe_audio(f) for f in files]
        rates = RateReport(self.sample_rate)
        for i in infos:
            rates.add(i.sample_rate)
        self.rate_message = rates.report(str(source))
        self.channels = 1 if mono else max(i.channels for i in infos)
        # One row per clip: which file, and where the clip starts (in samples at sample_rate).
        file_of, starts = [], []
        for k, i in enumerate(infos):
            n = int(i.frames * self.sample_rate / i.sample_rate)
            s = [0] if hop_seconds is None else (window_starts(n, self.clip_samples, max(
                1, int(round(hop_seconds * self.sample_rate)))).tolist() or [0])
            file_of += [k] * len(s)
            starts += s
        self.files = [Path(f) for f in files]
        self.file_of, self.starts = np.asarray(file_of), np.asarray(starts)
        self.windowed = hop_seconds is not None
        per_clip = lambda a: None if a is None else np.asarray(a)[self.file_of]
        info = {"sample_rate": self.sample_rate, "channels": self.channels, "clip_samples": self.clip_samples,
                **(info or {})}
        super().__init__(per_clip(labels), per_clip(subjects), class_names, info, str(source))

    def __len__(self) -> int:
        return len(self.file_of)

    def load(self, i: int) -> torch.Tensor:
        path = self.files[self.file_of[i]]
        if self.windowed:
            x, _ = load_audio(path, self.sample_rate, self.mono, self.channels, offset=self.starts[i] / self.sample_rate,
                              duration=self.clip_samples / self.sample_rate, allow_silence=True)
        else:
            x, _ = load_audio(path, self.sample_rate, self.mono, self.channels)
        return fix_length(x, self.clip_samples, self.crop)

    def file(self, i: int) -> Path:
        """The file that clip ``i`` comes from."""
        return self.files[self.file_of[i]]


def find_media_files(root: str | Path, extensions: tuple[str, ...], kind: str) -> list[Path]:
    """Every file under ``root`` whose extension is in ``extensions`` (any depth, hidden folders
    skipped), sorted; a DataError saying what the folder holds instead when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError("no such folder", root)
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not found:
        others = sorted({p.suffix.lower() or "(none)" for p in root.rglob("*") if p.is_file()})
        seen = f"; it holds only {', '.join(others)} files" if others else "; it is empty"
        raise DataError(f"no {kind} files ({' '.join(extensions)}) in this folder or below{seen}", root)
    return found


def find_audio_files(root: str | Path) -> list[Path]:
    return find_media_files(root, AUDIO_EXTENSIONS, "audio")


def string_ids(names: list[str | None]) -> tuple[np.ndarray, list[str]]:
    """Strings -> integer ids (sorted names; None -> -1)."""
    vocab = sorted({n for n in names if n is not None})
    index = {n: i for i, n in enumerate(vocab)}
    return np.asarray([UNKNOWN if n is None else index[n] for n in names], dtype=np.int64), vocab


def read_metadata(path: str | Path, root: Path, label_column: str, subject_column: str) -> dict[Path, dict]:
    """{file path: {"label": str|None, "subject": str|None}} from a CSV naming files relative to ``root``."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"unreadable metadata CSV ({exc})", path) from None
    if not rows:
        return {}
    column = next((c for c in FILE_COLUMNS if c in rows[0]), None)
    if column is None:
        raise DataError(f"metadata CSV needs a column naming the files ({' or '.join(FILE_COLUMNS)}); "
                        f"it has {', '.join(rows[0])}", path)
    out = {}
    for line, row in enumerate(rows, start=2):
        file = (root / row[column]).resolve()
        if not file.is_file():
            raise DataError(f"line {line} names {row[column]!r}, which is not a file under {root}", path)
        pick = lambda c: (row.get(c) or "").strip() or None
        out[file] = {"label": pick(label_column), "subject": pick(subject_column)}
    return out


def audio_folder(root: str | Path, metadata: str | Path | None = None, label_column: str = "label",
                 subject_column: str = "subject", **clip_options) -> AudioClips:
    """An ``AudioClips`` dataset of every audio file under ``root`` (see the module docstring)."""
    root = Path(root)
    files = find_audio_files(root)
    labels: list[str | None] = [p.relative_to(root).parts[0] if len(p.relative_to(root).parts) > 1 else None
                                for p in files]
    subjects: list[str | None] = [None] * len(files)
    metadata = Path(metadata) if metadata else (root / METADATA_FILE if (root / METADATA_FILE).exists() else None)
    if metadata is not None:
        meta = read_metadata(metadata, root, label_column, subject_column)
        for k, p in enumerate(files):
            row = meta.get(p.resolve())
            if row is not None:
                labels[k] = row["label"] if row["label"] is not None else labels[k]
                subjects[k] = row["subject"]
    y, class_names = string_ids(labels)
    s, subject_names = string_ids(subjects)
    return AudioClips(files, y if class_names else None, s if subject_names else None, class_names or None,
                      source=str(root), info={"subject_names": subject_names or None}, **clip_options)


def audio_file(path: str | Path, **clip_options) -> AudioClips:
    """One file as a dataset (windows of it with ``hop_seconds``), unlabelled."""
    return AudioClips([Path(path)], source=str(path), **clip_options)


__all__ = ["AudioClips", "string_ids", "audio_folder", "audio_file", "find_media_files", "find_audio_files",
           "read_metadata"]
