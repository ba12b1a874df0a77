"""Context encoder (Pathak et al. 2016): fill in a missing region from its surroundings.

The modality supplies ``make_mask(x) -> (B, 1, H, W)`` (True = missing; for images a central
square, random blocks or random blob-shaped regions). The missing pixels are replaced by the
mean of the pixels left, the encoder maps the damaged input to its feature map, and a decoder --
every position of the map joined with the map's pooled vector (global context, standing in
for the paper's channel-wise fully connected layer), upsampled to the input size and refined
by two convolutions -- predicts the input. The loss is the squared error on the missing
region (plus ``context_weight`` times the error elsewhere).

``adversarial`` > 0 adds the paper's adversarial term: a small discriminator tells real
inputs from completed ones; the decoder is trained to fool it through a frozen copy of the
discriminator's weights, so that one optimiser can step both.

Metrics: ``mse`` on the missing region; ``baseline_mse`` of the trivial predictor that fills
each missing position with the batch's mean input at that position (it even peeks at the
held-out samples); ``relative_mse`` = mse / baseline_mse (below 1 beats it).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput


class MapDecoder(nn.Module):
    """Feature map (B, D, h, w) and its pooled vector (B, D) -> output (B, C, H, W)."""

    def __init__(self, d: int, out_channels: int, hidden: int = 64):
        super().__init__()
        self.mix = nn.Sequential(nn.Conv2d(2 * d, hidden, 1), nn.ReLU(inplace=True))
        self.refine = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(hidden, out_channels, 3, padding=1))

    def forward(self, fmap: torch.Tensor, pooled: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        context = pooled[:, :, None, None].expand_as(fmap)
        h = self.mix(torch.cat([fmap, context], dim=1))
        return self.refine(F.interpolate(h, size=size, mode="bilinear", align_corners=False))


class Discriminator(nn.Module):
    """(B, C, H, W) -> (B,) real/fake logits: two strided convs, global average, linear."""

    def __init__(self, channels: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, width, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Conv2d(width, 2 * width, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the positions where ``mask`` (B, 1, H, W) is 1, all channels."""
    per_position = (pred - target).pow(2).mean(dim=1, keepdim=True)
    return (per_position * mask).sum() / mask.sum().clamp_min(1.0)


class Inpainting(Objective):
    requires = ("map",)

    def __init__(self, encoder: Encoder, make_mask: Callable[[torch.Tensor], torch.Tensor], channels: int,
                 hidden: int = 64, context_weight: float = 0.0, adversarial: float = 0.0):
        super().__init__()
        self.make_mask, self.context_weight, self.adversarial = make_mask, context_weight, adversarial
        self.decoder = MapDecoder(encoder.feature_dim, channels, hidden)
        self.discriminator = Discriminator(channels) if adversarial > 0 else None

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]
        mask = self.make_mask(x).to(x.dtype)                                         # (B, 1, H, W), 1 = missing
        kept = 1 - mask
        fill = (x * kept).sum(dim=(0, 2, 3), keepdim=True) / kept.sum().clamp_min(1.0)    # seen pixels only
        fmap = encoder(x * (1 - mask) + fill * mask)                                 # (B, D, h, w)
        pred = self.decoder(fmap, encoder.pool(fmap), tuple(x.shape[-2:]))          # (B, C, H, W)
        missing = masked_mse(pred, x, mask)
        loss = missing + (self.context_weight * masked_mse(pred, x, 1 - mask) if self.context_weight else 0.0)
        with torch.no_grad():
            baseline = masked_mse(x.mean(dim=0, keepdim=True).expand_as(x), x, mask)
            metrics = {"mse": missing.detach(), "baseline_mse": baseline,
                       "relative_mse": missing.detach() / baseline.clamp_min(1e-12)}
        if self.discriminator is not None:
            completed = x * (1 - mask) + pred * mask
            adv, d_loss, d_acc = self._adversarial(x, completed)
            loss = loss + self.adversarial * adv + d_loss
            metrics.update(adversarial=adv.detach(), discriminator=d_loss.detach(), discriminator_acc=d_acc)
        return ObjectiveOutput(loss, metrics)

    def _adversarial(self, real, completed):
        """(generator loss through frozen discriminator weights, discriminator loss, its accuracy)."""
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        fooled = functional_call(self.discriminator, frozen, (completed,))
        generator = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        logits = self.discriminator(torch.cat([real, completed.detach()]))
        target = torch.cat([torch.ones(len(real)), torch.zeros(len(real))]).to(logits)
        d_loss = F.binary_cross_entropy_with_logits(logits, target)
        d_acc = ((logits.detach() > 0).to(target) == target).float().mean()
        return generator, d_loss, d_acc


__all__ = ["Inpainting", "MapDecoder", "Discriminator", "masked_mse"]
