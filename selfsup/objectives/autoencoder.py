"""A plain autoencoder: embed a slice (or the whole input), decode it back into its own target.

The reference row of Audio2Vec's table: the same encoder, decoder head and target as the
Audio2Vec objectives, but with no neighbouring context to infer, so what it learns is
compression rather than prediction. Generic over (B, ..., N) inputs; metrics as in
``audio2vec.reconstruction_metrics``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.objectives.audio2vec import (ReconstructionTarget, check_slice_length, random_offsets,
                                          reconstruction_metrics, take_slices)
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.heads import mlp


class Autoencoder(Objective):
    requires = ("vector", "sequence", "map")

    def __init__(self, encoder: Encoder, slice_length: int, sample_shape: tuple[int, ...],
                 target: nn.Module | None = None, hidden: int = 512):
        """``slice_length``: steps of each reconstructed slice (the input's length for whole inputs)."""
        super().__init__()
        check_slice_length(encoder, slice_length, "autoencoder")
        self.slice_length = slice_length
        self.target = ReconstructionTarget(target, (*sample_shape, slice_length))
        self.decoder = mlp(encoder.embed_dim, hidden, self.target.size)

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]
        starts = random_offsets(x.shape[0], self.slice_length, x.shape[-1], x.device)
        piece = take_slices(x, starts[:, None], self.slice_length)[:, 0]                 # (B, ..., L)
        target = self.target(piece)                                                      # (B, F)
        pred = self.decoder(encoder.embed(piece))
        return ObjectiveOutput(F.mse_loss(pred, target), reconstruction_metrics(pred, target))


__all__ = ["Autoencoder"]
