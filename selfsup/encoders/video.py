"""Video encoders on clips (B, T, C, H, W) with values in [0, 1], built from the image encoders.

* ``FrameEncoder`` ("sequence"): one 2-D encoder shared by every frame, (B, T, D) frame
  embeddings, then temporal pooling (``temporal="mean"`` or ``"max"``, blind to frame order)
  or fusion (``"conv"``: two temporal convolutions over the frame embeddings before the mean,
  so the clip embedding depends on the order of frames -- the arrow of time needs that).
  A frame's embedding is its map's global average (``grid=1``), or -- for tasks about where
  things are, such as frame order -- the maximum over each cell of a ``grid`` x ``grid``
  layout, flattened and mapped by a fully connected layer to ``embed_dim`` (AlexNet's fc
  layers keep that layout too; a maximum keeps a small object's response, which an average
  over a textured cell dilutes).
* ``SpatialMapEncoder`` ("map"): dense per-frame feature maps at a fixed output stride (4 or
  8), ending in a 1x1 projection to ``embed_dim`` channels, for matching positions between
  frames (colourisation tracking, mask propagation). ``forward`` gives the space-time map
  (B, D, T, h, w); ``embed`` averages it. By default it sees frames in grey (Vondrick et
  al.: colour is what it learns to copy, so it must not be its input).

Both expose ``frame_maps(frames)`` -- (N, C, H, W) frames -> (N, D, h, w) maps -- which the
tracking evaluation uses, so any video encoder can propagate masks.
"""

from __future__ import annotations

from typing import Sequence

import torch
from einops import rearrange
from torch import nn

from selfsup.encoders import image
from selfsup.encoders.base import Encoder

BACKBONES = {"small-cnn": image.SmallCNN, "alexnet": image.AlexNetSmall, "resnet18": image.resnet18,
             "resnet50": image.resnet50}
TEMPORAL = ("mean", "max", "conv")
GRID_CHANNELS = 32          # channels of the frame map kept per grid cell
LUMA = (0.299, 0.587, 0.114)


def build_backbone(name: str, **kwargs) -> image.ImageEncoder:
    if name not in BACKBONES:
        raise ValueError(f"unknown frame backbone {name!r}; choose from {', '.join(BACKBONES)}")
    return BACKBONES[name](**kwargs)


def check_clip(x: torch.Tensor) -> None:
    if x.dim() != 5:
        raise ValueError(f"video encoders take clips (B, T, C, H, W), got shape {tuple(x.shape)}")


