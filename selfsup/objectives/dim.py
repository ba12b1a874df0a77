"""Deep InfoMax, local-global InfoNCE (Hjelm et al. 2019).

The encoder's feature map gives local features (one per position); its pooled vector,
through a global head, summarises the sample. Each (sample, position) pair is a positive:
the global vector must score its own sample's local feature at that position above every
local feature of every other sample (all positions) in the global batch.

All negatives of a sample are shared by its positions, so they enter InfoNCE through their
log-sum-exp: the cross-entropy over [positive, logsumexp(negatives)] equals the one over the
full candidate list, without a (B HW) x (B HW) logits tensor. ``pretext_acc`` is the
fraction of positives that beat the best negative.

Generic over encoders with a map (B, D, H, W) or sequence (B, T, D) output: positions are
pixels of the map or time steps.
"""

from __future__ import annotations

import torch
from einops import rearrange

from selfsup import distributed
from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.heads import mlp
from selfsup.objectives.losses import info_nce


class DIM(Objective):
    requires = ("map", "sequence")

    def __init__(self, encoder: Encoder, dim: int = 128, hidden: int = 512):
        super().__init__()
        self.global_head = mlp(encoder.embed_dim, hidden, dim, layers=2)
        self.local_head = mlp(encoder.feature_dim, hidden, dim, layers=2)    # per position (a 1x1 conv)

    @staticmethod
    def _positions(features: torch.Tensor, kind: str) -> torch.Tensor:
        """Encoder output -> (B, L, D) local features."""
        return rearrange(features, "b d h w -> b (h w) d") if kind == "map" else features

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        features = encoder(batch["x"])
        g = self.global_head(encoder.pool(features))                                  # (B, E)
        local = self.local_head(self._positions(features, encoder.output_kind))      # (B, L, E)
        b, n_pos = local.shape[:2]
        keys = distributed.gather(rearrange(local, "b l e -> (b l) e"), 0)          # (B W L, E)
        scores = rearrange(g @ keys.t(), "b (n l) -> b n l", l=n_pos)                # (B, B W, L)
        mine = torch.arange(b, device=g.device) + distributed.rank() * b
        own = torch.zeros(b, scores.shape[1], dtype=torch.bool, device=g.device)
        own[torch.arange(b), mine] = True
        positive = scores[torch.arange(b), mine]                                     # (B, L)
        negative = scores.masked_fill(own[:, :, None], float("-inf")).flatten(1)     # (B, (B W) L)
        negative_lse = negative.logsumexp(dim=1, keepdim=True).expand(b, n_pos)
        logits = torch.stack([positive, negative_lse], dim=-1)                       # (B, L, 2)
        loss, _ = info_nce(logits, torch.zeros(b, n_pos, dtype=torch.long, device=g.device))
        beats = (positive.detach() > negative.detach().amax(dim=1, keepdim=True)).float().mean()
        return ObjectiveOutput(loss, {"pretext_acc": beats})
