"""Batched audio augmentations: waveforms (B, C, N) and, for the masks, spectrograms (B, ..., F, T).

Every one draws its parameters per sample on the batch's device with no Python loop over
the batch. Composition and random application come from ``sequence_transforms``
(``Compose``, ``RandomApply``), which work on any (B, ...) batch.
"""

from __future__ import annotations

import torch
from einops import rearrange

from selfsup.modalities.base import Transformation
from selfsup.modalities.sequence_transforms import (Compose, RandomApply, broadcast_last_axis, gather_time,
                                                   interpolate_time)


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) broadcastable against x."""
    return values.reshape(-1, *([1] * (x.dim() - 1)))


def _uniform(n: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, device=like.device, dtype=like.dtype)


class Gain(Transformation):
    """Loudness change by a gain ~ U(min_db, max_db) per clip (all channels alike)."""

    name = "gain"

    def __init__(self, min_db: float = -6.0, max_db: float = 6.0):
        super().__init__()
        self.min_db, self.max_db = min_db, max_db

    def forward(self, x):
        db = _uniform(x.shape[0], self.min_db, self.max_db, x)
        return x * _per_sample(10 ** (db / 20), x)


class AddNoise(Transformation):
    """White noise at a signal-to-noise ratio ~ U(min_snr_db, max_snr_db) of each clip's power.

    A silent clip has no power to scale by; it gets noise at ``floor`` RMS instead of none.
    """

    name = "noise"

    def __init__(self, min_snr_db: float = 10.0, max_snr_db: float = 30.0, floor: float = 1e-4):
        super().__init__()
        self.min_snr_db, self.max_snr_db, self.floor = min_snr_db, max_snr_db, floor

    def forward(self, x):
        rms = x.pow(2).flatten(1).mean(dim=1).sqrt().clamp_min(self.floor)         # (B,)
        snr = _uniform(x.shape[0], self.min_snr_db, self.max_snr_db, x)
        return x + torch.randn_like(x) * _per_sample(rms / 10 ** (snr / 20), x)


class TimeShift(Transformation):
    """Shift each clip by up to ``max_fraction`` of its length, earlier or later; zeros fill in."""

    name = "time_shift"

    def __init__(self, max_fraction: float = 0.2):
        super().__init__()
        self.max_fraction = max_fraction

    def forward(self, x):
        n = x.shape[-1]
        limit = int(self.max_fraction * n)
        shift = torch.randint(-limit, limit + 1, (x.shape[0], 1), device=x.device)   # (B, 1)
        source = torch.arange(n, device=x.device)[None, :] - shift                    # (B, N): read position
        valid = (source >= 0) & (source < n)
        return gather_time(x, source.clamp(0, n - 1)) * broadcast_last_axis(valid, x)


class Mix(Transformation):
    """Mix each clip with another clip of the batch: (1 - a) x + a x_other, a ~ U(0, max_ratio)
    (BYOL-A's mixing, with the batch as the memory of other sounds)."""

    name = "mix"

    def __init__(self, max_ratio: float = 0.4):
        super().__init__()
        self.max_ratio = max_ratio

    def forward(self, x):
        b = x.shape[0]
        if b < 2:
            return x
        # an offset of 1..b-1 modulo b: every clip is paired with another clip, never itself
        other = (torch.arange(b, device=x.device) + torch.randint(1, b, (b,), device=x.device)) % b
        ratio = _per_sample(_uniform(b, 0.0, self.max_ratio, x), x)
        return (1 - ratio) * x + ratio * x[other]


class SpeedPerturb(Transformation):
    """Play each clip faster or slower by a factor ~ U(min_factor, max_factor) (resampled with
    linear interpolation, so pitch and tempo change together, as in Kaldi's speed perturbation),
    centred and cut or zero-padded back to its length. It imitates another speaker's pitch and
    pace: an invariance for content, not for speaker identity."""

    name = "speed"

    def __init__(self, min_factor: float = 0.85, max_factor: float = 1.15):
        super().__init__()
        if not 0 < min_factor <= max_factor:
            raise ValueError(f"speed factors must satisfy 0 < min_factor <= max_factor, got {min_factor}, {max_factor}")
        self.min_factor, self.max_factor = min_factor, max_factor

    def forward(self, x):
        n = x.shape[-1]
        factor = _uniform(x.shape[0], self.min_factor, self.max_factor, x).float()[:, None]     # (B, 1)
        centre = (n - 1) / 2
        source = centre + (torch.arange(n, device=x.device, dtype=torch.float32)[None] - centre) * factor  # (B, N)
        valid = (source >= 0) & (source <= n - 1)                                              # zeros outside
        return interpolate_time(x, source.clamp(0, n - 1)) * broadcast_last_axis(valid, x)


class FormantWarp(Transformation):
    """Vocal tract length perturbation of waveforms (B, C, N) -> (B, C, N): each clip's spectrum
    is stretched along frequency by a factor ~ U(1 - max_warp, 1 + max_warp), with the tempo
    kept, unlike ``SpeedPerturb``, which moves both. Formants (and pitch) move as between a
    shorter and a longer vocal tract: an invariance for content, not for speaker identity.

    Phase-vocoder style: output bin f takes the magnitude and the instantaneous frequency of
    input bin f / factor (linearly interpolated, nothing above Nyquist), the frequency scaled by
    the factor, and its phase is accumulated frame by frame, so a tone at h Hz comes out at
    h x factor rather than at the nearest multiple of sample_rate / hop.
    """

    name = "formant_warp"

    def __init__(self, max_warp: float = 0.15, n_fft: int = 512, hop: int = 128):
        super().__init__()
        if not 0 <= max_warp < 1:
            raise ValueError(f"max_warp must be in [0, 1), got {max_warp}")
        self.max_warp, self.n_fft, self.hop = max_warp, n_fft, hop

    def forward(self, x):
        b, _, n = x.shape
        window = torch.hann_window(self.n_fft, device=x.device)
        spec = torch.stft(rearrange(x.float(), "b c n -> (b c) n"), self.n_fft, self.hop, window=window,
                          return_complex=True)
        spec = rearrange(spec, "(b c) f t -> b c t f", b=b)                          # (B, C, T, F) complex
        bins = spec.shape[-1]
        # phase advance per hop: expected for each bin, plus the deviation measured between frames
        expected = torch.arange(bins, device=x.device) * (2 * torch.pi * self.hop / self.n_fft)   # (F,)
        phase = spec.angle()
        deviation = torch.diff(phase, dim=2, prepend=phase[:, :, :1]) - expected
        advance = expected + torch.remainder(deviation + torch.pi, 2 * torch.pi) - torch.pi  # (B, C, T, F)
        factor = 1 + self.max_warp * (2 * torch.rand(b, 1, device=x.device) - 1)      # (B, 1)
        source = torch.arange(bins, device=x.device, dtype=torch.float32)[None] / factor   # (B, F)
        inside = broadcast_last_axis(source <= bins - 1, spec)
        source = source.clamp(max=bins - 1)
        magnitude = interpolate_time(spec.abs(), source) * inside
        advance = interpolate_time(advance, source) * broadcast_last_axis(factor, spec)
        start = interpolate_time(phase[:, :, :1], source)                             # (B, C, 1, F)
        phase = start + torch.cumsum(advance, dim=2) - advance[:, :, :1]
        warped = torch.polar(magnitude, phase)
        y = torch.istft(rearrange(warped, "b c t f -> (b c) f t"), self.n_fft, self.hop, window=window, length=n)
        return rearrange(y, "(b c) n -> b c n", b=b).to(x.dtype)


def span_mask(batch: int, length: int, max_width: int, count: int, device=None) -> torch.Tensor:
    """(B, length) bool, True inside ``count`` random spans of width ~ U{0..max_width} per row."""
    width = torch.randint(0, max_width + 1, (batch, count, 1), device=device)
    start = (torch.rand(batch, count, 1, device=device) * (length - width + 1)).long()
    t = torch.arange(length, device=device)[None, None, :]
    return ((t >= start) & (t < start + width)).any(dim=1)


class _SpanMask(Transformation):
    """Zero ``count`` random spans of up to ``max_fraction`` of one axis, per sample."""

    def __init__(self, max_fraction: float, count: int):
        super().__init__()
        self.max_fraction, self.count = max_fraction, count

    def mask(self, batch: int, length: int, device) -> torch.Tensor:
        return span_mask(batch, length, int(self.max_fraction * length), self.count, device)   # (B, length)


class TimeMask(_SpanMask):
    """SpecAugment's time mask on the last axis (time): waveforms (B, C, N) and spectrograms
    (B, ..., F, T) alike."""

    name = "time_mask"

    def __init__(self, max_fraction: float = 0.1, count: int = 2):
        super().__init__(max_fraction, count)

    def forward(self, x):
        n = x.shape[-1]
        return x.masked_fill(broadcast_last_axis(self.mask(x.shape[0], n, x.device), x), 0.0)


class FrequencyMask(_SpanMask):
    """SpecAugment's frequency mask on spectrograms (B, ..., F, T): whole bands of F bins."""

    name = "frequency_mask"

    def __init__(self, max_fraction: float = 0.15, count: int = 2):
        super().__init__(max_fraction, count)

    def forward(self, x):
        f = x.shape[-2]
        keep_shape = (x.shape[0], *([1] * (x.dim() - 3)), f, 1)
        return x.masked_fill(self.mask(x.shape[0], f, x.device).reshape(keep_shape), 0.0)


class WaveformFrequencyMask(_SpanMask):
    """The frequency mask applied to a waveform (B, C, N): random bands of up to
    ``max_fraction`` of the spectrum are removed in the Fourier domain, so encoders that read
    raw audio get the same augmentation as those that read spectrograms."""

    name = "waveform_frequency_mask"

    def __init__(self, max_fraction: float = 0.15, count: int = 1):
        super().__init__(max_fraction, count)

    def forward(self, x):
        removed = self.mask(x.shape[0], x.shape[-1] // 2 + 1, x.device)             # (B, N // 2 + 1)
        return filter_waveform(x, (~removed).float())


def filter_waveform(x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """(B, C, N) waveforms with each clip's Fourier bins scaled by ``gain`` (B, N // 2 + 1), the
    same for every channel of a clip."""
    spectrum = torch.fft.rfft(x.float(), dim=-1)                                    # (B, C, N // 2 + 1)
    return torch.fft.irfft(spectrum * broadcast_last_axis(gain, spectrum), n=x.shape[-1], dim=-1).to(x.dtype)


def random_segments(x: torch.Tensor, length: int) -> torch.Tensor:
    """(B, ..., N) -> (B, ..., length): one random segment of each clip (the whole clip if N <= length)."""
    n = x.shape[-1]
    if n <= length:
        return x
    start = torch.randint(0, n - length + 1, (x.shape[0], 1), device=x.device)
    return gather_time(x, start + torch.arange(length, device=x.device)[None, :])     # index (B, length)


def view_augmentation(strength: float = 1.0, speed: float = 0.15, warp: float = 0.15) -> Transformation:
    """The contrastive view augmentation: speed perturbation (by up to ``speed`` x strength) and a
    formant warp (by up to ``warp`` x strength), each on 80% of the clips, then mixing, gain,
    shift, noise, time and frequency masks.

    Speed perturbation and the formant warp make the views differ the way two speakers do: on
    held-out espeak-ng voices speed perturbation lifted 5-labels-per-class word accuracy by about
    5-7 points, and the warp on top of it by 0.5-2.5 more in two runs of the benchmark
    (benchmarks/audio.py, docs/audio.md). Both are invariances to the speaker: ``speed=0,
    warp=0`` for speaker tasks.
    """
    s = strength
    speaker = [RandomApply(SpeedPerturb(1 - speed * s, 1 + speed * s), p=0.8)] if speed > 0 else []
    speaker += [RandomApply(FormantWarp(warp * s), p=0.8)] if warp > 0 else []
    return Compose(speaker + [RandomApply(Mix(0.4 * s), p=0.5), Gain(-6 * s, 6 * s),
                              RandomApply(TimeShift(0.1 * s), p=0.5), AddNoise(max(0.0, 30 - 20 * s), 30.0),
                              RandomApply(TimeMask(0.1 * s), p=0.5),
                              RandomApply(WaveformFrequencyMask(0.15 * s), p=0.5)])


AUDIO_TRANSFORMATIONS = {cls.name: cls for cls in (Gain, AddNoise, TimeShift, Mix, SpeedPerturb, FormantWarp,
                                                   TimeMask, FrequencyMask, WaveformFrequencyMask)}

__all__ = ["Gain", "AddNoise", "TimeShift", "Mix", "SpeedPerturb", "FormantWarp", "TimeMask", "FrequencyMask",
           "WaveformFrequencyMask", "filter_waveform", "span_mask", "random_segments", "view_augmentation",
           "AUDIO_TRANSFORMATIONS"]
