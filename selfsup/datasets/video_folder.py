"""Clips from video files: a folder of videos (class subfolders give labels), or a list of files.

    root/
      juggling/a.mp4  juggling/more/b.webm     class = first-level subfolder (any depth below)
      walking/c.avi
      unsorted.mkv                             files at the top level are unlabelled (y = -1)

Each sample is a clip of ``num_frames`` frames, float (T, 3, H, W) in [0, 1], taken at ``fps``
(None: the file's own rate) and resized to ``size``. Each video gives ``clips_per_video``
clips (None: as many non-overlapping clips as fit), placed by a clip sampler:

* ``uniform``: evenly spread over the video (the same clips every time);
* ``random``: anywhere in the video, drawn again at every read (torch's generator);
* ``motion``: the windows with the most motion, measured by frame differences (Shuffle and
  Learn samples its frame tuples from high-motion windows); computed once per video.

A clip's ``subject`` is its video's number within its class, so that a subject-wise split
(``selfsup probe``) holds out whole videos of every class rather than clips of seen videos.
Files are probed once when the dataset is built, so a bad file stops a run before training.

With ``sound`` set (a callable (1, N) waveform -> (F,) features, e.g. sound-texture
statistics), each sample also carries ``"sound"``: the features of the audio track around
the clip (``sound_seconds`` centred on it), for objectives that learn from sound.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from selfsup.datasets.audio_folder import find_media_files, string_ids
from selfsup.datasets.base import SampleDataset, SubsetDataset, log_bad_sample
from selfsup.datasets.video_io import (VIDEO_EXTENSIONS, VideoInfo, VideoReader, as_size, read_audio_track,
                                       to_float_clip)
from selfsup.errors import DataError

SAMPLERS = ("uniform", "random", "motion")
MOTION_SIZE = 32            # frames are compared at this size (grey) to find high-motion windows
OPEN_READERS = 4            # video files kept open per process


# -- clip placement ---------------------------------------------------------------------------
def clip_count(info: VideoInfo, num_frames: int, rate: float) -> int:
    """How many non-overlapping clips of ``num_frames`` at ``rate`` fit in a video."""
    return int(np.floor(info.seconds * rate / num_frames + 1e-6))


def uniform_starts(seconds: float, span: float, count: int) -> np.ndarray:
    """``count`` start times spread evenly so that clips of ``span`` seconds fit in ``seconds``."""
    if count == 1:
        return np.zeros(1)
    return np.linspace(0.0, max(0.0, seconds - span), count)


def tiled_starts(count: int, num_frames: int, rate: float) -> np.ndarray:
    """Back-to-back clips: the k-th starts where the (k-1)-th ended."""
    return np.arange(count) * num_frames / rate


def motion_profile(reader: VideoReader, rate: float | None, size: int = MOTION_SIZE) -> np.ndarray:
    """Mean absolute grey-level change between consecutive frames (sampled at ``rate``), (M - 1,)."""
    fps = rate or reader.info.fps
    n = max(2, int(np.floor(reader.info.seconds * fps + 1e-6)))
    try:
        frames = reader.read(0.0, n, rate, size)
    except DataError as exc:
        if "too short" not in exc.problem:
            raise
        frames = reader.read(0.0, n - 1, rate, size)    # the declared length can be a frame too long
    grey = frames.astype(np.float32).mean(axis=-1) / 255               # (M, s, s)
    return np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))


def motion_starts(differences: np.ndarray, num_frames: int, count: int) -> np.ndarray:
    """Start frames (indices at the sampling rate) of the ``count`` windows of ``num_frames``
    frames with the most motion, not overlapping while enough such windows exist."""
    window = max(1, num_frames - 1)
    scores = np.convolve(differences, np.ones(window), mode="valid")   # (M - num_frames + 1,)
    order = np.argsort(-scores, kind="stable")
    chosen: list[int] = []
    for s in order:
        if all(abs(int(s) - c) >= num_frames for c in chosen):
            chosen.append(int(s))
            if len(chosen) == count:
                break
    for s in order:                                    # too short for disjoint windows: allow overlap
        if len(chosen) == count:
            break
        if int(s) not in chosen:
            chosen.append(int(s))
    while len(chosen) < count:
        chosen.append(chosen[len(chosen) % max(1, len(chosen))])
    return np.asarray(chosen[:count])


# -- the dataset ------------------------------------------------------------------------------
class VideoClips(SampleDataset):
    """Clips (T, 3, H, W) from ``files``; ``labels``/``subjects`` are per file."""

    def __init__(self, files: Sequence[str | Path], labels=None, subjects=None, class_names=None,
                 num_frames: int = 8, fps: float | None = None, size: int | Sequence[int] | None = 64,
                 sampler: str = "uniform", clips_per_video: int | None = 1, source: str = "<files>",
                 info: dict | None = None, threads: str = "AUTO"):
        if not files:
            raise DataError("no video files", source)
        if num_frames < 1:
            raise DataError(f"num_frames must be at least 1, got {num_frames}", source)
        if fps is not None and fps <= 0:
            raise DataError(f"fps must be positive, got {fps}", source)
        self.files = [Path(f) for f in files]
        self.num_frames, self.fps, self.size = int(num_frames), fps, as_size(size)
        self.clips_per_video, self.threads = clips_per_video, threads
        self.videos = [self._probe(f) for f in self.files]
        counts = [clips_per_video or clip_count(v, self.num_frames, self.rate(v)) for v in self.videos]
        self.file_of = np.repeat(np.arange(len(self.files)), counts)
        self.clip_of = np.concatenate([np.arange(c) for c in counts]).astype(np.int64)
        per_clip = lambda a: None if a is None else np.asarray(a)[self.file_of]  # noqa: E731
        self._readers: OrderedDict[int, VideoReader] = OrderedDict()
        self._owner = os.getpid()
        self._motion: dict[int, np.ndarray] = {}
        self._audio: OrderedDict[int, tuple[torch.Tensor, int]] = OrderedDict()
        self.sound: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.sound_rate, self.sound_seconds = 16000, None
        self._last_start = 0.0
        info = {"num_frames": self.num_frames, "fps": fps, "size": self.size, "channels": 3, **(info or {})}
        super().__init__(per_clip(labels), per_clip(subjects), class_names, info, str(source))
        self.sampler = sampler

    @property
    def sampler(self) -> str:
        return self._sampler

    @sampler.setter
    def sampler(self, name: str) -> None:
        if name not in SAMPLERS:
            raise DataError(f"unknown clip sampler '{name}'; choose from {', '.join(SAMPLERS)}", self.source)
        self._sampler = name

    def _probe(self, path: Path) -> VideoInfo:
        with VideoReader(path) as reader:
            info = reader.info
        span = self.num_frames / self.rate(info)
        if info.seconds + 1e-6 < span:
            raise DataError(f"too short: {info.seconds:.2f} s, clips of {self.num_frames} frames at "
                            f"{self.rate(info):g} fps need {span:.2f} s", path)
        return info

    def rate(self, info: VideoInfo) -> float:
        """The rate clips are sampled at: ``fps``, or the video's own."""
        return float(self.fps or info.fps)

    def __len__(self) -> int:
        return len(self.file_of)

    def file(self, i: int) -> Path:
        """The file that clip ``i`` comes from."""
        return self.files[self.file_of[i]]

    # -- reading ---------------------------------------------------------------------------
    def _reader(self, k: int) -> VideoReader:
        """An open reader of file ``k``; readers never cross a fork (data-loader workers)."""
        if self._owner != os.getpid():
            self._readers, self._owner = OrderedDict(), os.getpid()
        if k in self._readers:
            self._readers.move_to_end(k)
        else:
            self._readers[k] = VideoReader(self.files[k], self.threads)
            if len(self._readers) > OPEN_READERS:
                self._readers.popitem(last=False)[1].close()
        return self._readers[k]

    def clip_start(self, i: int) -> float:
        """Where clip ``i`` starts, in seconds (drawn anew for the random sampler)."""
        k, clip = int(self.file_of[i]), int(self.clip_of[i])
        info = self.videos[k]
        rate = self.rate(info)
        span = self.num_frames / rate
        if self.sampler == "random":
            return float(torch.rand(()) * max(0.0, info.seconds - span))
        if self.sampler == "motion":
            if k not in self._motion:
                count = int(np.sum(self.file_of == k))
                starts = motion_starts(motion_profile(self._reader(k), self.fps), self.num_frames, count)
                self._motion[k] = starts / rate
            return float(self._motion[k][clip])
        if self.clips_per_video is None:
            return float(tiled_starts(clip + 1, self.num_frames, rate)[clip])
        return float(uniform_starts(info.seconds, span, self.clips_per_video)[clip])

    def load(self, i: int) -> torch.Tensor:
        start = self.clip_start(i)
        self._last_start = start
        frames = self._reader(int(self.file_of[i])).read(start, self.num_frames, self.fps, self.size)
        return to_float_clip(frames)

    def read_raw(self, i: int) -> np.ndarray:
        """Clip ``i`` as uint8 (T, H, W, 3), as decoded."""
        return self._reader(int(self.file_of[i])).read(self.clip_start(i), self.num_frames, self.fps, self.size)

    # -- sound -----------------------------------------------------------------------------
    def sound_window(self, i: int, start: float) -> tuple[float, float]:
        """(offset, duration) in seconds of the audio that goes with the clip starting at ``start``."""
        info = self.videos[int(self.file_of[i])]
        span = self.num_frames / self.rate(info)
        length = min(info.seconds, self.sound_seconds or span)
        offset = min(max(0.0, start + span / 2 - length / 2), max(0.0, info.seconds - length))
        return offset, length

    def _track(self, k: int) -> tuple[torch.Tensor, int]:
        if k not in self._audio:
            self._audio[k] = read_audio_track(self.files[k], self.sound_rate)
            if len(self._audio) > OPEN_READERS:
                self._audio.popitem(last=False)
        return self._audio[k]

    def sound_features(self, i: int, start: float) -> torch.Tensor:
        """The ``sound`` features of the audio around a clip (one decode of the track per file)."""
        wave, rate = self._track(int(self.file_of[i]))
        offset, length = self.sound_window(i, start)
        a = int(round(offset * rate))
        segment = wave[:, a: a + max(1, int(round(length * rate)))]
        if segment.shape[1] < int(0.5 * length * rate):
            raise DataError(f"the audio track ends at {wave.shape[1] / rate:.2f} s, before the clip's sound "
                            f"({offset:.2f} + {length:.2f} s)", self.file(i))
        return self.sound(segment[None])[0]

    def __getitem__(self, i: int):
        sample = super().__getitem__(i)
        if sample is None or self.sound is None:
            return sample
        try:
            sample["sound"] = self.sound_features(i, self._last_start)
        except DataError as exc:
            if self.bad_sample_log is None:
                raise
            log_bad_sample(self.bad_sample_log, i, exc)
            return None
        return sample

    def subset(self, indices) -> "VideoSubset":
        return VideoSubset(self, np.asarray(indices, dtype=np.int64))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_readers"], state["_audio"] = OrderedDict(), OrderedDict()   # open files do not pickle
        return state


