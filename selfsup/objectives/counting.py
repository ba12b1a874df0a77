"""Counting visual primitives (Noroozi, Pirsiavash & Favaro 2017).

A counting head phi (ReLU outputs, so counts are non-negative) on the encoder's embedding
must be additive over parts: the counts of the four tiles of a sample sum to the counts of
the whole sample, downsampled to a tile's size. Alone that is solved by phi = 0, so a
contrastive term asks the tiles' sum to differ by at least ``margin`` (squared distance)
from the counts of another sample's downsampled version:

    loss = |phi(D x) - sum_j phi(T_j x)|^2 + max(0, margin - |phi(D y) - sum_j phi(T_j x)|^2)

The modality supplies ``make_parts(batch) -> (whole (B, ...), tiles (B, N, ...))``, every
part of one shape (for images: the 2x2 tiles and the image downsampled to a tile's size);
the other sample y is the next one in the batch. Metrics: ``pretext_acc``, how often the
tiles' sum is nearer its own whole than the other sample's (chance 0.5), and ``match_acc``,
how often the nearest whole in the batch is its own (chance 1 / B).
"""

from __future__ import annotations

from typing import Callable

import torch
from einops import rearrange
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput


def counting_loss(whole: torch.Tensor, tiles_sum: torch.Tensor, other: torch.Tensor,
                  margin: float) -> torch.Tensor:
    """Noroozi et al.'s loss on counts: whole, tiles_sum, other (B, K) -> scalar."""
    own = (whole - tiles_sum).pow(2).sum(-1)
    contrast = (other - tiles_sum).pow(2).sum(-1)
    return (own + (margin - contrast).clamp_min(0)).mean()


class Counting(Objective):
    def __init__(self, encoder: Encoder, make_parts: Callable[[Batch], tuple[torch.Tensor, torch.Tensor]],
                 count_dim: int = 256, margin: float = 10.0):
        super().__init__()
        self.make_parts, self.margin = make_parts, margin
        self.counter = nn.Sequential(nn.Linear(encoder.embed_dim, count_dim), nn.ReLU())

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        whole, tiles = self.make_parts(batch)                                        # (B, ...), (B, N, ...)
        b, n = tiles.shape[:2]
        if b < 2:
            raise ValueError("counting contrasts each sample with another: batches need at least 2 samples")
        counts = self.counter(encoder.embed(torch.cat([whole, tiles.flatten(0, 1)])))  # (B + B N, K)
        whole_counts = counts[:b]
        tiles_sum = rearrange(counts[b:], "(b n) k -> b n k", b=b).sum(1)
        other = whole_counts.roll(1, dims=0)                                         # another sample's counts
        loss = counting_loss(whole_counts, tiles_sum, other, self.margin)
        with torch.no_grad():
            dist = torch.cdist(tiles_sum, whole_counts)                               # (B, B)
            own = dist.diagonal()
            metrics = {"pretext_acc": (own < (tiles_sum - other).norm(dim=-1)).float().mean(),
                       "match_acc": (dist.argmin(dim=1) == torch.arange(b, device=dist.device)).float().mean(),
                       "mean_count": whole_counts.sum(-1).mean()}
        return ObjectiveOutput(loss, metrics)


__all__ = ["Counting", "counting_loss"]
