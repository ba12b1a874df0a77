"""Exemplar-CNN (Dosovitskiy et al. 2014): every training sample is a surrogate class of its
own, made of heavily augmented copies of it; a classifier over the surrogate classes trains
the encoder to be invariant to the augmentations yet tell samples apart.

Generic: the modality supplies ``augment(x) -> x'`` (for images: crops, rotation, scaling,
colour and contrast changes). A sample's class is its ``index`` in the training set, so the
head has ``num_exemplars`` outputs (the training set's size). Each batch holds ``copies``
independent augmentations of every sample, so a class is seen several ways per step.

Held-out samples belong to no surrogate class. In eval mode the objective therefore
measures what generalises to them: whether two augmentations of one held-out sample are
assigned the same surrogate class (``view_agreement``; chance is about 1 / num_exemplars),
with the cross-entropy of one view against the other's predicted class as the loss.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput, accuracy


class Exemplar(Objective):
    def __init__(self, encoder: Encoder, augment: Callable[[torch.Tensor], torch.Tensor], num_exemplars: int,
                 copies: int = 2, dropout: float = 0.0):
        super().__init__()
        if copies < 1:
            raise ValueError(f"copies must be at least 1, got {copies}")
        self.copies = copies
        if num_exemplars < 2:
            raise ValueError(f"Exemplar needs at least 2 samples (surrogate classes), got {num_exemplars}")
        self.augment = augment
        self.num_exemplars = num_exemplars
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(encoder.embed_dim, num_exemplars))

    def logits(self, x: torch.Tensor, encoder: Encoder) -> torch.Tensor:
        return self.classifier(encoder.embed(x))

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]
        if not self.training:
            return self._agreement(x, encoder)
        target = batch["index"]
        if int(target.max()) >= self.num_exemplars:
            raise ValueError(f"sample index {int(target.max())} has no surrogate class: the objective was built for "
                             f"{self.num_exemplars} exemplars (build it with the training set)")
        x, target = x.repeat(self.copies, *([1] * (x.dim() - 1))), target.repeat(self.copies)
        logits = self.logits(self.augment(x), encoder)
        return ObjectiveOutput(F.cross_entropy(logits, target), {"pretext_acc": accuracy(logits, target)})

    def _agreement(self, x, encoder) -> ObjectiveOutput:
        logits = self.logits(torch.cat([self.augment(x), self.augment(x)]), encoder)
        first, second = logits.chunk(2)
        guess = second.detach().argmax(dim=1)
        return ObjectiveOutput(F.cross_entropy(first, guess), {"view_agreement": accuracy(first, guess)})
