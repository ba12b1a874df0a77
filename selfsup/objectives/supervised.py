"""Plain supervised cross-entropy on the labelled samples of a batch (label -1 = unlabelled).

Used as the supervised-from-scratch baseline and as the supervised part of S4L (a MultiTask
of this and a self-supervised objective over one encoder).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput, accuracy


class Supervised(Objective):
    def __init__(self, encoder: Encoder, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(encoder.embed_dim, num_classes))

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        labelled = batch["y"] >= 0
        if not labelled.any():
            zero = sum(p.sum() for p in self.head.parameters()) * 0.0  # keeps DDP's graph complete
            return ObjectiveOutput(zero, {})
        x, y = batch["x"][labelled], batch["y"][labelled]
        logits = self.head(encoder.embed(x))
        return ObjectiveOutput(F.cross_entropy(logits, y), {"train_acc": accuracy(logits, y)})
