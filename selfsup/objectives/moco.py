"""MoCo v2 (He et al. 2020; Chen et al. 2020): a query encoder against a momentum key encoder
and a queue of negatives from earlier batches.

Generic: the modality supplies ``make_views(batch) -> (x_query, x_key)``. The key encoder is
a copy of the encoder (and of the projection head) that follows it by an exponential moving
average after every optimiser step (``on_after_optimizer_step``); it gets no gradients.

BatchNorm would let the query and its key recognise each other through shared batch
statistics, so keys are computed on a shuffled batch cut into ``bn_splits`` parts (one
process), or with MoCo's shuffle across processes under DDP.

The queue starts empty and only its filled part serves as negatives (the first step uses
the batch's other keys): random starting keys are easy negatives that reward mapping every
sample to one point, and a network that starts there (ReLU features are far from isotropic)
may not leave it. Under DDP every process enqueues the keys of the global batch, so the
queue is the same on all of them and the loss equals that of one process over the global
batch.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F

from selfsup import distributed
from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.contrastive import ViewMaker
from selfsup.objectives.heads import mlp
from selfsup.objectives.losses import info_nce


class MoCo(Objective):
    def __init__(self, encoder: Encoder, make_views: ViewMaker, projection_dim: int = 128, hidden: int = 512,
                 temperature: float = 0.1, momentum: float = 0.99, queue_size: int = 4096, bn_splits: int = 2,
                 batch_norm: bool = False):
        super().__init__()
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.make_views = make_views
        self.temperature, self.momentum, self.bn_splits = temperature, momentum, max(1, bn_splits)
        self.projector = mlp(encoder.embed_dim, hidden, projection_dim, layers=2, batch_norm=batch_norm)
        self.key_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.key_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.register_buffer("queue", torch.zeros(queue_size, projection_dim))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))

    # -- keys -------------------------------------------------------------------------------
    @torch.no_grad()
    def _encode_keys(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.key_projector(self.key_encoder.embed(x)), dim=1)

    @torch.no_grad()
    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ...) key views -> (B, projection_dim) normalised keys, BatchNorm-shuffled."""
        if distributed.is_distributed():
            return self._keys_shuffled_across_processes(x)
        perm = torch.randperm(len(x), device=x.device)
        parts = [self._encode_keys(x[idx]) for idx in perm.chunk(min(self.bn_splits, len(x)))]
        keys = torch.empty(len(x), self.queue.shape[1], device=x.device, dtype=parts[0].dtype)
        keys[perm] = torch.cat(parts)
        return keys

    def _keys_shuffled_across_processes(self, x):
        """Each process encodes a random share of the global batch, then keys go back home."""
        world, rank, n = distributed.world_size(), distributed.rank(), len(x)
        everything = distributed.gather_no_grad(x)                             # (W B, ...)
        perm = torch.randperm(len(everything), device=x.device)
        dist.broadcast(perm, src=0)                                            # one shuffle for all processes
        mine = perm.view(world, n)[rank]
        shuffled = distributed.gather_no_grad(self._encode_keys(everything[mine]))   # keys in perm order
        keys = torch.empty_like(shuffled)
        keys[perm] = shuffled
        return keys[rank * n:(rank + 1) * n]

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        size = len(self.queue)
        keys = keys[-size:]
        idx = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % size
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % size)
        self.queue_filled.clamp_(max=size - len(keys)).add_(len(keys))

    # -- step -------------------------------------------------------------------------------
    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x_q, x_k = self.make_views(batch)
        q = F.normalize(self.projector(encoder.embed(x_q)), dim=1)               # (B, P)
        k = self.keys(x_k)                                                     # (B, P), no gradient
        positive = (q * k).sum(1, keepdim=True)
        if self.queue_filled > 0:
            negative = q @ self.queue[: int(self.queue_filled)].clone().t()   # a copy: enqueue below is in place
        else:   # the very first step: the (global) batch's other keys (random ones would invite collapse)
            everyone = distributed.gather_no_grad(k)
            own = F.one_hot(torch.arange(len(q), device=q.device) + distributed.rank() * len(q), len(everyone))
            negative = (q @ everyone.t()).masked_fill(own.bool(), float("-inf"))
        logits = torch.cat([positive, negative], dim=1) / self.temperature
        loss, acc = info_nce(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))
        if self.training:
            self._enqueue(distributed.gather_no_grad(k))
        return ObjectiveOutput(loss, {"pos_acc": acc})

    @torch.no_grad()
    def on_after_optimizer_step(self, encoder: Encoder) -> None:
        m = self.momentum
        for online, key in ((encoder, self.key_encoder), (self.projector, self.key_projector)):
            for p_online, p_key in zip(online.parameters(), key.parameters()):
                p_key.mul_(m).add_(p_online.detach(), alpha=1 - m)
