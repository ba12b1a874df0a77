"""Audio encoders on batched waveforms (B, C, N): a log-mel front end, a spectrogram CNN and
CPC's raw-waveform encoder.

``LogMelFrontEnd`` is a standalone module, (B, C, N) -> (B, C * n_mels, frames), so any
sequence encoder can run on log-mel frames; its defaults are those of Audio2Vec / COLA:
25 ms windows, 10 ms hop, 64 mel bins over 60-7800 Hz, log compression, per-clip
normalisation.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from einops import rearrange
from torch import nn

from selfsup.encoders.base import Encoder


def mean_max_pool(sequence: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, D): mean + max over time (BYOL-A's pooling; robust to clip length)."""
    return sequence.mean(dim=1) + sequence.amax(dim=1)


class LogMelFrontEnd(nn.Module):
    """(B, C, N) waveform -> (B, C * n_mels, frames) log-mel spectrogram, frames = 1 + N // hop.

    ``normalize="clip"`` standardises each clip's channel over (mel, time) (a floor on the
    standard deviation keeps silence finite); ``"none"`` leaves log(mel power + offset).
    """

    def __init__(self, sample_rate: int = 16000, window_ms: float = 25.0, hop_ms: float = 10.0, n_mels: int = 64,
                 f_min: float = 60.0, f_max: float = 7800.0, log_offset: float = 1e-6, normalize: str = "clip"):
        super().__init__()
        if normalize not in ("clip", "none"):
            raise ValueError(f"normalize must be 'clip' or 'none', got {normalize!r}")
        self.sample_rate, self.n_mels, self.normalize, self.log_offset = sample_rate, n_mels, normalize, log_offset
        self.win_length = int(round(sample_rate * window_ms / 1000))
        self.hop_length = int(round(sample_rate * hop_ms / 1000))
        self.n_fft = 2 ** math.ceil(math.log2(self.win_length))
        self.f_max = min(f_max, sample_rate / 2)  # 7800 Hz does not exist at 8 kHz
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        fbank = torchaudio.functional.melscale_fbanks(self.n_fft // 2 + 1, f_min, self.f_max, n_mels, sample_rate,
                                                      norm=None, mel_scale="htk")            # (F, M)
        self.register_buffer("fbank", rearrange(fbank, "f m -> m f").contiguous(), persistent=False)

    def frames(self, samples: int) -> int:
        return 1 + samples // self.hop_length

    def mel_power(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, N) -> (B, C, M, T) mel power spectrogram (reflect-padded, centred frames).

        torch.stft plus one matmul with the filterbank: the same numbers as
        torchaudio.transforms.MelSpectrogram / librosa, without their extra passes.
        """
        b, c, n = x.shape
        spec = torch.stft(x.float().reshape(b * c, n), self.n_fft, self.hop_length, self.win_length, self.window,
                          center=True, pad_mode="reflect", return_complex=True)          # (B C, F, T)
        power = spec.real.square() + spec.imag.square()                                  # |X|^2, no complex abs
        return (self.fbank @ power).reshape(b, c, self.n_mels, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.log(self.mel_power(x) + self.log_offset)                             # (B, C, M, T)
        if self.normalize == "clip":
            var, mean = torch.var_mean(spec, dim=(-2, -1), keepdim=True)
            spec = (spec - mean) / var.sqrt().clamp_min(1e-3)
        return rearrange(spec, "b c m t -> b (c m) t")


class LogMelFeatures(Encoder):
    """No weights: the front end's frames as the sequence (B, frames, C * n_mels), pooled
    mean + max over time. The raw-feature baseline for probes, not a trainable encoder."""

    output_kind = "sequence"

    def __init__(self, sample_rate: int = 16000, in_channels: int = 1, n_mels: int = 64):
        super().__init__()
        self.frontend = LogMelFrontEnd(sample_rate, n_mels=n_mels)
        self.embed_dim = self.feature_dim = in_channels * n_mels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(self.frontend(x), "b f t -> b t f")

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return mean_max_pool(features)


class SpectrogramCNN(Encoder):
    """Conv blocks over log-mel slices, then a linear layer per time step (BYOL-A / Audio2Vec).

    (B, C, N) waveform -> log-mel (B, C, M, T) -> [Conv3x3-BN-ReLU-MaxPool] x len(widths)
    (pools 2x2, 2x2, then 2x1: time / 4) -> (B, T / 4, embed_dim) sequence; ``embed``:
    mean + max over time. A 4-D input (B, C, M, T) is taken as an already computed log-mel.
    """

    output_kind = "sequence"

    def __init__(self, sample_rate: int = 16000, in_channels: int = 1, n_mels: int = 64,
                 widths: tuple[int, ...] = (16, 32, 64), embed_dim: int = 256):
        super().__init__()
        self.in_channels = in_channels
        self.frontend = LogMelFrontEnd(sample_rate, n_mels=n_mels)
        pools = [(2, 2)] * (len(widths) - 1) + [(2, 1)]
        blocks, c, m = [], in_channels, n_mels
        for w, pool in zip(widths, pools):
            blocks.append(nn.Sequential(nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                                        nn.ReLU(inplace=True), nn.MaxPool2d(pool)))
            c, m = w, m // pool[0]
        if m < 1:
            raise ValueError(f"{n_mels} mel bins are too few for {len(widths)} pooling blocks")
        self.blocks = nn.ModuleList(blocks)
        self.project = nn.Sequential(nn.Linear(c * m, embed_dim), nn.ReLU(inplace=True))
        self.embed_dim = self.feature_dim = embed_dim
        self.time_stride = 2 ** (len(widths) - 1)
        # the fewest samples whose frame count survives the time pooling
        self.min_input_length = (self.time_stride - 1) * self.frontend.hop_length

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return x
        return rearrange(self.frontend(x), "b (c m) t -> b c m t", c=self.in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.spectrogram(x)
        for block in self.blocks:
            h = block(h)                                                     # (B, D, M', T')
        return self.project(rearrange(h, "b d m t -> b t (d m)"))            # (B, T', embed_dim)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return mean_max_pool(features)

    def layer_features(self, x):
        feats, h = {}, self.spectrogram(x)
        for i, block in enumerate(self.blocks):
            h = block(h)
            feats[f"block{i + 1}"] = mean_max_pool(rearrange(h, "b d m t -> b (m t) d"))
        feats["output"] = self.embed(x)
        return feats


class _CausalConvContext(nn.Module):
    """Dilated causal Conv1d stack (kernel 2, dilations 1, 2, 4, 8): c_t sees z_<=t only."""

    def __init__(self, dim: int, out_dim: int, dilations=(1, 2, 4, 8)):
        super().__init__()
        layers, c = [], dim
        for d in dilations:
            layers += [nn.ConstantPad1d((d, 0), 0.0), nn.Conv1d(c, out_dim, 2, dilation=d), nn.ReLU(inplace=True)]
            c = out_dim
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:                      # (B, T, D) -> (B, T, H)
        return rearrange(self.net(rearrange(z, "b t d -> b d t")), "b h t -> b t h")


class _GRUContext(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.gru = nn.GRU(dim, out_dim, batch_first=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.gru(z)[0]


def _conv_length(n: int, kernels, strides, paddings) -> int:
    for k, s, p in zip(kernels, strides, paddings):
        n = (n + 2 * p - k) // s + 1
    return n


class CPCWaveEncoder(Encoder):
    """CPC's raw-waveform encoder (Oord et al. 2018) with a context network.

    Strided Conv1d (kernels 10/8/4/4/4, strides 5/4/2/2/2: one latent per 160 samples, i.e.
    per 10 ms at 16 kHz), each with GroupNorm and ReLU. ``forward`` gives the latents z
    (B, N / 160, width) that CPC predicts; the context network (``context="gru"`` or
    ``"causal-conv"``, or ``"none"``) summarises z_<=t into c_t (B, T, context_dim), and
    ``embed`` pools c mean + max over time (the paper probes c).
    """

    output_kind = "sequence"
    KERNELS, STRIDES, PADDINGS = (10, 8, 4, 4, 4), (5, 4, 2, 2, 2), (3, 2, 1, 1, 1)

    def __init__(self, sample_rate: int = 16000, in_channels: int = 1, width: int = 256, context: str = "gru",
                 context_dim: int = 256):
        super().__init__()
        layers, c = [], in_channels
        for k, s, p in zip(self.KERNELS, self.STRIDES, self.PADDINGS):
            # GroupNorm(1, .) normalises within a sample: no batch statistics for CPC's negatives to exploit
            layers += [nn.Conv1d(c, width, k, s, p), nn.GroupNorm(1, width), nn.ReLU(inplace=True)]
            c = width
        self.convs = nn.Sequential(*layers)
        if context == "gru":
            self.context_network = _GRUContext(width, context_dim)
        elif context == "causal-conv":
            self.context_network = _CausalConvContext(width, context_dim)
        elif context == "none":
            self.context_network = None
        else:
            raise ValueError(f"context must be 'gru', 'causal-conv' or 'none', got {context!r}")
        self.feature_dim = width
        self.embed_dim = width if self.context_network is None else context_dim
        self.hop = math.prod(self.STRIDES)
        self.min_input_length = next(n for n in range(1, 10 * self.hop)
                                     if _conv_length(n, self.KERNELS, self.STRIDES, self.PADDINGS) >= 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(self.convs(x), "b d t -> b t d")                    # (B, T, width)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        z = self(x)
        return z if self.context_network is None else self.context_network(z)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return mean_max_pool(self.context(x))

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return mean_max_pool(features)

    def layer_features(self, x):
        z = self(x)
        feats = {"latents": mean_max_pool(z)}
        if self.context_network is not None:
            feats["context"] = mean_max_pool(self.context_network(z))
        return feats


__all__ = ["LogMelFrontEnd", "LogMelFeatures", "SpectrogramCNN", "CPCWaveEncoder", "mean_max_pool"]
