"""Decoding audio files into (C, N) float tensors at a chosen sample rate.

soundfile (libsndfile) reads wav, flac, ogg and mp3; PyAV reads the rest, including the
audio track of video files. torchaudio (2.9+ has no I/O) only resamples. Every failure is a
``DataError`` that names the file: unknown extension, unreadable or truncated data, no
audio at all, zero length, digital silence.

    load_audio(path, sample_rate=16000, mono=True) -> (Tensor (C, N), 16000)
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF

from selfsup.errors import DataError

log = logging.getLogger(__name__)

SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
PYAV_AUDIO_EXTENSIONS = (".opus", ".m4a", ".aac", ".wma")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS + PYAV_AUDIO_EXTENSIONS + VIDEO_EXTENSIONS


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    frames: int          # per channel, at sample_rate
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def check_extension(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise DataError(f"unknown audio extension {path.suffix or '(none)'!r}; "
                        f"readable: {' '.join(AUDIO_EXTENSIONS)}", path)
    if not path.is_file():
        raise DataError("no such file", path)
    return path


def _uses_soundfile(path: Path) -> bool:
    return path.suffix.lower() in SOUNDFILE_EXTENSIONS


def _wav_truncation(path: Path) -> str | None:
    """Why a RIFF/WAVE file is shorter than its header says, or None.

    libsndfile silently clamps a truncated wav to the bytes present, so the declared size of
    the 'data' chunk is compared with the file's size here.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # not plain RIFF (RF64, ...): let the decoder judge
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                missing = offset + 8 + chunk_size - size
                return f"truncated: the header declares {chunk_size} bytes of samples, {missing} are missing" \
                    if missing > 0 else None
            offset += 8 + chunk_size + (chunk_size & 1)
    return "truncated: no 'data' chunk with samples"


def probe_audio(path: str | Path) -> AudioInfo:
    """Sample rate, length and channels of a file's audio, from its header where possible."""
    path = check_extension(path)
    try:
        if _uses_soundfile(path):
            import soundfile as sf

            if path.suffix.lower() == ".wav" and (why := _wav_truncation(path)):
                raise DataError(why, path)
            info = sf.info(str(path))
            return _checked(AudioInfo(int(info.samplerate), int(info.frames), int(info.channels)), path)
        return _checked(_probe_pyav(path), path)
    except DataError:
        raise
    except Exception as exc:  # libsndfile / FFmpeg errors of every kind
        raise DataError(f"unreadable audio ({_reason(exc)})", path) from None


def _checked(info: AudioInfo, path: Path) -> AudioInfo:
    if info.frames <= 0:
        raise DataError("zero-length audio (no samples)", path)
    return info


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _probe_pyav(path: Path) -> AudioInfo:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise DataError("has no audio stream", path)
        stream = container.streams.audio[0]
        rate = int(stream.rate or stream.codec_context.sample_rate)
        seconds = (float(stream.duration * stream.time_base) if stream.duration is not None
                   else (container.duration or 0) / 1_000_000)
        return AudioInfo(rate, int(round(seconds * rate)), int(stream.channels or stream.codec_context.channels))


def _decode_soundfile(path: Path, start: int, frames: int | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if path.suffix.lower() == ".wav" and (why := _wav_truncation(path)):
        raise DataError(why, path)
    stop = None if frames is None else start + frames
    data, rate = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)  # (N, C)
    return data.T, int(rate)


def _decode_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise DataError("has no audio stream", path)
        stream = container.streams.audio[0]
        # Planar float keeps channels apart whatever the codec's own sample format.
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
        chunks = []
        for frame in container.decode(stream):
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
        rate = int(stream.rate)
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32), rate
    return np.concatenate(chunks, axis=1).astype(np.float32), rate   # (C, N)


