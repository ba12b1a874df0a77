"""Colourful image colourisation (Zhang, Isola & Efros 2016): lightness in, colour classes out.

Each RGB input is converted to CIE Lab. The encoder sees the lightness alone (rendered back
to RGB with a = b = 0, so it takes the same 3-channel input as on colour images) and a 1x1
convolutional head on its feature map predicts, at every map position, a distribution over
the ``Q`` quantised ab colours: the cells of a ``grid``-spaced ab grid that some sRGB colour
reaches (259 for a grid of 10; the paper counts 313, with its own gamut test). Targets are
soft: each pixel's ab (averaged over the map cell) spreads over its 5 nearest cells with a
Gaussian (sigma 5).

Class rebalancing: rare (saturated) colours would otherwise be drowned by the common greyish
ones, so each pixel's loss is weighted by w(q*) for its nearest cell q*, where
w ~ ((1 - lambda) p~ + lambda / Q)^-1 with p~ the training data's ab distribution smoothed
by a Gaussian, normalised so that E_p~[w] = 1 (``rebalancing_weights``; lambda = 0.5).

Metrics (``dense_classification_metrics``): ``pretext_acc`` (top-1 against the nearest cell)
beside ``majority_acc`` (always the batch's commonest cell), ``nll`` beside ``prior_nll`` (the
cross-entropy of predicting the batch's own colour distribution everywhere: a trivial
predictor that even peeks at held-out samples), and the error of the decoded colour
(annealed mean, T = 0.38) in ab units beside ``mean_ab_error`` (predicting the batch's mean ab).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.modalities.color import lab_to_rgb, rgb_to_lab
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput


@functools.lru_cache(maxsize=4)
def ab_gamut(grid: float = 10.0, steps: int = 33) -> torch.Tensor:
    """(Q, 2) centres of the ``grid``-spaced ab cells that some sRGB colour falls in."""
    levels = torch.linspace(0, 1, steps)
    rgb = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(3, -1, 1)  # (3, N, 1)
    ab = rgb_to_lab(rgb)[1:].reshape(2, -1).T                                                  # (N, 2)
    cells = torch.unique(torch.round(ab / grid), dim=0)
    return cells * grid


class SoftQuantiser(nn.Module):
    """Values (B, d, h, w) <-> distributions over fixed bin centres (Q, d).

    ``encode``: each value spread over its ``neighbours`` nearest centres with Gaussian weights
    (``sigma``), as Zhang et al.'s soft encoding; ``nearest``: the index of the nearest centre;
    ``decode``: the annealed mean of a predicted distribution (``temperature`` < 1 sharpens)."""

    def __init__(self, centres: torch.Tensor, neighbours: int = 5, sigma: float = 5.0):
        super().__init__()
        self.register_buffer("centres", centres.float().clone(), persistent=False)   # not the cached gamut
        self.neighbours, self.sigma = min(neighbours, len(centres)), sigma

    @property
    def num_bins(self) -> int:
        return len(self.centres)

    def _flat(self, values: torch.Tensor) -> torch.Tensor:
        return values.movedim(1, -1).reshape(-1, values.shape[1])                      # (P, d)

    def encode(self, values: torch.Tensor) -> torch.Tensor:
        b, _, h, w = values.shape
        dist = torch.cdist(self._flat(values), self.centres)                           # (P, Q)
        near, index = dist.topk(self.neighbours, dim=1, largest=False)
        weights = torch.softmax(-near.pow(2) / (2 * self.sigma ** 2), dim=1)
        soft = torch.zeros_like(dist).scatter_(1, index, weights)
        return soft.reshape(b, h, w, -1).movedim(-1, 1)                                # (B, Q, h, w)

    def nearest(self, values: torch.Tensor) -> torch.Tensor:
        b, _, h, w = values.shape
        return torch.cdist(self._flat(values), self.centres).argmin(dim=1).reshape(b, h, w)

    def decode(self, logits: torch.Tensor, temperature: float = 0.38) -> torch.Tensor:
        probs = torch.softmax(logits / temperature, dim=1)                              # (B, Q, h, w)
        return torch.einsum("bqhw,qd->bdhw", probs, self.centres)


def rebalancing_weights(counts: torch.Tensor, centres: torch.Tensor, sigma: float = 5.0,
                        mix: float = 0.5) -> torch.Tensor:
    """(Q,) class weights from (Q,) bin counts: smooth, mix with uniform, invert, normalise."""
    p = counts.float() / counts.sum().clamp_min(1)
    kernel = torch.exp(-torch.cdist(centres, centres).pow(2) / (2 * sigma ** 2))
    smoothed = kernel @ p
    smoothed = smoothed / smoothed.sum()
    w = 1.0 / ((1 - mix) * smoothed + mix / len(p))
    return w / (smoothed * w).sum()


def lightness_only(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> the same images with their colour removed (Lab a = b = 0), as RGB."""
    lab = rgb_to_lab(rgb)
    return lab_to_rgb(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], dim=1))


