"""CPC v2 on a grid of patches (Hénaff et al. 2020): predict the patches below from the ones above.

The modality cuts each sample into a grid of overlapping patches, ``make_patches(batch) ->
(B, Gh, Gw, ...)``; the encoder embeds every patch (z, (B, D, Gh, Gw)); a context network
whose output at row i sees only rows <= i (convolutions padded on top only, a PixelCNN-
style column context) gives c; a 1x1 map per step k predicts z at row i + k from c at row
i. Each prediction is scored by InfoNCE against every patch latent of the (global) batch
-- other positions of the same image and all patches of other images -- through the same
``info_nce`` as the sequence CPC of audio and sensors.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from selfsup import distributed
from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.losses import info_nce


class RowCausalConv(nn.Module):
    """A conv whose output at row i depends on input rows i - kernel + 1 .. i only."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv2d(c_in, c_out, kernel)

    def forward(self, x):
        half = self.kernel // 2
        return self.conv(F.pad(x, (half, half, self.kernel - 1, 0)))   # (left, right, top, bottom)


class ColumnContext(nn.Module):
    """Residual stack of row-causal convs: (B, D, Gh, Gw) -> (B, H, Gh, Gw)."""

    def __init__(self, d: int, hidden: int, layers: int = 3):
        super().__init__()
        self.inp = nn.Conv2d(d, hidden, 1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.ReLU(), RowCausalConv(hidden, hidden)) for _ in range(layers))

    def forward(self, z):
        h = self.inp(z)
        for block in self.blocks:
            h = h + block(h)
        return h


class GridCPC(Objective):
    def __init__(self, encoder: Encoder, make_patches: Callable[[Batch], torch.Tensor], steps: int = 2,
                 context_dim: int = 128, context_layers: int = 2, temperature: float = 1.0):
        super().__init__()
        d = encoder.embed_dim
        self.make_patches, self.steps, self.temperature = make_patches, steps, temperature
        self.context = ColumnContext(d, context_dim, context_layers)
        self.predictors = nn.ModuleList(nn.Conv2d(context_dim, d, 1) for _ in range(steps))

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        patches = self.make_patches(batch)                                            # (B, Gh, Gw, ...)
        b, gh, gw = patches.shape[:3]
        if gh <= self.steps:
            raise ValueError(f"CPC with {self.steps} prediction steps needs more than {self.steps} rows of "
                             f"patches, got {gh}; use smaller patches or fewer steps")
        z = encoder.embed(patches.flatten(0, 2))                                      # (B Gh Gw, D)
        keys = distributed.gather(z, 0)                                               # (W B Gh Gw, D)
        z = rearrange(z, "(b h w) d -> b d h w", b=b, h=gh)
        c = self.context(z)
        offset = distributed.rank() * b * gh * gw
        where = torch.arange(b * gh * gw, device=z.device).view(b, gh, gw) + offset   # row of each latent in keys
        losses, metrics = [], {}
        for k, predictor in enumerate(self.predictors, start=1):
            pred = rearrange(predictor(c[:, :, :-k]), "b d h w -> (b h w) d")          # predicts z at row + k
            logits = pred @ keys.t() / self.temperature
            loss, acc = info_nce(logits, where[:, k:].reshape(-1))
            losses.append(loss)
            metrics[f"acc_step{k}"] = acc
        metrics["pretext_acc"] = torch.stack([metrics[f"acc_step{k}"] for k in range(1, self.steps + 1)]).mean()
        return ObjectiveOutput(torch.stack(losses).mean(), metrics)
