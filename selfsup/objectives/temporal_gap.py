"""TemporalGap (Tagliasacchi et al. 2019): from two slices of one sequence, predict how far apart
they are, as a fraction of the largest possible distance.

Generic over sequence-like inputs (B, ..., N), slices cut along the last axis. Two slice
starts are drawn uniformly per sample; the head reads the two embeddings side by side and
outputs a logit whose sigmoid is the predicted normalised gap in [0, 1]; the loss is the
binary cross-entropy against the true gap (a soft target), as in the paper.

Metrics: ``mae`` of the predicted gap; ``baseline_mae`` of always predicting the batch's
mean gap; ``pretext_acc``: for pairs of samples with different true gaps, how often the
predicted gaps are in the same order (chance 0.5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError
from selfsup.objectives.audio2vec import check_slice_length, take_slices
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.heads import mlp


class TemporalGap(Objective):
    requires = ("vector", "sequence", "map")

    def __init__(self, encoder: Encoder, slice_length: int, input_length: int, hidden: int = 256):
        super().__init__()
        check_slice_length(encoder, slice_length, "temporal-gap")
        if slice_length >= input_length:
            raise ConfigError(f"objective 'temporal-gap': slices of {slice_length} steps leave no room for a gap "
                              f"in inputs of {input_length}; use shorter slices")
        self.slice_length = slice_length
        self.head = mlp(2 * encoder.embed_dim, hidden, 1)

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]
        b, room = x.shape[0], x.shape[-1] - self.slice_length
        if room <= 0:
            raise ConfigError(f"temporal-gap: inputs of {x.shape[-1]} steps are not longer than the slices "
                              f"({self.slice_length})")
        starts = torch.randint(0, room + 1, (b, 2), device=x.device)                     # (B, 2)
        gap = (starts[:, 0] - starts[:, 1]).abs().float() / room                          # (B,) in [0, 1]
        z = encoder.embed(take_slices(x, starts, self.slice_length).flatten(0, 1))       # (B 2, D)
        logit = self.head(rearrange(z, "(b two) d -> b (two d)", two=2)).squeeze(1)
        loss = F.binary_cross_entropy_with_logits(logit, gap)
        return ObjectiveOutput(loss, gap_metrics(torch.sigmoid(logit.detach()), gap))


def gap_metrics(pred: torch.Tensor, gap: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B,) predicted and true gaps -> mae, baseline_mae, pairwise order accuracy."""
    other = torch.roll(torch.arange(len(gap), device=gap.device), 1)
    true_order, pred_order = torch.sign(gap - gap[other]), torch.sign(pred - pred[other])
    differs = true_order != 0
    agree = (true_order == pred_order)[differs].float()
    return {"mae": (pred - gap).abs().mean(), "baseline_mae": (gap - gap.mean()).abs().mean(),
            "pretext_acc": agree.mean() if differs.any() else torch.tensor(0.5, device=gap.device)}


__all__ = ["TemporalGap", "gap_metrics"]
