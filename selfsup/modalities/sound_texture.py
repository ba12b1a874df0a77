"""Sound-texture statistics (McDermott & Simoncelli 2011), as Owens et al. (2016) use them to
turn a video's ambient sound into a label for its frames.

``SoundTexture`` takes batched waveforms (B, 1, N) to (B, F) statistics of the band
envelopes of a mel spectrogram (a stand-in for the cochlear filter bank): the envelope of
each band is its amplitude, compressed (power 0.3, as the cochlea does), and summarised by

* its mean and its coefficient of variation (std / mean), per band;
* the correlations between the envelopes of bands 1, 2, 4 and 8 bands apart;
* its modulation energy: the power of the envelope's fluctuations in octave bands of
  modulation rate (0.5-1, 1-2, ... 16-32 Hz), as a fraction of its variance, per band.

Over a dataset the statistics (standardised per dimension) become labels two ways:
``SoundClusters`` -- k-means into ``k`` clusters (Owens et al.: a frame predicts its cluster) --
and ``SoundCodes`` -- the signs of the top principal components, thresholded at their medians
into balanced bits (their PCA-binarised variant: one binary label per component).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from selfsup.encoders.audio import LogMelFrontEnd
from selfsup.errors import DataError
from selfsup.objectives.deepcluster import kmeans

COMPRESSION = 0.3
CORRELATION_OFFSETS = (1, 2, 4, 8)
MODULATION_BANDS = ((0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0), (16.0, 32.0))


class SoundTexture(nn.Module):
    """(B, 1, N) waveform at ``sample_rate`` -> (B, F) texture statistics (``dim`` = F)."""

    def __init__(self, sample_rate: int = 16000, bands: int = 32, hop_ms: float = 10.0):
        super().__init__()
        self.mel = LogMelFrontEnd(sample_rate, hop_ms=hop_ms, n_mels=bands, f_min=50.0, normalize="none")
        self.bands, self.envelope_rate = bands, 1000.0 / hop_ms
        self.offsets = tuple(o for o in CORRELATION_OFFSETS if o < bands)
        self.dim = 2 * bands + sum(bands - o for o in self.offsets) + bands * len(MODULATION_BANDS)

    def envelopes(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, 1, N) -> (B, bands, frames) compressed band amplitudes."""
        power = self.mel.mel_power(wave.mean(dim=1, keepdim=True))[:, 0]          # (B, M, T)
        return power.clamp_min(0).sqrt() ** COMPRESSION

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        env = self.envelopes(wave)
        mean = env.mean(dim=-1)
        centred = env - mean[..., None]
        var = centred.square().mean(dim=-1)
        std = var.sqrt()
        cv = std / mean.clamp_min(1e-6)
        unit = centred / std[..., None].clamp_min(1e-6)
        corr = unit @ unit.transpose(1, 2) / env.shape[-1]                            # (B, M, M)
        correlations = torch.cat([torch.diagonal(corr, offset=o, dim1=1, dim2=2) for o in self.offsets], dim=1)
        return torch.cat([mean.clamp_min(1e-6).log(), cv, correlations, self.modulation(centred, var)], dim=1)

    def modulation(self, centred: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """(B, M, T) zero-mean envelopes -> (B, M * bands) share of their variance in each
        modulation band (bands above the envelope's Nyquist rate get nothing)."""
        t = centred.shape[-1]
        power = torch.fft.rfft(centred * torch.hann_window(t, device=centred.device), dim=-1).abs().square()
        freqs = torch.fft.rfftfreq(t, 1 / self.envelope_rate).to(centred.device)
        total = power[..., 1:].sum(dim=-1).clamp_min(1e-12)
        shares = [power[..., (freqs >= lo) & (freqs < hi)].sum(dim=-1) / total for lo, hi in MODULATION_BANDS]
        out = torch.stack(shares, dim=-1) * (var[..., None] > 0)
        return rearrange(out, "b m k -> b (m k)")


class _Standardised(nn.Module):
    """Per-dimension standardisation fitted on a dataset's statistics (kept as buffers)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit_scale(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() != 2 or len(features) < 2:
            raise DataError(f"sound statistics of at least 2 clips are needed (N, F), got shape {tuple(features.shape)}")
        if not torch.isfinite(features).all():
            raise DataError("sound statistics contain NaN or inf (a silent or broken audio track?)")
        self.mean.copy_(features.mean(dim=0))
        self.std.copy_(features.std(dim=0).clamp_min(1e-6))
        return self.scale(features)

    def scale(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std


class SoundClusters(_Standardised):
    """k-means clusters of standardised texture statistics; ``assign`` gives the nearest cluster."""

    def __init__(self, dim: int, k: int = 30):
        super().__init__(dim)
        self.k = k
        self.register_buffer("centroids", torch.zeros(k, dim))

    @torch.no_grad()
    def fit(self, features: torch.Tensor, seed: int = 0) -> "SoundClusters":
        z = self.fit_scale(features.float())
        if len(z) < self.k:
            raise DataError(f"{len(z)} clips cannot make {self.k} sound clusters; lower num_clusters")
        centroids, _, _ = kmeans(z, self.k, generator=torch.Generator().manual_seed(seed))
        self.centroids.copy_(centroids)
        return self

    def assign(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cdist(self.scale(features.float()), self.centroids).argmin(dim=1)


class SoundCodes(_Standardised):
    """``bits`` binary labels: the top principal components of the standardised statistics,
    each thresholded at its median over the dataset (so every bit is half ones)."""

    def __init__(self, dim: int, bits: int = 30):
        super().__init__(dim)
        self.bits = min(bits, dim)
        self.register_buffer("components", torch.zeros(dim, self.bits))
        self.register_buffer("thresholds", torch.zeros(self.bits))

    @torch.no_grad()
    def fit(self, features: torch.Tensor) -> "SoundCodes":
        z = self.fit_scale(features.float())
        _, _, v = torch.linalg.svd(z - z.mean(dim=0), full_matrices=False)
        k = min(self.bits, v.shape[0])
        self.components.zero_()
        self.components[:, :k] = v[:k].t()
        self.thresholds.copy_((z @ self.components).median(dim=0).values)
        return self

    def codes(self, features: torch.Tensor) -> torch.Tensor:
        """(N, F) -> (N, bits) float 0/1."""
        return (self.scale(features.float()) @ self.components > self.thresholds).float()


__all__ = ["SoundTexture", "SoundClusters", "SoundCodes", "MODULATION_BANDS", "CORRELATION_OFFSETS"]
