"""sRGB <-> CIE Lab (D65) on batched tensors, for colourisation objectives (images and video).

Lab separates lightness (L in [0, 100]) from colour (a, b roughly in [-128, 127]), so a
network can be given L and asked for (a, b). Shapes: (..., 3, H, W) in and out; RGB in [0, 1].
"""

from __future__ import annotations

import torch

# sRGB (linear) -> XYZ, D65 white point.
_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])
_EPS = 216 / 24389           # (6/29)^3: where the cube root is replaced by a line
_KAPPA = 24389 / 27


def _linearise(rgb: torch.Tensor) -> torch.Tensor:
    return torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def _gamma(lin: torch.Tensor) -> torch.Tensor:
    return torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(0) ** (1 / 2.4) - 0.055, 12.92 * lin)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.movedim(-3, -1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> (..., 3, H, W) Lab."""
    lin = _channels_last(_linearise(rgb.clamp(0, 1)))
    xyz = lin @ _RGB_TO_XYZ.to(rgb).T / _WHITE.to(rgb)
    f = torch.where(xyz > _EPS, xyz.clamp_min(_EPS) ** (1 / 3), (_KAPPA * xyz + 16) / 116)
    lab = torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], dim=-1)
    return lab.movedim(-1, -3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) Lab -> (..., 3, H, W) sRGB clipped to [0, 1]."""
    L, a, b = _channels_last(lab).unbind(-1)
    fy = (L + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=-1)
    xyz = torch.where(f ** 3 > _EPS, f ** 3, (116 * f - 16) / _KAPPA) * _WHITE.to(lab)
    lin = xyz @ torch.linalg.inv(_RGB_TO_XYZ).to(lab).T
    return _gamma(lin).clamp(0, 1).movedim(-1, -3)
