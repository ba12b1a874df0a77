"""Decoding video files (mp4, avi, mkv, webm, mov) into clips with PyAV.

    info = probe_video(path)                          # fps, frames, seconds, width, height, audio?
    clip = read_clip(path, start=1.5, num_frames=8, fps=10, size=64)   # (8, 3, 64, 64) float in [0, 1]
    wave, rate = read_audio_track(path, sample_rate=16000)             # (1, N), via audio_io.load_audio

``VideoReader`` keeps a file open between reads: a read that starts at or shortly after the
previous one's end goes on decoding instead of seeking back to a key frame, so reading a
file's clips in order costs about what decoding it once does. Resizing is done by FFmpeg's
scaler while converting to RGB (``size``: an int for square clips or (H, W); the shorter side
is scaled to fit and the rest centre-cropped, keeping the aspect ratio).

Every failure is a ``DataError`` that names the file: unknown extension, missing file,
unreadable or truncated data, no video stream, no frames, a clip that does not fit.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from selfsup.datasets.audio_io import VIDEO_EXTENSIONS, load_audio
from selfsup.errors import DataError

VIDEO_EXTENSIONS = VIDEO_EXTENSIONS  # re-exported: the extensions both readers accept
# Continue decoding (rather than seek) when a read starts at most this far after the last one.
CONTINUE_SECONDS = 2.0


@dataclass(frozen=True)
class VideoInfo:
    fps: float           # average frame rate of the video stream
    frames: int          # number of frames (declared, or estimated from the duration)
    seconds: float       # duration of the video stream
    width: int
    height: int
    has_audio: bool


def check_video_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise DataError(f"unknown video extension {path.suffix or '(none)'!r}; readable: {' '.join(VIDEO_EXTENSIONS)}",
                        path)
    if not path.is_file():
        raise DataError("no such file", path)
    return path


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def decoder_errors(path: Path, problem: str = "unreadable or truncated video"):
    """Turn whatever FFmpeg raises on damaged bytes into a DataError naming ``path``.

    PyAV maps FFmpeg's error codes onto Python's OSError family, so damaged data can surface
    as PermissionError (EPERM) or FileNotFoundError as well as InvalidDataError: only a file
    that is really gone is reported as missing."""
    try:
        yield
    except DataError:
        raise
    except Exception as exc:  # FFmpeg errors of every kind
        if isinstance(exc, FileNotFoundError) and not path.is_file():
            raise DataError("no such file", path) from None
        raise DataError(f"{problem} ({_reason(exc)})", path) from None


def as_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """None (the file's own size), N (N x N) or (H, W)."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(s) for s in size)
    return h, w


def scaled_size(height: int, width: int, size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) to scale a frame to so that it covers ``size`` with its aspect ratio kept."""
    scale = max(size[0] / height, size[1] / width)
    return max(size[0], round(height * scale)), max(size[1], round(width * scale))


class VideoReader:
    """One open video file; ``read`` returns clips as uint8 (T, H, W, 3) arrays."""

    def __init__(self, path: str | Path, threads: str = "AUTO"):
        import av

        self.path = check_video_path(path)
        with decoder_errors(self.path, "unreadable video"):
            self.container = av.open(str(self.path))
        try:
            with decoder_errors(self.path):
                if not self.container.streams.video:
                    raise DataError("has no video stream", self.path)
                self.stream = self.container.streams.video[0]
                self.stream.thread_type = threads
                self.info = self._info()
        except DataError:
            self.container.close()
            raise
        self._time_base = float(self.stream.time_base)
        self._t0 = float(self.stream.start_time * self.stream.time_base) if self.stream.start_time is not None else 0.0
        self._cursor: tuple | None = None       # (frames iterator, last frame, next frame) after a read

    def _info(self) -> VideoInfo:
        s = self.stream
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        if s.duration is not None and s.frames:
            seconds, frames = float(s.duration * s.time_base), int(s.frames)
        else:
            # mkv and webm often declare no stream length (the container's includes the audio):
            # count the video packets instead, which reads the file but decodes nothing.
            frames, seconds = self._scan_packets()
            self.container.seek(0)
            declared = (self.container.duration or 0) / 1_000_000
            if declared and seconds < declared - max(0.5, 0.2 * declared):
                raise DataError(f"truncated: the video stops at {seconds:.2f} s but the file declares "
                                f"{declared:.2f} s", self.path)
        if fps <= 0 or frames <= 0:
            raise DataError("the video stream declares no frames (empty or broken file)", self.path)
        return VideoInfo(fps, frames, seconds, int(s.codec_context.width), int(s.codec_context.height),
                         bool(self.container.streams.audio))

    def _scan_packets(self) -> tuple[int, float]:
        count, first, end = 0, None, 0.0
        for packet in self.container.demux(self.stream):
            if packet.pts is None:
                continue
            count += 1
            t = float(packet.pts * packet.time_base)
            first = t if first is None else min(first, t)
            end = max(end, t + float((packet.duration or 0) * packet.time_base))
        return count, (end - first) if first is not None else 0.0

    def close(self) -> None:
        self._cursor = None
        with decoder_errors(self.path):
            self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- decoding ------------------------------------------------------------------------------
    def _time(self, frame) -> float:
        return (frame.pts if frame.pts is not None else 0) * self._time_base - self._t0

    def _frames_from(self, start: float) -> Iterator:
        """Decoded frames from about ``start`` on: continue the last read when it ended just
        before ``start``, else seek to the key frame at or before it."""
        if self._cursor is not None:
            frames, last, upcoming = self._cursor
            last_time = self._time(last) if last is not None else -math.inf
            if last_time - 1e-6 <= start <= last_time + CONTINUE_SECONDS:
                return _chain(last, upcoming, frames)
        # Always seek: also rewinds a decoder that earlier reads drained to the end of the file.
        self.container.seek(max(0, int((start + self._t0) / self._time_base)), stream=self.stream, backward=True)
        return self.container.decode(self.stream)

    def read(self, start: float = 0.0, num_frames: int = 16, fps: float | None = None,
             size: int | Sequence[int] | None = None) -> np.ndarray:
        """``num_frames`` frames from ``start`` seconds -> uint8 (T, H, W, 3).

        ``fps=None``: consecutive frames at the file's own rate; otherwise the frame shown at
        each time ``start + k / fps`` (frames are repeated when ``fps`` is above the file's).
        """
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        size = as_size(size)
        with decoder_errors(self.path):
            frames = self._frames_from(start)
            self._cursor = None                      # until the read succeeds
            if fps is None:
                out, last, upcoming = self._consecutive(frames, start, num_frames, size)
            else:
                out, last, upcoming = self._timed(frames, start + np.arange(num_frames) / fps, size)
        if len(out) < num_frames:
            self._too_short(start, num_frames, fps, last)
        self._cursor = (frames, last, upcoming)
        return np.stack(out)

    def _consecutive(self, frames, start, num_frames, size):
        out, last, tolerance = [], None, 0.25 / self.info.fps
        for frame in frames:
            last = frame
            if self._time(frame) >= start - tolerance:
                out.append(self._convert(frame, size, {}))
                if len(out) == num_frames:
                    break
        return out, last, None

    def _timed(self, frames, targets, size):
        """The frame on screen at each target time: the last one whose time is not after it."""
        out, last, converted = [], None, {}
        tolerance = 0.25 / self.info.fps
        for frame in frames:
            t = self._time(frame)
            while len(out) < len(targets) and targets[len(out)] < t - tolerance:
                out.append(self._convert(last if last is not None else frame, size, converted))
            if len(out) == len(targets):
                return out, last, frame
            last = frame
        # End of stream: the last frame stays on screen for one frame period.
        while last is not None and len(out) < len(targets) and \
                targets[len(out)] < self._time(last) + 1 / self.info.fps - tolerance:
            out.append(self._convert(last, size, converted))
        return out, last, None

    def _convert(self, frame, size: tuple[int, int] | None, last: dict) -> np.ndarray:
        """RGB (H, W, 3) of a frame, scaled by FFmpeg; a frame repeated at once is converted once."""
        if last.get("frame") is not frame:
            if size is None:
                rgb = frame.to_ndarray(format="rgb24")
            else:
                h, w = scaled_size(frame.height, frame.width, size)
                rgb = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
                top, left = (h - size[0]) // 2, (w - size[1]) // 2
                rgb = rgb[top: top + size[0], left: left + size[1]]
            last.update(frame=frame, rgb=rgb)
        return last["rgb"]

    def _too_short(self, start, num_frames, fps, last) -> None:
        span = (num_frames - 1) / (fps or self.info.fps)
        if last is None and start <= 0:
            raise DataError("no frames could be decoded (empty or broken video)", self.path)
        ends = self._time(last) if last is not None else start
        if start + span < self.info.seconds - 2 / self.info.fps:
            raise DataError(f"truncated: frames stop at {ends:.2f} s but the header declares "
                            f"{self.info.seconds:.2f} s", self.path)
        raise DataError(f"too short for the clip: {num_frames} frames from {start:.2f} s need "
                        f"{start + span:.2f} s, the video has {self.info.seconds:.2f} s", self.path)


def _chain(last, upcoming, frames) -> Iterator:
    yield last
    if upcoming is not None:
        yield upcoming
    yield from frames


def to_float_clip(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, H, W) in [0, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255)


def probe_video(path: str | Path) -> VideoInfo:
    with VideoReader(path) as reader:
        return reader.info


def read_clip(path: str | Path, start: float = 0.0, num_frames: int = 16, fps: float | None = None,
              size: int | Sequence[int] | None = None) -> torch.Tensor:
    """One clip -> float (T, 3, H, W) in [0, 1] (see ``VideoReader.read``)."""
    with VideoReader(path) as reader:
        return to_float_clip(reader.read(start, num_frames, fps, size))


def read_frames(path: str | Path, size: int | Sequence[int] | None = None, fps: float | None = None,
                max_frames: int | None = None) -> torch.Tensor:
    """Every frame of a file (or at ``fps``) -> float (T, 3, H, W)."""
    with VideoReader(path) as reader:
        n = reader.info.frames if fps is None else int(math.floor(reader.info.seconds * fps + 1e-6))
        n = min(n, max_frames) if max_frames else n
        try:
            return to_float_clip(reader.read(0.0, n, fps, size))
        except DataError as exc:
            if "too short" not in exc.problem:
                raise
    # The declared frame count can be one too many; take what there is.
    with VideoReader(path) as reader:
        return to_float_clip(reader.read(0.0, n - 1, fps, size))


def read_audio_track(path: str | Path, sample_rate: int | None = 16000, offset: float = 0.0,
                     duration: float | None = None, mono: bool = True) -> tuple[torch.Tensor, int]:
    """The audio track of a video file -> ((C, N), rate), decoded by the audio modality's reader."""
    path = check_video_path(path)
    return load_audio(path, sample_rate, mono=mono, offset=offset, duration=duration, allow_silence=True)


def fps_fraction(fps: float) -> Fraction:
    """A frame rate as the fraction encoders want (25 -> 25/1, 29.97 -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


# Codecs per container: (video codec, audio codec, audio rate or None for any).
WRITE_CODECS = {".mp4": ("libx264", "aac", None), ".mov": ("libx264", "aac", None), ".mkv": ("libx264", "aac", None),
                ".webm": ("libvpx", "libopus", 48000), ".avi": ("mpeg4", "pcm_s16le", None)}


def write_video(path: str | Path, frames: np.ndarray | torch.Tensor, fps: float,
                audio: np.ndarray | torch.Tensor | None = None, sample_rate: int = 16000, crf: int = 18) -> Path:
    """frames uint8 (T, H, W, 3) or float (T, 3, H, W) in [0, 1] (H, W even) -> a video file whose
    codecs follow its extension (mp4/mov/mkv: H.264 + AAC, webm: VP8 + Opus, avi: MPEG-4 + PCM);
    ``audio`` (N,) or (1, N) float in [-1, 1] at ``sample_rate`` becomes a mono track."""
    import av

    from selfsup.datasets.audio_io import resample
    from selfsup.io import atomic_path

    path = Path(path)
    if path.suffix.lower() not in WRITE_CODECS:
        raise ValueError(f"cannot write {path.suffix!r} videos; writable: {' '.join(WRITE_CODECS)}")
    if isinstance(frames, torch.Tensor) and frames.is_floating_point():
        frames = (frames.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1)
    frames = np.ascontiguousarray(np.asarray(frames.cpu() if isinstance(frames, torch.Tensor) else frames,
                                             dtype=np.uint8))
    video_codec, audio_codec, audio_rate = WRITE_CODECS[path.suffix.lower()]
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=path.suffix.lower().lstrip(".").replace("mkv", "matroska")) as out:
            stream = out.add_stream(video_codec, rate=fps_fraction(fps))
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            if video_codec == "libx264":
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            track = None
            if audio is not None:
                wave = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(1, -1)
                rate = audio_rate or sample_rate
                wave = resample(wave, sample_rate, rate).clamp(-1, 1)
                track = out.add_stream(audio_codec, rate=rate, layout="mono")
            for frame in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode())
            if track is not None:
                chunk = av.AudioFrame.from_ndarray(wave.numpy(), format="fltp", layout="mono")
                chunk.sample_rate = rate
                out.mux(track.encode(chunk))
                out.mux(track.encode(None))
    return path


__all__ = ["VIDEO_EXTENSIONS", "VideoInfo", "VideoReader", "probe_video", "read_clip", "read_frames",
           "read_audio_track", "to_float_clip", "as_size", "scaled_size", "check_video_path", "fps_fraction",
           "write_video", "WRITE_CODECS", "decoder_errors"]
