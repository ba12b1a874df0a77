"""A weighted sum of objectives over one encoder (multi-task self-supervision, S4L)."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput


class MultiTask(Objective):
    """loss = sum_i weight_i * loss_i; each part's metrics are logged as ``<name>/<metric>``."""

    def __init__(self, parts: Mapping[str, Objective], weights: Mapping[str, float] | None = None):
        super().__init__()
        if not parts:
            raise ValueError("MultiTask needs at least one objective")
        self.parts = nn.ModuleDict(dict(parts))
        self.weights = {name: float((weights or {}).get(name, 1.0)) for name in parts}
        kinds = [set(p.requires) for p in parts.values()]
        self.requires = tuple(sorted(set.intersection(*kinds)))

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        total, metrics = 0.0, {}
        for name, part in self.parts.items():
            out = part(batch, encoder)
            total = total + self.weights[name] * out.loss
            metrics[f"{name}/loss"] = out.loss.detach()
            metrics.update({f"{name}/{k}": v for k, v in out.metrics.items()})
        return ObjectiveOutput(total if isinstance(total, torch.Tensor) else torch.tensor(total), metrics)

    def on_train_epoch_start(self, encoder, dataloader, epoch):
        logged = {}
        for name, part in self.parts.items():
            logged.update({f"{name}/{k}": v for k, v in part.on_train_epoch_start(encoder, dataloader, epoch).items()})
        return logged

    def on_after_optimizer_step(self, encoder):
        for part in self.parts.values():
            part.on_after_optimizer_step(encoder)