def dense_classification_metrics(logits: torch.Tensor, soft: torch.Tensor) -> dict[str, torch.Tensor]:
    """logits and soft targets (B, Q, h, w) -> accuracy and cross-entropy beside trivial ones."""
    logits, soft = logits.detach(), soft.detach()
    hard = soft.argmax(dim=1)
    prior = soft.mean(dim=(0, 2, 3))                                                    # the batch's own classes
    return {"pretext_acc": (logits.argmax(dim=1) == hard).float().mean(),
            "majority_acc": (hard == prior.argmax()).float().mean(),
            "nll": -(soft * F.log_softmax(logits, dim=1)).sum(dim=1).mean(),
            "prior_nll": -(soft * prior.clamp_min(1e-8).log()[None, :, None, None]).sum(dim=1).mean()}


class DenseHead(nn.Sequential):
    """Per-position classifier on a feature map: 1x1 conv, ReLU, 1x1 conv -> (B, Q, h, w)."""

    def __init__(self, d: int, classes: int, hidden: int = 128):
        super().__init__(nn.Conv2d(d, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, classes, 1))


class Colorization(Objective):
    requires = ("map",)

    def __init__(self, encoder: Encoder, ab_counts: torch.Tensor | None = None, grid: float = 10.0,
                 rebalance: float = 0.5, hidden: int = 128):
        """``ab_counts``: (Q,) how often the training data falls in each cell of ``ab_gamut(grid)``
        (``ab_histogram``), for class rebalancing; None or ``rebalance=0`` turns it off."""
        super().__init__()
        self.quantiser = SoftQuantiser(ab_gamut(grid))
        q = self.quantiser.num_bins
        weights = torch.ones(q)
        if ab_counts is not None and rebalance > 0:
            weights = rebalancing_weights(ab_counts, self.quantiser.centres, mix=rebalance)
        self.register_buffer("class_weights", weights)
        self.head = DenseHead(encoder.feature_dim, q, hidden)

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]
        if x.shape[1] != 3:
            raise ValueError(f"colourisation needs RGB images, got {x.shape[1]} channel(s)")
        fmap = encoder(lightness_only(x))                                               # (B, D, h, w)
        logits = self.head(fmap)                                                        # (B, Q, h, w)
        ab = F.adaptive_avg_pool2d(rgb_to_lab(x)[:, 1:], fmap.shape[-2:])              # (B, 2, h, w)
        soft = self.quantiser.encode(ab)
        per_position = -(soft * F.log_softmax(logits, dim=1)).sum(dim=1)               # (B, h, w)
        loss = (per_position * self.class_weights[soft.argmax(dim=1)]).mean()
        metrics = dense_classification_metrics(logits, soft)
        with torch.no_grad():
            error = (self.quantiser.decode(logits) - ab).norm(dim=1).mean()
            mean_error = (ab.mean(dim=(0, 2, 3), keepdim=True) - ab).norm(dim=1).mean()
        metrics.update(ab_error=error, mean_ab_error=mean_error)
        return ObjectiveOutput(loss, metrics)


@torch.no_grad()
def ab_histogram(images: torch.Tensor, grid: float = 10.0) -> torch.Tensor:
    """(Q,) counts of the pixels of RGB ``images`` (N, 3, H, W) in each cell of ``ab_gamut``."""
    quantiser = SoftQuantiser(ab_gamut(grid))
    nearest = torch.cat([quantiser.nearest(rgb_to_lab(part)[:, 1:]).flatten() for part in images.split(64)])
    return torch.bincount(nearest, minlength=quantiser.num_bins)


__all__ = ["Colorization", "SoftQuantiser", "ab_gamut", "ab_histogram", "rebalancing_weights", "lightness_only",
           "dense_classification_metrics", "DenseHead"]
