"""SimCLR-style contrastive learning between two views of each sample (Chen et al. 2020).

Generic: the modality supplies ``make_views(batch) -> (x1, x2)`` (two augmentations of an
image, two segments of a clip, two crops of a sensor window, two frames of a video). The
loss is NT-Xent over the global batch (gathered across processes with gradients).

``views_in_one_pass`` (default, as in the SimCLR paper's code) embeds both views as one batch
of 2N, so BatchNorm normalises them with shared statistics. False embeds each view as its own
batch of N, as lightly's examples do: on the 2-core CPU here two passes over N were faster
than one over 2N (BENCHMARKS.md, "Speed of one training step"), and each view's BatchNorm
statistics are then its own.
"""

from __future__ import annotations

from typing import Callable

import torch

from selfsup import distributed
from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.heads import mlp
from selfsup.objectives.losses import nt_xent

ViewMaker = Callable[[Batch], tuple[torch.Tensor, torch.Tensor]]


class SimCLR(Objective):
    def __init__(self, encoder: Encoder, make_views: ViewMaker, projection_dim: int = 128,
                 hidden: int = 512, temperature: float = 0.1, views_in_one_pass: bool = True):
        super().__init__()
        self.make_views = make_views
        self.temperature = temperature
        self.views_in_one_pass = views_in_one_pass
        self.projector = mlp(encoder.embed_dim, hidden, projection_dim, layers=2, batch_norm=True)

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x1, x2 = self.make_views(batch)                           # (N, ...) each
        if self.views_in_one_pass:
            n = x1.shape[0]
            z = self.projector(encoder.embed(torch.cat([x1, x2])))   # (2N, P)
            z1, z2 = z[:n], z[n:]
        else:
            z1, z2 = self.projector(encoder.embed(x1)), self.projector(encoder.embed(x2))   # (N, P) each
        loss, acc = nt_xent(z1, z2, self.temperature, gather=distributed.gather, rank=distributed.rank())
        return ObjectiveOutput(loss, {"pos_acc": acc})
