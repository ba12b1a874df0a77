"""1-D convolutional encoders for multichannel sequences (B, C, T): sensor windows, waveforms."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from selfsup.encoders.base import Encoder


class TPNEncoder(Encoder):
    """The Transformation Prediction Network's trunk (Saeed et al. 2019).

    Conv1d 32@24, 64@16, 96@8 (stride 1, no padding), each followed by ReLU and dropout, then
    global max-pooling over time. (B, C, T) -> sequence (B, T - 45, 96); ``embed`` (B, 96).
    """

    output_kind = "sequence"

    def __init__(self, in_channels: int, widths=(32, 64, 96), kernels=(24, 16, 8), dropout: float = 0.1):
        super().__init__()
        layers, c = [], in_channels
        for width, k in zip(widths, kernels):
            layers += [nn.Conv1d(c, width, k), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            c = width
        self.net = nn.Sequential(*layers)
        self.embed_dim = self.feature_dim = c
        self.min_input_length = sum(k - 1 for k in kernels) + 1
        self._depths = [i for i, m in enumerate(self.net) if isinstance(m, nn.Dropout)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(self.net(x), "b d t -> b t d")

    def layer_features(self, x):
        feats, h = {}, x
        for i, module in enumerate(self.net):
            h = module(h)
            if i in self._depths:
                feats[f"conv{len(feats) + 1}"] = h.amax(dim=2)
        return feats


class _ResidualBlock1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int = 5):
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, stride, pad, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(inplace=True),
            nn.Conv1d(c_out, c_out, kernel, 1, pad, bias=False), nn.BatchNorm1d(c_out))
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                     nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm1d(c_out)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class ResNet1dEncoder(Encoder):
    """A deeper 1-D ResNet for longer windows: a stem, then stages of two residual blocks,
    each stage halving time. (B, C, T) -> sequence (B, ~T / 2**len(widths), widths[-1])."""

    output_kind = "sequence"

    def __init__(self, in_channels: int, widths=(64, 128, 256), kernel: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(in_channels, widths[0], 7, 1, 3, bias=False),
                                  nn.BatchNorm1d(widths[0]), nn.ReLU(inplace=True))
        stages, c = [], widths[0]
        for w in widths:
            stages.append(nn.Sequential(_ResidualBlock1d(c, w, 2, kernel), _ResidualBlock1d(w, w, 1, kernel)))
            c = w
        self.stages = nn.ModuleList(stages)
        self.embed_dim = self.feature_dim = c
        self.min_input_length = 2 ** len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for stage in self.stages:
            h = stage(h)
        return rearrange(h, "b d t -> b t d")

    def layer_features(self, x):
        feats, h = {}, self.stem(x)
        for i, stage in enumerate(self.stages):
            h = stage(h)
            feats[f"stage{i + 1}"] = h.amax(dim=2)
        return feats
