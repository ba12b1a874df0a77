"""Batched audio augmentations: each does what it says, per sample, with shapes kept."""

import pytest
import torch

from selfsup.modalities import audio_transforms as at
from selfsup.objectives.audio2vec import take_slices


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.randn(16, 2, 4000) * 0.1


def test_gain_scales_each_clip_within_bounds(batch):
    out = at.Gain(-6, 6)(batch)
    ratio = (out / batch).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-4)   # one gain per clip, all channels
    db = 20 * torch.log10(ratio[:, 0])
    assert db.min() >= -6 - 1e-3 and db.max() <= 6 + 1e-3 and db.std() > 1


def test_noise_at_the_requested_snr(batch):
    out = at.AddNoise(20, 20)(batch)
    snr = 10 * torch.log10(batch.pow(2).flatten(1).mean(1) / (out - batch).pow(2).flatten(1).mean(1))
    assert torch.allclose(snr, torch.full_like(snr, 20.0), atol=0.5)
    silent = at.AddNoise(20, 20)(torch.zeros(2, 1, 1000))
    assert torch.isfinite(silent).all() and silent.abs().max() > 0


def test_time_shift_moves_content_and_fills_zeros():
    x = torch.arange(1, 11.0).repeat(64, 1, 1)                                # (64, 1, 10)
    out = at.TimeShift(0.3)(x)
    for row in out[:, 0]:
        kept = row[row != 0]
        assert len(kept) >= 7 and torch.equal(kept, torch.arange(kept[0], kept[0] + len(kept)))
    assert len({tuple(r.tolist()) for r in out[:, 0]}) > 3                   # shifts differ per sample


def test_mix_blends_with_another_clip():
    x = torch.stack([torch.full((1, 100), float(i)) for i in range(8)])
    out = at.Mix(0.4)(x)
    ratio_free = (out - x)[:, 0, 0]
    assert (out.amax(dim=(1, 2)) == out.amin(dim=(1, 2))).all()              # one ratio per clip
    assert (ratio_free != 0).any() and (out >= 0).all() and (out <= 7).all()
    assert torch.equal(at.Mix()(x[:1]), x[:1])


def test_speed_perturbation_scales_pitch_per_clip_and_keeps_length():
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * torch.pi * 440 * t).repeat(32, 2, 1)                # (32, 2, 16000): 440 Hz
    out = at.SpeedPerturb(0.8, 1.25)(tone)
    assert out.shape == tone.shape
    peak = torch.fft.rfft(out[:, 0]).abs()[:, 1:].argmax(dim=-1) + 1          # Hz, as the clip lasts 1 s
    assert peak.min() >= 440 * 0.8 - 2 and peak.max() <= 440 * 1.25 + 2 and peak.float().std() > 10
    assert torch.equal(out[:, 0], out[:, 1])                                  # one factor per clip
    assert torch.allclose(at.SpeedPerturb(1.0, 1.0)(tone), tone)
    slow = at.SpeedPerturb(0.5, 0.5)(tone)                                   # half speed: all of it still inside
    assert (slow[:, :, :100].abs().max() > 0) and (at.SpeedPerturb(2.0, 2.0)(tone)[:, :, :3000] == 0).all()
    with pytest.raises(ValueError, match="speed factors"):
        at.SpeedPerturb(1.2, 0.9)


def test_formant_warp_moves_frequencies_per_clip_and_keeps_tempo():
    t = torch.arange(16000) / 16000
    envelope = (t > 0.5).float()                                              # silent first half
    tone = (torch.sin(2 * torch.pi * 1000 * t) * envelope).repeat(32, 2, 1)   # (32, 2, 16000): 1 kHz
    out = at.FormantWarp(0.2)(tone)
    assert out.shape == tone.shape and torch.isfinite(out).all()
    peak = torch.fft.rfft(out[:, 0]).abs()[:, 1:].argmax(dim=-1) + 1          # Hz, as the clip lasts 1 s
    assert peak.min() >= 800 - 40 and peak.max() <= 1200 + 40 and peak.float().std() > 30
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5)                    # one factor per clip
    assert out[:, :, :7000].abs().max() < 0.05 * out.abs().max()              # the silence stays where it was
    assert torch.allclose(at.FormantWarp(0.0)(tone), tone, atol=1e-3)              # factor 1: the clip back
    with pytest.raises(ValueError, match="max_warp"):
        at.FormantWarp(1.5)


def test_time_mask_on_waveforms_and_spectrograms():
    wave = torch.ones(32, 1, 1000)
    out = at.TimeMask(0.1, count=1)(wave)
    zeros = (out == 0).sum(dim=(1, 2))
    assert zeros.max() <= 100 and zeros.float().mean() > 10
    spec = torch.ones(8, 64, 101)
    masked = at.TimeMask(0.2, count=2)(spec)
    columns = (masked == 0).all(dim=1)                                        # whole frames masked
    assert ((masked == 0).sum(dim=1) % 64 == 0).all() and columns.any()


def test_frequency_mask_zeroes_mel_bands():
    spec = torch.ones(8, 2, 64, 101)
    out = at.FrequencyMask(0.15, count=1)(spec)
    rows = (out == 0).all(dim=-1)                                             # (B, C, F): whole bands
    assert ((out == 0).sum(-1) % 101 == 0).all() and rows.any()
    assert (rows[:, 0] == rows[:, 1]).all() and rows.sum(-1).max() <= 9


def test_waveform_frequency_mask_removes_a_band():
    torch.manual_seed(1)
    x = torch.randn(16, 1, 2000)
    out = at.WaveformFrequencyMask(0.2, count=1)(x)
    spectrum = torch.fft.rfft(out[:, 0]).abs()
    removed = (spectrum < 1e-3).sum(-1)
    assert out.shape == x.shape and removed.max() <= 201 and removed.float().mean() > 20


def test_random_segments_are_contiguous_pieces():
    x = torch.arange(100.0).repeat(8, 2, 1)
    seg = at.random_segments(x, 30)
    assert seg.shape == (8, 2, 30)
    assert torch.equal(seg[:, :, 1:] - seg[:, :, :-1], torch.ones(8, 2, 29))
    assert len(set(seg[:, 0, 0].tolist())) > 1
    assert torch.equal(at.random_segments(x, 200), x)


def test_take_slices_cuts_along_the_last_axis():
    x = torch.arange(50.0).repeat(2, 3, 1)                                   # (2, 3, 50)
    starts = torch.tensor([[0, 10, 20], [5, 15, 40]])
    s = take_slices(x, starts, 10)
    assert s.shape == (2, 3, 3, 10)
    assert s[1, 2, 0].tolist() == list(range(40, 50)) and s[0, 1, 2, 0] == 10


def test_view_augmentation_runs_on_the_batch_device_and_keeps_shape(batch):
    aug = at.view_augmentation()
    out = aug(batch)
    assert out.shape == batch.shape and out.device == batch.device and torch.isfinite(out).all()
    assert not torch.allclose(out, batch)