class VideoSubset(SubsetDataset):
    """A view on some clips that keeps every key of the parent's samples (e.g. ``sound``)."""

    def __getitem__(self, i: int):
        sample = self.parent[int(self.indices[i])]
        if sample is not None:
            sample["index"] = torch.tensor(i, dtype=torch.long)
        return sample

    def subset(self, indices) -> "VideoSubset":
        return VideoSubset(self.parent, self.indices[np.asarray(indices, dtype=np.int64)])

    def file(self, i: int) -> Path:
        return self.parent.file(int(self.indices[i]))


# -- folders ----------------------------------------------------------------------------------
def find_video_files(root: str | Path) -> list[Path]:
    """Every video file under ``root`` (any depth, hidden folders skipped), sorted."""
    return find_media_files(root, VIDEO_EXTENSIONS, "video")


def video_folder(root: str | Path, **clip_options) -> VideoClips:
    """A ``VideoClips`` dataset of every video under ``root`` (see the module docstring)."""
    root = Path(root)
    files = find_video_files(root)
    classes: list[str | None] = [p.relative_to(root).parts[0] if len(p.relative_to(root).parts) > 1 else None
                                 for p in files]
    y, class_names = string_ids(classes)
    # A video's number within its class: a subject-wise split then holds out videos of every class.
    seen: dict[str | None, int] = {}
    subjects = []
    for c in classes:
        subjects.append(seen.get(c, 0))
        seen[c] = subjects[-1] + 1
    return VideoClips(files, y if class_names else None, subjects, class_names or None, source=str(root),
                      **clip_options)


def video_files(paths: Sequence[str | Path], **clip_options) -> VideoClips:
    """Unlabelled clips of some files (each file its own subject)."""
    return VideoClips(list(paths), subjects=np.arange(len(paths)), source=",".join(str(p) for p in paths),
                      **clip_options)


__all__ = ["SAMPLERS", "VideoClips", "VideoSubset", "video_folder", "video_files", "find_video_files",
           "motion_profile", "motion_starts", "uniform_starts", "tiled_starts", "clip_count"]
