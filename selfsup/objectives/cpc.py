"""Contrastive Predictive Coding for any sequence encoder (Oord et al. 2018).

The encoder gives latents z (B, T, D); an autoregressive context network summarises z_<=t
into c_t; a linear map per step k predicts z_{t+k} from c_t, scored by InfoNCE against
negatives drawn from other times and other sequences of the batch.

Negatives are drawn from the targets of every process (gathered with gradients), so a
distributed run solves the same problem as one process over the global batch;
``num_negatives=None`` uses all of them.

An encoder that carries its own ``context_network`` (CPC's waveform encoder) is trained with
it, so that the context it later embeds with is the one CPC learned; otherwise the objective
owns a GRU.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup import distributed
from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.losses import sampled_info_nce


class CPC(Objective):
    requires = ("sequence",)

    def __init__(self, encoder: Encoder, steps: int = 4, context_dim: int = 128, num_negatives: int | None = 64,
                 temperature: float = 1.0):
        super().__init__()
        d = encoder.feature_dim
        self.steps, self.num_negatives, self.temperature = steps, num_negatives, temperature
        self.uses_encoder_context = getattr(encoder, "context_network", None) is not None
        if self.uses_encoder_context:
            context_dim = encoder.embed_dim
        else:
            self.context = nn.GRU(d, context_dim, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(context_dim, d) for _ in range(steps))

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        z = encoder(batch["x"])                                   # (B, T, D)
        t = z.shape[1]
        if t <= self.steps:
            raise ValueError(f"CPC with {self.steps} prediction steps needs more than {self.steps} latent steps, "
                             f"the encoder gave {t}; use longer inputs or fewer steps")
        c = encoder.context_network(z) if self.uses_encoder_context else self.context(z)[0]  # (B, T, H)
        losses, accs, metrics = [], [], {}
        for k, predictor in enumerate(self.predictors, start=1):
            pred = predictor(c[:, :-k]).reshape(-1, z.shape[-1])  # (B (T-k), D): prediction of z_{t+k}
            target = z[:, k:].reshape(-1, z.shape[-1])
            pool = distributed.gather(target, 0)                  # (W B (T-k), D): negatives of all processes
            loss, acc = sampled_info_nce(pred, target, self.num_negatives, self.temperature, pool,
                                         offset=distributed.rank() * len(target))
            losses.append(loss)
            accs.append(acc)
            metrics[f"acc_step{k}"] = acc
        metrics["pretext_acc"] = torch.stack(accs).mean()
        return ObjectiveOutput(torch.stack(losses).mean(), metrics)
