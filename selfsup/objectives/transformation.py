"""Transformation prediction: learn features by recognising which transformation was applied.

Two forms, both generic over modality (the transformations come from the modality):

* ``binary`` -- the Transformation Prediction Network (Saeed et al. 2019): one binary head per
  transformation tells the original sample (0) from its transformed copy (1); the loss is
  the mean of the heads' binary cross-entropies.
* ``multiclass`` -- one head names which of K transformations was applied (RotNet: the
  4 rotations of an image). With ``assignment="all"`` every sample appears under every
  transformation (as RotNet trains); with ``"random"`` each sample gets one at random.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.modalities.base import Transformation
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput, accuracy
from selfsup.objectives.heads import mlp


class TransformationPrediction(Objective):
    def __init__(self, encoder: Encoder, transformations: Sequence[Transformation], form: str = "binary",
                 hidden: int = 256, assignment: str = "all"):
        super().__init__()
        if form not in ("binary", "multiclass"):
            raise ValueError(f"form must be 'binary' or 'multiclass', got {form!r}")
        if assignment not in ("all", "random"):
            raise ValueError(f"assignment must be 'all' or 'random', got {assignment!r}")
        if len(transformations) < (1 if form == "binary" else 2):
            raise ValueError(f"the {form} form needs more transformations, got {len(transformations)}")
        self.form, self.assignment = form, assignment
        self.transformations = nn.ModuleList(transformations)
        self.names = [t.name for t in transformations]
        d = encoder.embed_dim
        if form == "binary":
            self.heads = nn.ModuleList(mlp(d, hidden, 1) for _ in transformations)
        else:
            self.head = mlp(d, hidden, len(transformations))

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]
        if self.form == "binary":
            return self._binary(x, encoder)
        return self._multiclass(x, encoder)

    def _binary(self, x, encoder) -> ObjectiveOutput:
        k, b = len(self.transformations), x.shape[0]
        views = torch.cat([x] + [t(x) for t in self.transformations])       # ((K+1) B, ...)
        z = rearrange(encoder.embed(views), "(v b) d -> v b d", v=k + 1)    # original, then one per transform
        losses, metrics = [], {}
        target = torch.cat([torch.zeros(b), torch.ones(b)]).to(z)
        for i, (head, name) in enumerate(zip(self.heads, self.names)):
            logit = head(torch.cat([z[0], z[i + 1]])).squeeze(1)            # (2B,)
            losses.append(F.binary_cross_entropy_with_logits(logit, target))
            metrics[f"acc_{name}"] = ((logit.detach() > 0).float() == target).float().mean()
        metrics["pretext_acc"] = torch.stack(list(metrics.values())).mean()
        return ObjectiveOutput(torch.stack(losses).mean(), metrics)

    def _multiclass(self, x, encoder) -> ObjectiveOutput:
        k, b = len(self.transformations), x.shape[0]
        if self.assignment == "all":
            views = torch.cat([t(x) for t in self.transformations])         # (K B, ...)
            labels = repeat(torch.arange(k, device=x.device), "k -> (k b)", b=b)
        else:
            labels = torch.randint(0, k, (b,), device=x.device)
            views = x.clone()
            for i, t in enumerate(self.transformations):
                chosen = labels == i
                if chosen.any():
                    views[chosen] = t(x[chosen])
        logits = self.head(encoder.embed(views))
        metrics = {"pretext_acc": accuracy(logits, labels)}
        for i, name in enumerate(self.names):
            mine = labels == i
            metrics[f"acc_{name}"] = (logits.detach()[mine].argmax(-1) == i).float().mean()
        return ObjectiveOutput(F.cross_entropy(logits, labels), metrics)
