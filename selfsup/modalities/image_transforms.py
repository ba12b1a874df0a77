"""View augmentations for images (B, C, H, W) with values in [0, 1].

Two implementations of the SimCLR recipe (random resized crop, horizontal flip, colour
jitter, random grey, Gaussian blur; each op applied to a random fraction of the batch by
the generic ``RandomApply``):

* ``batched_augmentation`` -- batched tensor ops on the batch's device: every sample draws its
  own parameters, and the whole batch goes through one ``grid_sample`` (crop, flip, rotation),
  a few elementwise ops (colour) and one grouped convolution (blur). No Python loop over
  samples, so a GPU is not starved and the CPU does one large op instead of B small ones.
* ``torchvision_augmentation`` -- the same recipe written with ``torchvision.transforms.v2``
  and applied sample by sample (``PerSample``): the reference that the batched one is
  measured against (``benchmarks/images.py`` and docs/images.md give the speed-up).

``MultiView`` turns one augmentation into several views; ``patch_grid`` cuts images into
a grid of (overlapping) patches for patch-based objectives (CPC v2, jigsaw ...).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from selfsup.modalities.base import Transformation
from selfsup.modalities.sequence_transforms import Compose, RandomApply  # generic over sample shapes

LUMA = (0.2989, 0.587, 0.114)  # ITU-R 601 luma weights as torchvision rounds them (rgb_to_grayscale)


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, 1) to broadcast over an image batch."""
    return values.view(-1, *([1] * (x.dim() - 1)))


def _uniform(n: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, device=like.device, dtype=like.dtype)


def grey(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) luma; grey input passes through."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


# -- geometry ---------------------------------------------------------------------------------
class RandomResizedCrop(Transformation):
    """A random crop of each image (area fraction ``scale``, aspect ``ratio``), resized to
    ``size``; optionally a horizontal flip with probability ``flip`` and a rotation of up to
    ``degrees`` (Exemplar's heavy augmentation). One affine ``grid_sample`` for the batch.
    """

    name = "resized_crop"

    def __init__(self, size: int | Sequence[int], scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), flip: float = 0.5,
                 degrees: float = 0.0):
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.scale, self.ratio, self.flip, self.degrees = tuple(scale), tuple(ratio), flip, degrees

    def forward(self, x):
        b = x.shape[0]
        area = _uniform(b, *self.scale, x)
        log_ratio = _uniform(b, math.log(self.ratio[0]), math.log(self.ratio[1]), x)
        # Width and height of the crop as fractions of the image's (clamped inside it); the
        # aspect ratio is in pixels, so the image's own aspect H / W enters the fractions.
        relative = torch.exp(log_ratio) * (x.shape[-2] / x.shape[-1])
        w = torch.sqrt(area * relative).clamp(max=1.0)
        h = torch.sqrt(area / relative).clamp(max=1.0)
        # Centre in normalised [-1, 1] coordinates, anywhere that keeps the crop inside.
        cx = (torch.rand_like(w) * 2 - 1) * (1 - w)
        cy = (torch.rand_like(h) * 2 - 1) * (1 - h)
        sign = torch.where(torch.rand_like(w) < self.flip, -1.0, 1.0)
        angle = _uniform(b, -self.degrees, self.degrees, x) * (math.pi / 180)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([w * sign * cos, -h * sin, cx], dim=1),
                             torch.stack([w * sign * sin, h * cos, cy], dim=1)], dim=1)   # (B, 2, 3)
        grid = F.affine_grid(theta, [b, x.shape[1], *self.size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class Flip(Transformation):
    """Mirror left-right (``RandomApply(Flip(), p)`` flips a random fraction)."""

    name = "hflip"

    def forward(self, x):
        return x.flip(-1)


# -- colour -----------------------------------------------------------------------------------
class ColorJitter(Transformation):
    """Brightness, contrast, saturation and hue jitter with per-sample factors (in one random
    order per batch).

    Hue is a rotation of the chroma plane in YIQ space (a linear stand-in for HSV's hue
    shift that needs no per-pixel branching). Saturation and hue are skipped for grey images.
    """

    name = "color_jitter"

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1):
        super().__init__()
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def forward(self, x):
        b = x.shape[0]
        # a strength of 0 is no change: skipped, not computed (hue 0 would still mix channels
        # through a float32 round trip to YIQ)
        ops = [(self._brightness, self.brightness), (self._contrast, self.contrast)]
        if x.shape[1] == 3:
            ops += [(self._saturation, self.saturation), (self._hue, self.hue)]
        ops = [op for op, strength in ops if strength > 0]
        for i in torch.randperm(len(ops)).tolist():
            x = ops[i](x, b).clamp(0, 1)
        return x

    def _brightness(self, x, b):
        return x * _per_sample(_uniform(b, 1 - self.brightness, 1 + self.brightness, x), x)

    def _contrast(self, x, b):
        mean = grey(x).mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * _per_sample(_uniform(b, 1 - self.contrast, 1 + self.contrast, x), x) + mean

    def _saturation(self, x, b):
        g = grey(x)
        return (x - g) * _per_sample(_uniform(b, 1 - self.saturation, 1 + self.saturation, x), x) + g

    def _hue(self, x, b):
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                              device=x.device, dtype=x.dtype)
        angle = _uniform(b, -self.hue, self.hue, x) * 2 * math.pi
        cos, sin = torch.cos(angle), torch.sin(angle)
        one, zero = torch.ones_like(cos), torch.zeros_like(cos)
        rot = torch.stack([torch.stack([one, zero, zero], 1), torch.stack([zero, cos, -sin], 1),
                           torch.stack([zero, sin, cos], 1)], 1)                           # (B, 3, 3)
        m = torch.linalg.inv(to_yiq) @ rot @ to_yiq                                         # RGB -> RGB per sample
        return torch.einsum("bij,bjhw->bihw", m, x)


