"""Relative position of two patches (Doersch et al. 2015): where does the second patch sit
around the first?

The modality cuts each sample into N tiles (for images: a 3x3 grid of patches separated by
gaps and jittered, colours projected or dropped against chromatic aberration), ``make_tiles
(batch) -> (B, N, ...)``. Tile ``anchor`` (the centre of a 3x3 grid) is paired with each of
the other N - 1 tiles; a siamese encoder (the one encoder, all tiles folded into the batch)
embeds both, and a pair classifier on the two embeddings names the second tile's position
(chance 1 / (N - 1)). With ``pairs="all"`` every neighbour of every sample is a training pair
(N - 1 labels from N embeddings); ``"one"`` draws one neighbour per sample, as the paper did.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput, accuracy
from selfsup.objectives.heads import mlp


class RelativePosition(Objective):
    def __init__(self, encoder: Encoder, make_tiles: Callable[[Batch], torch.Tensor], num_tiles: int = 9,
                 anchor: int | None = None, pairs: str = "all", hidden: int = 256):
        super().__init__()
        if pairs not in ("all", "one"):
            raise ValueError(f"pairs must be 'all' or 'one', got {pairs!r}")
        if num_tiles < 3:
            raise ValueError(f"relative position needs at least 3 tiles, got {num_tiles}")
        self.make_tiles, self.num_tiles, self.pairs = make_tiles, num_tiles, pairs
        self.anchor = num_tiles // 2 if anchor is None else anchor
        others = [i for i in range(num_tiles) if i != self.anchor]
        self.register_buffer("neighbours", torch.tensor(others), persistent=False)
        # Late fusion, as in the paper: each tile embedded alone, then the pair classified.
        self.classifier = mlp(2 * encoder.embed_dim, hidden, len(others))

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        tiles = self.make_tiles(batch)                                               # (B, N, ...)
        b, n = tiles.shape[:2]
        if n != self.num_tiles:
            raise ValueError(f"expected {self.num_tiles} tiles per sample, got {n}")
        k = len(self.neighbours)
        if self.pairs == "all":
            z = rearrange(encoder.embed(tiles.flatten(0, 1)), "(b n) d -> b n d", b=b)  # (B, N, D)
            anchor = repeat(z[:, self.anchor], "b d -> b k d", k=k)
            pair = torch.cat([anchor, z[:, self.neighbours]], dim=-1).flatten(0, 1)     # (B K, 2D)
            labels = repeat(torch.arange(k, device=z.device), "k -> (b k)", b=b)
        else:
            labels = torch.randint(0, k, (b,), device=tiles.device)
            rows = torch.arange(b, device=tiles.device)
            chosen = torch.stack([tiles[:, self.anchor], tiles[rows, self.neighbours[labels]]], dim=1)
            z = rearrange(encoder.embed(chosen.flatten(0, 1)), "(b two) d -> b (two d)", two=2)
            pair = z
        logits = self.classifier(pair)
        return ObjectiveOutput(F.cross_entropy(logits, labels), {"pretext_acc": accuracy(logits, labels)})


__all__ = ["RelativePosition"]
