"""Supervised contrastive learning (Khosla et al. 2020), "SupCon L_out".

Two views of every sample; each view is an anchor whose positives are all other views of
the same class in the (global) batch. Per anchor the loss averages, over its positives,
the InfoNCE cross-entropy of picking that positive among all other views; the loss is the
mean over anchors. Unlabelled samples (y = -1) have only their own other view as positive,
so on unlabelled data this is SimCLR.

The exact per-anchor average goes through the shared ``info_nce``: anchors with the same
number of positives are one group, and a group's loss is ``info_nce`` over its (anchor,
positive) pairs, weighted by the group's share of anchors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup import distributed
from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, ObjectiveOutput
from selfsup.objectives.contrastive import SimCLR
from selfsup.objectives.losses import info_nce


def supcon_loss(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """logits (N, K) with the anchor itself at -inf; positives (N, K) bool, at least one per row."""
    counts = positives.sum(dim=1)
    loss = logits.new_zeros(())
    for count in counts.unique():
        rows = (counts == count).nonzero().squeeze(1)
        anchor, target = positives[rows].nonzero(as_tuple=True)               # one entry per (anchor, positive)
        group_loss, _ = info_nce(logits[rows][anchor], target)
        loss = loss + group_loss * (len(rows) / len(logits))
    return loss


class SupCon(SimCLR):
    """SimCLR's views, projector and temperature; positives by class (see the module)."""

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x1, x2 = self.make_views(batch)
        n, rank = len(x1), distributed.rank()
        z = F.normalize(self.projector(encoder.embed(torch.cat([x1, x2]))), dim=1)   # (2n, P): view 1, view 2
        # Identity of each view: its class, or (unlabelled) a negative id unique to its sample.
        y = batch["y"]
        own = -(rank * n + torch.arange(n, device=y.device)) - 1
        ident = torch.where(y >= 0, y, own).repeat(2)                                # (2n,)
        keys = distributed.gather(z, 0)                                              # (2nW, P), with gradients
        key_ident = distributed.gather_no_grad(ident, 0)
        logits = z @ keys.t() / self.temperature                                     # (2n, 2nW)
        self_mask = F.one_hot(rank * 2 * n + torch.arange(2 * n, device=z.device), len(keys)).bool()
        logits = logits.masked_fill(self_mask, float("-inf"))
        positives = (ident[:, None] == key_ident[None, :]) & ~self_mask
        loss = supcon_loss(logits, positives)
        nearest_is_positive = positives.gather(1, logits.detach().argmax(dim=1, keepdim=True)).float().mean()
        return ObjectiveOutput(loss, {"pos_acc": nearest_is_positive})