class Grey(Transformation):
    """Colour images -> their luma, kept as 3 channels; grey images pass through."""

    name = "grey"

    def forward(self, x):
        return x if x.shape[1] == 1 else grey(x).expand_as(x)


class GaussianBlur(Transformation):
    """Blur each image with its own sigma ~ U(``sigma``).

    Separable, and written as a weighted sum of ``kernel_size`` shifted copies per direction
    (each sample with its own weights): a few elementwise ops on the whole batch, faster on
    small kernels than a grouped convolution with one group per image channel.
    """

    name = "blur"

    def __init__(self, kernel_size: int = 3, sigma=(0.1, 2.0)):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"the blur kernel size must be odd, got {kernel_size}")
        self.kernel_size, self.sigma = kernel_size, tuple(sigma)

    def forward(self, x):
        b, _, h, w = x.shape
        half = self.kernel_size // 2
        sigma = _uniform(b, *self.sigma, x)
        t = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
        kernel = torch.exp(-(t[None] ** 2) / (2 * sigma[:, None] ** 2))
        kernel = kernel / kernel.sum(dim=1, keepdim=True)                          # (B, k)
        padded = F.pad(x, (half, half, 0, 0), mode="reflect")
        out = sum(_per_sample(kernel[:, j], x) * padded[..., j: j + w] for j in range(self.kernel_size))
        padded = F.pad(out, (0, 0, half, half), mode="reflect")
        return sum(_per_sample(kernel[:, j], x) * padded[..., j: j + h, :] for j in range(self.kernel_size))


class PerSample(Transformation):
    """Apply a per-image transform (e.g. a torchvision.transforms.v2 pipeline) to each image
    of a batch in turn: every image gets its own random parameters."""

    name = "per_sample"

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.transform = transform

    def forward(self, x):
        return torch.stack([self.transform(img) for img in x])


