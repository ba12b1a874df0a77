"""Batched transformations of multichannel sequences (B, C, T): sensor windows and waveforms.

The eight of the Transformation Prediction Network (Saeed et al. 2019, after Um et al. 2017)
plus the helpers to compose them into augmentations. Every one draws its parameters per
sample, on the tensor's device, with no Python loop over the batch.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from selfsup.modalities.base import Transformation


def gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, ..., N) read at per-sample positions ``index`` (B, L) of the last axis -> (B, ..., L),
    the same positions for every channel of a sample."""
    flat = rearrange(x, "b ... n -> b (...) n")
    out = flat.gather(2, repeat(index, "b l -> b r l", r=flat.shape[1]))
    return out.reshape(*x.shape[:-1], index.shape[-1])


def broadcast_last_axis(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sample values along the last axis (time, or frequency bins) (B, L) -> (B, 1, ..., L),
    broadcastable against x (B, ..., L)."""
    return values.reshape(x.shape[0], *([1] * (x.dim() - 2)), values.shape[-1])


def interpolate_time(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """(B, ..., N) read at fractional positions (B, L) in [0, N-1] of the last axis, linearly
    interpolated between the two neighbouring steps -> (B, ..., L)."""
    n = x.shape[-1]
    lo = positions.floor().long().clamp(0, max(n - 2, 0))
    w = broadcast_last_axis((positions - lo).to(x.dtype), x)                                    # (B, 1.., L)
    return gather_time(x, lo) * (1 - w) + gather_time(x, (lo + 1).clamp(max=n - 1)) * w


class Identity(Transformation):
    name = "identity"

    def forward(self, x):
        return x


class AddNoise(Transformation):
    """x + N(0, sigma^2), independently per value."""

    name = "noise"

    def __init__(self, sigma: float = 0.05):
        super().__init__()
        self.sigma = sigma

    def forward(self, x):
        return x + self.sigma * torch.randn_like(x)


class Scale(Transformation):
    """Each channel of each sample multiplied by its own factor ~ N(1, sigma^2)."""

    name = "scale"

    def __init__(self, sigma: float = 0.1):
        super().__init__()
        self.sigma = sigma

    def forward(self, x):
        factor = 1.0 + self.sigma * torch.randn(x.shape[0], x.shape[1], 1, device=x.device, dtype=x.dtype)
        return x * factor


def random_rotation_matrices(n: int, device=None, dtype=torch.float32, max_angle: float = math.pi) -> torch.Tensor:
    """(n, 3, 3) rotations about uniformly random axes by angles ~ U(-max_angle, max_angle) (Rodrigues)."""
    axis = F.normalize(torch.randn(n, 3, device=device, dtype=dtype), dim=1)
    angle = (torch.rand(n, 1, 1, device=device, dtype=dtype) * 2 - 1) * max_angle
    zero = torch.zeros(n, device=device, dtype=dtype)
    kx, ky, kz = axis.unbind(1)
    k = torch.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], dim=1).view(n, 3, 3)
    eye = torch.eye(3, device=device, dtype=dtype).expand(n, 3, 3)
    return eye + torch.sin(angle) * k + (1 - torch.cos(angle)) * (k @ k)


class Rotate3d(Transformation):
    """One random 3-D rotation per sample, applied to every tri-axial channel group of it.

    ``groups`` lists the channel indices of each sensor (e.g. [[0, 1, 2], [3, 4, 5]] for an
    accelerometer and a gyroscope, which turn together because they sit in one device).
    """

    name = "rotation"

    def __init__(self, groups: Sequence[Sequence[int]], max_angle: float = math.pi):
        super().__init__()
        if not groups or any(len(g) != 3 for g in groups):
            raise ValueError(f"rotation needs tri-axial channel groups of 3 indices, got {groups}")
        self.groups = [list(g) for g in groups]
        self.max_angle = max_angle

    def forward(self, x):
        rot = random_rotation_matrices(x.shape[0], x.device, x.dtype, self.max_angle)
        out = x.clone()
        for g in self.groups:
            out[:, g, :] = (rot @ x[:, g, :]).to(out.dtype)  # (B, 3, 3) @ (B, 3, T); autocast may lower it
        return out


class Negate(Transformation):
    name = "negation"

    def forward(self, x):
        return -x


class TimeFlip(Transformation):
    """Reverse time ("horizontal flip")."""

    name = "time_flip"

    def forward(self, x):
        return x.flip(-1)


class Permute(Transformation):
    """Cut each sample at ``segments - 1`` random points and put the segments in a random order."""

    name = "permutation"

    def __init__(self, segments: int = 4):
        super().__init__()
        if segments < 2:
            raise ValueError("permutation needs at least 2 segments")
        self.segments = segments

    def order(self, batch: int, length: int, device=None) -> torch.Tensor:
        """(B, T) time indices of the permuted sequences."""
        n = self.segments
        if length < n:
            raise ValueError(f"cannot cut {length} time steps into {n} segments")
        cuts = torch.rand(batch, length - 1, device=device).argsort(dim=1)[:, : n - 1] + 1  # (B, n-1) in 1..T-1
        t = torch.arange(length, device=device)
        segment_of = (t[None, :, None] >= cuts[:, None, :]).sum(-1)          # (B, T): segment id of each step
        new_rank = torch.rand(batch, n, device=device).argsort(dim=1)        # (B, n): new position of segment s
        key = new_rank.gather(1, segment_of) * length + t                    # segments in new order, time kept inside
        return key.argsort(dim=1)

    def forward(self, x):
        b, c, t = x.shape
        return x.gather(2, repeat(self.order(b, t, x.device), "b t -> b c t", c=c))


class TimeWarp(Transformation):
    """Resample along a smooth, monotone random time curve that keeps the length.

    The speed of time is a piecewise-linear curve through ``knots`` values ~ N(1, sigma^2);
    its running sum, scaled to [0, T-1], gives where each output step reads the input.
    """

    name = "time_warp"

    def __init__(self, sigma: float = 0.2, knots: int = 4):
        super().__init__()
        self.sigma, self.knots = sigma, knots

    def time_curve(self, batch: int, length: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """(B, T) increasing read positions from 0 to T-1."""
        speed = (1 + self.sigma * torch.randn(batch, 1, self.knots + 2, device=device, dtype=dtype)).clamp_min(0.1)
        speed = F.interpolate(speed, size=length, mode="linear", align_corners=True)[:, 0]  # (B, T)
        pos = torch.cumsum(speed, dim=1) - speed[:, :1]
        return pos / pos[:, -1:] * (length - 1)

    def forward(self, x):
        b, _, t = x.shape
        return interpolate_time(x, self.time_curve(b, t, x.device, x.dtype))


class ChannelShuffle(Transformation):
    """Each sample's channels in a random order."""

    name = "channel_shuffle"

    def forward(self, x):
        b, c, t = x.shape
        perm = torch.rand(b, c, device=x.device).argsort(dim=1)
        return x.gather(1, repeat(perm, "b c -> b c t", t=t))


class RandomApply(Transformation):
    """Apply ``transform`` to a random fraction ``p`` of the batch (per sample)."""

    def __init__(self, transform: Transformation, p: float = 0.5):
        super().__init__()
        self.transform, self.p = transform, p
        self.name = f"random_{transform.name}"

    def forward(self, x):
        keep = torch.rand(x.shape[0], device=x.device) >= self.p
        mask = rearrange(keep, "b -> b" + " 1" * (x.dim() - 1))
        return torch.where(mask, x, self.transform(x))


class Compose(Transformation):
    name = "compose"

    def __init__(self, transforms: Sequence[Transformation]):
        super().__init__()
        self.transforms = torch.nn.ModuleList(transforms)

    def forward(self, x):
        for t in self.transforms:
            x = t(x)
        return x


def tpn_transformations(groups: Sequence[Sequence[int]] | None) -> list[Transformation]:
    """The eight TPN transformations in the paper's order (rotation only when groups exist)."""
    out: list[Transformation] = [AddNoise(), Scale()]
    if groups:
        out.append(Rotate3d(groups))
    out += [Negate(), TimeFlip(), Permute(), TimeWarp(), ChannelShuffle()]
    return out


SEQUENCE_TRANSFORMATIONS = {cls.name: cls for cls in
                            (AddNoise, Scale, Rotate3d, Negate, TimeFlip, Permute, TimeWarp, ChannelShuffle)}
