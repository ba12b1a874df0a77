"""S4L (Zhai et al. 2019): semi-supervised learning as multi-task learning.

A supervised cross-entropy on the labelled samples plus a self-supervised objective (e.g.
rotation prediction) on every sample, over one encoder: a ``MultiTask`` of ``Supervised``
and the self-supervised part, weighted. Unlabelled samples carry y = -1 and are skipped by
the supervised part. ``label_fraction`` hides the labels of all but a fixed fraction of the
samples (``LabelBudget``), to run S4L on a fully labelled set as the paper's few-label splits.
"""

from __future__ import annotations

import torch

from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.multitask import MultiTask
from selfsup.objectives.supervised import Supervised

_HASH = 0x9E3779B1       # Knuth's multiplicative hash: spreads consecutive indices over [0, 2^32)


def kept_labels(index: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """(B,) bool: whether the sample at each dataset ``index`` keeps its label. Fixed per
    (index, seed), so the same samples stay labelled every epoch; about ``fraction`` do."""
    h = (index.long() * _HASH + seed * 0x85EBCA77) % (1 << 32)
    return h.double() / (1 << 32) < fraction


class LabelBudget(Objective):
    """Shows ``part`` the labels of a fixed ``fraction`` of samples only (the rest as -1)."""

    def __init__(self, part: Objective, fraction: float, seed: int = 0):
        super().__init__()
        if not 0 < fraction <= 1:
            raise ValueError(f"label_fraction must be in (0, 1], got {fraction}")
        self.part, self.fraction, self.seed = part, fraction, seed
        self.requires = part.requires

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        keep = kept_labels(batch["index"], self.fraction, self.seed)
        out = self.part({**batch, "y": torch.where(keep, batch["y"], torch.full_like(batch["y"], -1))}, encoder)
        return ObjectiveOutput(out.loss, dict(out.metrics, labelled=(keep & (batch["y"] >= 0)).float().mean()))


def s4l(encoder: Encoder, self_supervised: Objective, num_classes: int, name: str = "rotation",
        weight: float = 1.0, label_fraction: float | None = None, seed: int = 0) -> MultiTask:
    """supervised (weight 1) + ``weight`` * ``self_supervised`` (logged under ``name``)."""
    if name == "supervised":
        raise ValueError("the self-supervised part cannot be called 'supervised'")
    supervised: Objective = Supervised(encoder, num_classes)
    if label_fraction is not None and label_fraction < 1:
        supervised = LabelBudget(supervised, label_fraction, seed)
    return MultiTask({"supervised": supervised, name: self_supervised}, {"supervised": 1.0, name: weight})


__all__ = ["s4l", "LabelBudget", "kept_labels"]