class MultiView(nn.Module):
    """Several independently augmented views of a batch: ``views = MultiView([a, a])(x)``.

    With one augmentation per view (lists of different ones give asymmetric views, as BYOL
    or multi-crop use).
    """

    def __init__(self, augmentations: Sequence[nn.Module]):
        super().__init__()
        self.augmentations = nn.ModuleList(augmentations)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [aug(x) for aug in self.augmentations]


# -- the recipes ------------------------------------------------------------------------------
def blur_kernel_size(size: int) -> int:
    """About a tenth of the image side, odd, at least 3 (SimCLR's choice)."""
    k = max(3, int(round(size * 0.1)))
    return k if k % 2 == 1 else k + 1


def batched_augmentation(size: int | Sequence[int], channels: int, crop_scale=(0.2, 1.0), flip: float = 0.5,
                         jitter: float = 0.4, hue: float = 0.1, jitter_p: float = 0.8, grey_p: float = 0.2,
                         blur_p: float = 0.5, degrees: float = 0.0) -> Compose:
    """The SimCLR view augmentation as batched tensor ops (jitter strength ``jitter``)."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    parts: list[nn.Module] = [RandomResizedCrop(hw, crop_scale, flip=flip, degrees=degrees)]
    if jitter > 0 and jitter_p > 0:
        colour = (jitter, hue) if channels == 3 else (0.0, 0.0)
        parts.append(RandomApply(ColorJitter(jitter, jitter, *colour), jitter_p))
    if channels == 3 and grey_p > 0:
        parts.append(RandomApply(Grey(), grey_p))
    if blur_p > 0:
        parts.append(RandomApply(GaussianBlur(blur_kernel_size(min(hw))), blur_p))
    return Compose(parts)


def torchvision_augmentation(size: int | Sequence[int], channels: int, crop_scale=(0.2, 1.0), flip: float = 0.5,
                             jitter: float = 0.4, hue: float = 0.1, jitter_p: float = 0.8, grey_p: float = 0.2,
                             blur_p: float = 0.5, degrees: float = 0.0) -> PerSample:
    """The same recipe with torchvision.transforms.v2, image by image."""
    from torchvision.transforms import v2

    hw = (size, size) if isinstance(size, int) else tuple(size)
    parts: list = [v2.RandomResizedCrop(hw, scale=tuple(crop_scale), antialias=True)]
    if degrees:
        parts.append(v2.RandomRotation(degrees))
    if flip:
        parts.append(v2.RandomHorizontalFlip(flip))
    if jitter > 0 and jitter_p > 0:
        colour = dict(saturation=jitter, hue=hue) if channels == 3 else {}
        parts.append(v2.RandomApply([v2.ColorJitter(brightness=jitter, contrast=jitter, **colour)], p=jitter_p))
    if channels == 3 and grey_p > 0:
        parts.append(v2.RandomGrayscale(grey_p))
    if blur_p > 0:
        parts.append(v2.RandomApply([v2.GaussianBlur(blur_kernel_size(min(hw)), sigma=(0.1, 2.0))], p=blur_p))
    return PerSample(v2.Compose(parts))


AUGMENTATION_BACKENDS = {"batched": batched_augmentation, "torchvision": torchvision_augmentation}


# -- patches ----------------------------------------------------------------------------------
def patch_grid(x: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, Gh, Gw, C, size, size): the patches of a sliding ``size`` window
    moved by ``stride``; Gh = (H - size) // stride + 1 (likewise Gw)."""
    if size > min(x.shape[-2:]):
        raise ValueError(f"patches of {size} px do not fit in {tuple(x.shape[-2:])} images")
    tiles = x.unfold(2, size, stride).unfold(3, size, stride)          # (B, C, Gh, Gw, size, size)
    return rearrange(tiles, "b c gh gw p q -> b gh gw c p q")


__all__ = ["RandomResizedCrop", "Flip", "ColorJitter", "Grey", "GaussianBlur", "Compose", "RandomApply",
           "PerSample", "MultiView", "batched_augmentation", "torchvision_augmentation", "patch_grid", "grey",
           "AUGMENTATION_BACKENDS", "blur_kernel_size"]