class VideoEncoder(Encoder):
    """Base: ``frames`` is a 2-D image encoder applied to every frame."""

    frames: image.ImageEncoder

    def frame_maps(self, frames: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def stride(self) -> int:
        """Input pixels per feature-map cell of ``frame_maps``."""
        return self._stride


def output_stride(net: nn.Module, in_channels: int, side: int = 64) -> int:
    with torch.no_grad():
        was = net.training
        out = net.eval()(torch.zeros(1, in_channels, side, side))
        net.train(was)
    return side // out.shape[-1]


class FrameEncoder(VideoEncoder):
    """(B, T, C, H, W) -> sequence (B, T, D) of frame embeddings (after temporal fusion if any);
    embed (B, D) pools over time."""

    output_kind = "sequence"

    def __init__(self, in_channels: int = 3, backbone: str = "small-cnn", temporal: str = "mean", grid: int = 1,
                 embed_dim: int = 128, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 **backbone_options):
        super().__init__()
        if temporal not in TEMPORAL:
            raise ValueError(f"temporal must be one of {TEMPORAL}, got {temporal!r}")
        if grid < 1:
            raise ValueError(f"grid must be at least 1, got {grid}")
        self.in_channels, self.temporal, self.grid = in_channels, temporal, grid
        self.frames = build_backbone(backbone, in_channels=in_channels, mean=mean, std=std, **backbone_options)
        d = self.frames.embed_dim
        self.cells = None
        if grid > 1:
            # 1x1 conv to few channels, so that a fine layout stays small: (N, 32 * grid^2) -> embed_dim
            # (BatchNorm keeps the units alive: without it a pretext task with no signal yet can
            # silence them for good)
            self.cells = nn.Sequential(nn.Conv2d(d, GRID_CHANNELS, 1, bias=False), nn.BatchNorm2d(GRID_CHANNELS),
                                       nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(grid), nn.Flatten(),
                                       nn.Linear(GRID_CHANNELS * grid * grid, embed_dim, bias=False),
                                       nn.BatchNorm1d(embed_dim), nn.ReLU(inplace=True))
            d = embed_dim
        self.fusion = None
        if temporal == "conv":
            self.fusion = nn.Sequential(nn.Conv1d(d, d, 3, padding=1), nn.BatchNorm1d(d), nn.ReLU(inplace=True),
                                        nn.Conv1d(d, d, 3, padding=1))
        self.embed_dim = self.feature_dim = d
        self._stride = output_stride(self.frames, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x)
        b = x.shape[0]
        z = self.frame_embeddings(rearrange(x, "b t c h w -> (b t) c h w"))
        z = rearrange(z, "(b t) d -> b t d", b=b)
        if self.fusion is not None:
            # residual: one-frame clips (no neighbours) keep their frame embedding
            z = z + rearrange(self.fusion(rearrange(z, "b t d -> b d t")), "b d t -> b t d")
        return z

    def frame_embeddings(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, D)."""
        return self.frames.embed(frames) if self.cells is None else self.cells(self.frames(frames))

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return features.amax(dim=1) if self.temporal == "max" else features.mean(dim=1)

    def frame_maps(self, frames: torch.Tensor) -> torch.Tensor:
        return self.frames(frames)

    def layer_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every backbone stage's features, averaged over the frames; then the clip embedding."""
        check_clip(x)
        per_frame = self.frames.layer_features(rearrange(x, "b t c h w -> (b t) c h w"))
        feats = {k: rearrange(v, "(b t) d -> b t d", b=x.shape[0]).mean(dim=1) for k, v in per_frame.items()}
        feats["clip"] = self.embed(x)
        return feats


class SpatialMapEncoder(VideoEncoder):
    """Dense frame maps at ``stride`` 4 or 8: a 2-D backbone cut where its output stride reaches
    ``stride``, then a 1x1 projection to ``embed_dim`` channels.

    (B, T, C, H, W) -> map (B, embed_dim, T, H / stride, W / stride); embed: its mean.
    ``small-cnn`` uses its own strides (4: 1, 2, 2, 1; 8: 2, 2, 2, 1); other backbones keep
    their stages up to the one whose output reaches ``stride``.
    """

    output_kind = "map"

    def __init__(self, in_channels: int = 3, stride: int = 4, embed_dim: int = 64, backbone: str = "small-cnn",
                 grey: bool = True, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 widths: Sequence[int] = (32, 64, 128, 128), **backbone_options):
        super().__init__()
        if stride not in (4, 8):
            raise ValueError(f"the spatial-map encoder has stride 4 or 8, got {stride}")
        self.in_channels, self.grey = in_channels, grey
        channels = 1 if grey and in_channels == 3 else in_channels
        if channels != in_channels:              # statistics of the luma of the data
            mean = None if mean is None else [sum(w * m for w, m in zip(LUMA, mean))]
            std = None if std is None else [sum(w * s for w, s in zip(LUMA, std))]
        if backbone == "small-cnn":
            strides = (1, 2, 2, 1) if stride == 4 else (2, 2, 2, 1)
            net = image.SmallCNN(channels, widths, strides, mean=mean, std=std, **backbone_options)
        else:
            net = build_backbone(backbone, in_channels=channels, mean=mean, std=std, **backbone_options)
            cut_at_stride(net, channels, stride)
        self.frames = net
        d = _out_channels(net, channels)
        self.project = nn.Conv2d(d, embed_dim, 1)
        self.embed_dim = self.feature_dim = embed_dim
        self._stride = output_stride(net, channels)

    def _prepare(self, frames: torch.Tensor) -> torch.Tensor:
        if self.grey and frames.shape[1] == 3:
            w = torch.tensor(LUMA, device=frames.device, dtype=frames.dtype).view(1, 3, 1, 1)
            return (frames * w).sum(dim=1, keepdim=True)
        return frames

    def frame_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, embed_dim, H / stride, W / stride)."""
        return self.project(self.frames(self._prepare(frames)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x)
        maps = self.frame_maps(rearrange(x, "b t c h w -> (b t) c h w"))
        return rearrange(maps, "(b t) d h w -> b d t h w", b=x.shape[0])

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return features.flatten(2).mean(dim=2)

    def layer_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_clip(x)
        per_frame = self.frames.layer_features(self._prepare(rearrange(x, "b t c h w -> (b t) c h w")))
        feats = {k: rearrange(v, "(b t) d -> b t d", b=x.shape[0]).mean(dim=1) for k, v in per_frame.items()}
        feats["projection"] = self.embed(x)
        return feats


def cut_at_stride(net: image.ImageEncoder, in_channels: int, stride: int, side: int = 64) -> None:
    """Drop the stages of ``net`` after the first whose output stride reaches ``stride``."""
    h = torch.zeros(1, in_channels, side, side)
    keep = []
    with torch.no_grad():
        was = net.training
        net.eval()
        h = net.input(h)
        for name, stage in net.stages.items():
            h = stage(h)
            keep.append(name)
            if side // h.shape[-1] >= stride:
                break
        net.train(was)
    if side // h.shape[-1] != stride:
        raise ValueError(f"{type(net).__name__} has no stage with output stride {stride}")
    for name in list(net.stages)[len(keep):]:
        del net.stages[name]


def _out_channels(net: nn.Module, in_channels: int) -> int:
    with torch.no_grad():
        was = net.training
        out = net.eval()(torch.zeros(1, in_channels, 32, 32))
        net.train(was)
    return int(out.shape[1])


__all__ = ["FrameEncoder", "SpatialMapEncoder", "VideoEncoder", "BACKBONES", "TEMPORAL", "build_backbone",
           "cut_at_stride"]
