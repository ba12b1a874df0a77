"""Invariant Information Clustering (Ji et al. 2019).

A head maps each view to a distribution over K clusters; the objective maximises the mutual
information between the cluster assignments of two views of the same sample, estimated from
the joint distribution P (K x K) over the (global) batch. Maximal MI needs confident,
consistent and *balanced* assignments, so clusters cannot collapse.

Two heads share the encoder, as in the paper: the main head with ``num_clusters`` (the
number of classes expected) and an overclustering head with more clusters, which helps the
features; each has ``subheads`` independent copies whose losses are averaged (robustness to
bad initialisations). ``assign`` clusters with the main head's first sub-head; on held-out
(validation) batches with labels, the NMI of those clusters with the classes is logged.

Under DDP the views' cluster probabilities are gathered with gradients, so P is that of the
global batch.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup import distributed
from selfsup.encoders.base import Encoder
from selfsup.evaluation.metrics import nmi
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.contrastive import ViewMaker


def labels_nmi(batch: Batch, clusters: torch.Tensor) -> dict[str, float]:
    """{"nmi_labels": NMI of ``clusters`` with the batch's true classes}, for logging on held-out
    data; empty when fewer than two samples are labelled (never used for training)."""
    known = batch["y"] >= 0
    if int(known.sum()) < 2:
        return {}
    return {"nmi_labels": nmi(batch["y"][known].cpu().numpy(), clusters[known].cpu().numpy())}


def iic_loss(p1: torch.Tensor, p2: torch.Tensor, entropy_weight: float = 1.0, eps: float = 1e-8
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """-I(z1; z2) from cluster probabilities p1, p2 (N, K) of paired views -> (loss, MI).

    ``entropy_weight`` > 1 weights the marginals' entropies more (the paper's lambda), pushing
    harder towards balanced clusters.
    """
    joint = p1.t() @ p2 / len(p1)                               # (K, K)
    joint = ((joint + joint.t()) / 2).clamp_min(eps)            # symmetric: views are exchangeable
    pi, pj = joint.sum(dim=1, keepdim=True), joint.sum(dim=0, keepdim=True)
    mi = (joint * (joint.log() - pi.log() - pj.log())).sum()
    loss = -(joint * (joint.log() - entropy_weight * (pi.log() + pj.log()))).sum()
    return loss, mi.detach()


class IIC(Objective):
    def __init__(self, encoder: Encoder, make_views: ViewMaker, num_clusters: int = 10,
                 overclustering: int | None = None, subheads: int = 5, entropy_weight: float = 1.0):
        super().__init__()
        self.make_views, self.entropy_weight = make_views, entropy_weight
        over = overclustering or 5 * num_clusters
        d = encoder.embed_dim
        self.heads = nn.ModuleDict({
            "main": nn.ModuleList(nn.Linear(d, num_clusters) for _ in range(subheads)),
            "over": nn.ModuleList(nn.Linear(d, over) for _ in range(subheads)),
        })

    @torch.no_grad()
    def assign(self, x: torch.Tensor, encoder: Encoder) -> torch.Tensor:
        """(B,) cluster of each sample by the main head."""
        return self.heads["main"][0](encoder.embed(x)).argmax(dim=1)

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x1, x2 = self.make_views(batch)
        z = encoder.embed(torch.cat([x1, x2]))
        total, metrics = 0.0, {}
        for name, subheads in self.heads.items():
            losses, infos = [], []
            for head in subheads:
                p1, p2 = head(z).softmax(dim=1).chunk(2)
                loss, mi = iic_loss(distributed.gather(p1), distributed.gather(p2), self.entropy_weight)
                losses.append(loss)
                infos.append(mi)
            total = total + torch.stack(losses).mean()
            metrics[f"mi_{name}"] = torch.stack(infos).mean()
        logits = self.heads["main"][0](z.detach())
        c1, c2 = logits.argmax(dim=1).chunk(2)
        metrics["view_agreement"] = (c1 == c2).float().mean()
        metrics["clusters_used"] = torch.tensor(float(len(c1.unique())))
        if not self.training:
            metrics.update(labels_nmi(batch, self.assign(batch["x"], encoder)))
        return ObjectiveOutput(total, metrics)
