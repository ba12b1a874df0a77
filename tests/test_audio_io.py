"""Decoding, resampling, channels, crop/pad, windows, and every bad-input case of audio I/O."""

import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from selfsup.datasets.audio_folder import AudioClips, audio_folder
from selfsup.datasets.audio_io import fix_length, load_audio, probe_audio
from selfsup.errors import DataError
from selfsup.modalities.audio import ASTERISK_PROMPTS, AudioModality

RATE = 16000


def tone(freq=440.0, seconds=0.5, rate=RATE, channels=1, amplitude=0.3):
    t = np.arange(int(seconds * rate)) / rate
    x = amplitude * np.sin(2 * np.pi * freq * t)
    return np.stack([x * (c + 1) / channels for c in range(channels)], axis=1).astype(np.float32)  # (N, C)


def dominant_frequency(x: torch.Tensor, rate: int) -> float:
    spectrum = torch.fft.rfft(x[0]).abs()
    return float(spectrum.argmax()) * rate / x.shape[-1]


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg", ".mp3"])
def test_formats_decode_to_the_same_tone(tmp_path, ext):
    path = tmp_path / f"a{ext}"
    sf.write(path, tone(), RATE)
    x, rate = load_audio(path, RATE)
    assert rate == RATE and x.shape[0] == 1
    assert abs(x.shape[1] - RATE // 2) < 1200            # mp3 adds encoder padding
    assert abs(dominant_frequency(x, RATE) - 440) < 5


def test_audio_track_of_a_video_file(tmp_path):
    import av

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = out.add_stream("aac", rate=RATE)
        samples = tone(seconds=1.0)[:, 0]
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 * i, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        step = 1024
        for start in range(0, len(samples) - step + 1, step):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + step], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = RATE, start
            for packet in audio.encode(frame):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)
    x, rate = load_audio(path, 8000)
    assert rate == 8000 and x.shape[0] == 1 and 0.8 * 8000 < x.shape[1] < 1.2 * 8000
    assert abs(dominant_frequency(x, 8000) - 440) < 5


def test_resampling_keeps_pitch_and_duration(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(1000, 1.0, rate=8000), 8000)
    x, rate = load_audio(path, 22050)
    assert rate == 22050 and x.shape[1] == 22050
    assert abs(dominant_frequency(x, 22050) - 1000) < 3
    y, native = load_audio(path, None)
    assert native == 8000 and y.shape[1] == 8000


def test_mono_mix_and_channels(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, tone(channels=2), RATE)
    stereo, _ = load_audio(path, RATE, mono=False)
    mono, _ = load_audio(path, RATE, mono=True)
    assert stereo.shape[0] == 2 and mono.shape[0] == 1
    assert torch.allclose(mono[0], stereo.mean(0), atol=1e-6)
    assert load_audio(path, RATE, mono=False, channels=1)[0].shape[0] == 1
    mono_file = tmp_path / "mono.wav"
    sf.write(mono_file, tone(), RATE)
    assert load_audio(mono_file, RATE, mono=False, channels=2)[0].shape[0] == 2


