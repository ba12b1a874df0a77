"""The objective contract: one interface for every pretext task, whatever the modality.

An objective is an ``nn.Module`` that owns its heads and makes its own pseudo-labels:

    out = objective(batch, encoder)      # batch: the dataset's sample dict, batched
    out.loss                             # scalar tensor to minimise
    out.metrics                          # {"pretext_acc": ..., ...} detached scalars to log

It receives the encoder at construction only to size its heads (it must not keep it as a
submodule) and at every call to run it. Objectives that need work outside the step
(k-means between epochs, a momentum update after each optimiser step) override the hooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from selfsup.encoders.base import Encoder

Batch = dict[str, torch.Tensor]


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor | float] = field(default_factory=dict)


class Objective(nn.Module):
    #: encoder outputs this objective can work with ("embed" works with every encoder)
    requires: ClassVar[tuple[str, ...]] = ("vector", "sequence", "map")

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_train_epoch_start(self, encoder: Encoder, dataloader, epoch: int) -> dict[str, float]:
        """Called before each training epoch with the training loader; may return metrics to log."""
        return {}

    def on_after_optimizer_step(self, encoder: Encoder) -> None:
        """Called after every optimiser step (momentum encoders, queues)."""


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy of (N, K) logits against (N,) targets, detached."""
    return (logits.detach().argmax(dim=-1) == targets).float().mean()
