"""2-D convolutional encoders for images (B, C, H, W) with values in [0, 1].

All give a feature map (``output_kind = "map"``, (B, D, H', W')) and ``embed`` = global
average pooling of it. ``layer_features`` gives every stage's output (conv1 ... last),
average-pooled to a grid small enough that each layer has at most ``max_layer_dim``
features, for per-layer linear probes. The input stage normalises with the training data's
per-channel mean and std (fixed buffers saved with the encoder) and can replace the image
by its Sobel gradients (DeepCluster's input option).

* ``small-cnn``: 4 conv layers (32-64-128-128), trains in minutes on a CPU (default).
* ``alexnet``: the 5-conv AlexNet of the seed papers, adapted to small inputs (5x5 stride-1
  first layer instead of 11x11 stride 4) with BatchNorm, as the self-supervised papers train it.
* ``resnet18`` / ``resnet50``: torchvision's ResNets; ``small_stem`` (default) replaces the
  7x7 stride-2 conv and max-pool by one 3x3 stride-1 conv for 32-96 px images.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.encoders.base import Encoder


class InputStage(nn.Module):
    """Normalise with fixed per-channel (mean, std); optionally grey + Sobel x/y (2 channels)."""

    def __init__(self, in_channels: int, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 sobel: bool = False):
        super().__init__()
        mean = [0.0] * in_channels if mean is None else list(mean)
        std = [1.0] * in_channels if std is None else list(std)
        if len(mean) != in_channels or len(std) != in_channels:
            raise ValueError(f"mean/std need {in_channels} values, got {len(mean)}/{len(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1).clamp_min(1e-6))
        self.sobel = sobel
        if sobel:
            gx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
            self.register_buffer("sobel_kernels", torch.stack([gx, gx.t()])[:, None])   # (2, 1, 3, 3)
        self.out_channels = 2 if sobel else in_channels

    def forward(self, x):
        x = (x - self.mean) / self.std
        if self.sobel:
            x = F.conv2d(x.mean(dim=1, keepdim=True), self.sobel_kernels, padding=1)
        return x


def normalization_stats(images: torch.Tensor, channel_dim: int = 1) -> dict[str, list[float]]:
    """{"mean", "std"} per channel of a stack of images ((N, C, H, W); clips (N, T, C, H, W)
    with ``channel_dim=2``), rounded, for ``InputStage``."""
    dims = tuple(d for d in range(images.dim()) if d != channel_dim)
    return {"mean": [round(float(v), 4) for v in images.mean(dim=dims)],
            "std": [round(float(v), 4) for v in images.std(dim=dims).clamp_min(1e-3)]}


class ImageEncoder(Encoder):
    """Base: an input stage, then named stages whose last output is the feature map."""

    output_kind = "map"
    max_layer_dim: int = 2048

    def __init__(self, in_channels: int, mean=None, std=None, sobel: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.input = InputStage(in_channels, mean, std, sobel)
        self.stages = nn.ModuleDict()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        for stage in self.stages.values():
            h = stage(h)
        return h

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return features.mean(dim=(2, 3))

    def layer_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats, h = {}, self.input(x)
        for name, stage in self.stages.items():
            h = stage(h)
            feats[name] = bounded_pool(h, self.max_layer_dim)
        return feats


def bounded_pool(h: torch.Tensor, max_dim: int) -> torch.Tensor:
    """(B, D, H, W) -> (B, D * g * g): average-pooled to the largest g x g grid (g <= H, W)
    with at most ``max_dim`` features (at least 1 x 1)."""
    d = h.shape[1]
    g = max(1, min(int(math.sqrt(max_dim / d)), *h.shape[-2:]))
    return F.adaptive_avg_pool2d(h, g).flatten(1)


def conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class SmallCNN(ImageEncoder):
    """conv1 32@3x3, conv2 64@3x3 /2, conv3 128@3x3 /2, conv4 128@3x3, each BN + ReLU.
    (B, C, H, W) -> map (B, 128, ~H/4, ~W/4); embed (B, 128)."""

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = (32, 64, 128, 128),
                 strides: Sequence[int] = (1, 2, 2, 1), mean=None, std=None, sobel: bool = False):
        super().__init__(in_channels, mean, std, sobel)
        c = self.input.out_channels
        for i, (w, s) in enumerate(zip(widths, strides)):
            self.stages[f"conv{i + 1}"] = conv_bn(c, w, 3, s)
            c = w
        self.embed_dim = self.feature_dim = c


class AlexNetSmall(ImageEncoder):
    """AlexNet's five conv layers (64, 192, 384, 256, 256 channels; max-pools after conv1,
    conv2 and conv5) with BatchNorm and a 5x5 stride-1 first layer for small images.
    (B, C, 32, 32) -> map (B, 256, 4, 4); embed (B, 256)."""

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = (64, 192, 384, 256, 256), mean=None, std=None,
                 sobel: bool = False):
        super().__init__(in_channels, mean, std, sobel)
        if len(widths) != 5:
            raise ValueError(f"AlexNet has 5 conv layers, got {len(widths)} widths")
        pool = lambda: nn.MaxPool2d(3, 2, padding=1)  # noqa: E731 - pads so that tiny inputs still pool to >= 1
        c, kernels = self.input.out_channels, (5, 5, 3, 3, 3)
        for i, (w, k) in enumerate(zip(widths, kernels)):
            layer = conv_bn(c, w, k)
            self.stages[f"conv{i + 1}"] = nn.Sequential(*layer, pool()) if i in (0, 1, 4) else layer
            c = w
        self.embed_dim = self.feature_dim = c


class TorchvisionResNet(ImageEncoder):
    """torchvision's ResNet-18/50 without its classifier; stages conv1 (stem), layer1..layer4."""

    def __init__(self, depth: int = 18, in_channels: int = 3, small_stem: bool = True, mean=None, std=None,
                 sobel: bool = False):
        super().__init__(in_channels, mean, std, sobel)
        import torchvision

        builders = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}
        if depth not in builders:
            raise ValueError(f"ResNet depth must be 18 or 50, got {depth}")
        net = builders[depth](weights=None)
        c = self.input.out_channels
        if small_stem:
            stem = [nn.Conv2d(c, 64, 3, 1, 1, bias=False), net.bn1, net.relu]
        else:
            stem = [nn.Conv2d(c, 64, 7, 2, 3, bias=False), net.bn1, net.relu, net.maxpool]
        nn.init.kaiming_normal_(stem[0].weight, mode="fan_out", nonlinearity="relu")
        self.stages["conv1"] = nn.Sequential(*stem)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            self.stages[name] = getattr(net, name)
        self.embed_dim = self.feature_dim = net.fc.in_features


def resnet18(in_channels: int = 3, small_stem: bool = True, **kw) -> TorchvisionResNet:
    return TorchvisionResNet(18, in_channels, small_stem, **kw)


def resnet50(in_channels: int = 3, small_stem: bool = True, **kw) -> TorchvisionResNet:
    return TorchvisionResNet(50, in_channels, small_stem, **kw)


__all__ = ["ImageEncoder", "SmallCNN", "AlexNetSmall", "TorchvisionResNet", "resnet18", "resnet50", "InputStage",
           "bounded_pool", "normalization_stats"]