def test_offset_and_duration_read_a_part(tmp_path):
    path = tmp_path / "ramp.wav"
    sf.write(path, (np.arange(RATE) / RATE * 0.5).astype(np.float32), RATE)
    x, _ = load_audio(path, RATE, offset=0.25, duration=0.5)
    assert x.shape == (1, RATE // 2)
    assert abs(float(x[0, 0]) - 0.125) < 1e-3


def test_fix_length_crops_and_pads():
    x = torch.arange(10.0)[None]
    assert fix_length(x, 4).tolist() == [[3.0, 4.0, 5.0, 6.0]]
    assert fix_length(x, 4, "start").tolist() == [[0.0, 1.0, 2.0, 3.0]]
    padded = fix_length(x, 12)
    assert padded.shape == (1, 12) and padded[0, 10:].tolist() == [0.0, 0.0]


def test_windows_of_a_long_recording(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(seconds=3.2), RATE)
    d = AudioModality(clip_seconds=1.0, hop_seconds=0.5).load(path)
    assert len(d) == 5                     # starts 0, 0.5, 1, 1.5, 2 s (2.5 s would run past 3.2 s)
    assert all(d[i]["x"].shape == (1, RATE) for i in range(len(d)))
    assert d.labels is None


def test_asterisk_prompts_are_resampled(tmp_path):
    if not ASTERISK_PROMPTS.is_dir():
        pytest.fail("asterisk-core-sounds-en-wav is not installed (scripts/setup.sh installs it)")
    src = ASTERISK_PROMPTS / "digits" / "7.wav"
    assert probe_audio(src).sample_rate == 8000
    x, rate = load_audio(src, RATE)
    assert rate == RATE and x.shape[1] == pytest.approx(2 * probe_audio(src).frames, abs=2)


def test_mixed_sample_rates_are_resampled_and_said_once(tmp_path, caplog):
    for i, rate in enumerate([8000, 16000, 22050, 8000]):
        sf.write(tmp_path / f"{i}.wav", tone(rate=rate), rate)
    with caplog.at_level(logging.WARNING, logger="selfsup.datasets.audio_io"):
        d = audio_folder(tmp_path, clip_seconds=0.5)
        for i in range(len(d)):
            assert d[i]["x"].shape == (1, RATE // 2)
    messages = [r.getMessage() for r in caplog.records if "sample rates" in r.getMessage()]
    assert len(messages) == 1
    assert "2 at 8000 Hz" in messages[0] and "1 at 22050 Hz" in messages[0] and str(tmp_path) in messages[0]


# -- bad input: each a DataError naming the file -------------------------------------------------
def test_unreadable_file(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"this is not audio" * 20)
    with pytest.raises(DataError, match="garbage.wav.*unreadable"):
        load_audio(path)


def test_truncated_wav(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(seconds=1.0), RATE)
    path.write_bytes(path.read_bytes()[:8000])
    with pytest.raises(DataError, match="cut.wav.*truncated"):
        load_audio(path)
    with pytest.raises(DataError, match="cut.wav.*truncated"):
        audio_folder(tmp_path)          # caught when the dataset is built, not mid-training


def test_truncated_flac(tmp_path):
    path = tmp_path / "cut.flac"
    sf.write(path, (np.random.default_rng(0).normal(size=RATE) * 0.1).astype(np.float32), RATE)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.flac.*(unreadable|truncated)"):
        load_audio(path)


def test_zero_length(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1), np.float32), RATE)
    with pytest.raises(DataError, match="empty.wav.*zero-length"):
        load_audio(path)
    with pytest.raises(DataError, match="empty.wav.*zero-length"):
        audio_folder(tmp_path)


def test_unknown_extension(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(DataError, match="notes.txt.*unknown audio extension"):
        load_audio(path)
    with pytest.raises(DataError, match="notes.txt.*unknown audio extension"):
        AudioClips([path])


def test_folder_without_audio(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.txt").write_text("no audio here")
    with pytest.raises(DataError, match="no audio files.*only .txt"):
        AudioModality().load(tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        AudioModality().load(tmp_path / "missing")


def test_digital_silence_is_refused_but_a_quiet_window_is_fine(tmp_path):
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros((RATE, 1), np.float32), RATE)
    with pytest.raises(DataError, match="silent.wav.*digital silence"):
        load_audio(path)
    gap = tmp_path / "gap.wav"
    sf.write(gap, np.concatenate([np.zeros((RATE, 1)), tone(seconds=1.0)]).astype(np.float32), RATE)
    d = AudioModality(clip_seconds=0.5, hop_seconds=0.5).load(gap)
    assert float(d[0]["x"].abs().max()) == 0.0 and float(d[3]["x"].abs().max()) > 0


def test_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    x = tone()
    x[100] = np.nan
    sf.write(path, x, RATE, subtype="FLOAT")
    with pytest.raises(DataError, match="nan.wav.*NaN"):
        load_audio(path)


def test_cli_reports_bad_audio_in_one_line(tmp_path, capsys):
    from selfsup.cli import main

    bad = tmp_path / "data" / "yes"
    bad.mkdir(parents=True)
    (bad / "broken.wav").write_bytes(b"RIFF" + b"\0" * 40)
    code = main(["pretrain", "--modality", "audio", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "broken.wav" in err[0]