def decode(path: str | Path, start: int = 0, frames: int | None = None) -> tuple[np.ndarray, int]:
    """(C, N) float32 samples at the file's own rate; ``start``/``frames`` in those samples."""
    path = check_extension(path)
    try:
        if _uses_soundfile(path):
            data, rate = _decode_soundfile(path, start, frames)
        else:
            data, rate = _decode_pyav(path)
            data = data[:, start: None if frames is None else start + frames]
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"unreadable or truncated audio ({_reason(exc)})", path) from None
    if data.shape[1] == 0 and start == 0:
        raise DataError("zero-length audio (no samples)", path)
    if not np.all(np.isfinite(data)):
        raise DataError("audio contains NaN or inf samples", path)
    return data, rate


def to_channels(x: torch.Tensor, mono: bool, channels: int | None = None) -> torch.Tensor:
    """(C, N) -> (1, N) mean when ``mono``; else exactly ``channels`` (mono repeated, extra dropped)."""
    if mono:
        return x.mean(dim=0, keepdim=True)
    if channels is None or x.shape[0] == channels:
        return x
    if x.shape[0] == 1:
        return x.expand(channels, -1).clone()
    return x[:channels] if x.shape[0] > channels else torch.cat([x, x[-1:].expand(channels - x.shape[0], -1)])


def resample(x: torch.Tensor, orig: int, target: int | None) -> torch.Tensor:
    """(C, N) at ``orig`` Hz -> (C, N') at ``target`` Hz (band-limited sinc interpolation)."""
    if target is None or orig == target:
        return x
    return AF.resample(x, orig, target)


def load_audio(path: str | Path, sample_rate: int | None = 16000, mono: bool = True,
               channels: int | None = None, offset: float = 0.0, duration: float | None = None,
               allow_silence: bool = False) -> tuple[torch.Tensor, int]:
    """Decode a file (or a video's audio track) -> (Tensor (C, N), rate).

    ``sample_rate=None`` keeps the file's rate. ``offset``/``duration`` (seconds) read only
    part of the file. Digital silence (every sample 0) is refused unless ``allow_silence``
    (a pause inside a long recording is fine; a file with nothing in it is a mistake):
    normalising objectives would divide by its zero energy.
    """
    path = Path(path)
    native = probe_audio(path).sample_rate if (offset or duration) else None
    start = int(round(offset * native)) if native else 0
    frames = None if duration is None or native is None else int(round(duration * native))
    data, rate = decode(path, start, frames)
    if offset and data.shape[1] == 0:
        raise DataError(f"no audio after {offset:.2f} s", path)
    x = resample(to_channels(torch.from_numpy(np.ascontiguousarray(data)), mono, channels), rate, sample_rate)
    if not allow_silence and not bool((x != 0).any()):
        raise DataError("audio is digital silence (every sample is 0); remove it or add it to a silence class "
                        "with real background noise", path)
    return x, sample_rate or rate


def fix_length(x: torch.Tensor, length: int, crop: str = "center") -> torch.Tensor:
    """(..., N) -> (..., length): crop (centre or start) when longer, zero-pad the end when shorter."""
    n = x.shape[-1]
    if n > length:
        start = (n - length) // 2 if crop == "center" else 0
        return x[..., start:start + length]
    if n < length:
        return torch.nn.functional.pad(x, (0, length - n))
    return x


class RateReport:
    """Says once, in the log, that files at other rates are resampled (not once per file)."""

    def __init__(self, target: int | None):
        self.target, self.rates, self.reported = target, {}, False

    def add(self, rate: int) -> None:
        self.rates[rate] = self.rates.get(rate, 0) + 1

    def report(self, source: str) -> str | None:
        other = {r: n for r, n in self.rates.items() if self.target is not None and r != self.target}
        if not other or self.reported:
            return None
        self.reported = True
        parts = ", ".join(f"{n} at {r} Hz" for r, n in sorted(other.items()))
        message = f"{source}: mixed sample rates ({parts}); resampled to {self.target} Hz on load"
        log.warning(message)
        return message


__all__ = ["AUDIO_EXTENSIONS", "VIDEO_EXTENSIONS", "AudioInfo", "probe_audio", "decode", "load_audio",
           "to_channels", "resample", "fix_length", "RateReport"]
