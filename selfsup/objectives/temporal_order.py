"""Learning from the order of time, for any sequence whose time axis is ``time_dim``.

* ``TemporalOrder`` -- Shuffle and Learn (Misra et al. 2016): from each sequence take five
  elements a < b < c < d < e (frames of a clip, sub-windows of a signal); the tuple (b, c, d)
  is in order, (b, a, d) and (b, e, d) are not. A siamese encoder embeds the three elements
  (shared weights), a head reads the three embeddings side by side and says whether the
  tuple is in order. Besides the three embeddings the head gets their relation
  (z_b - z_m) * (z_d - z_m), per feature: negative where the middle element lies between the
  other two. Shuffle and Learn's head (a layer on the concatenation alone) did not learn on
  small data within CPU budgets (held-out accuracy stayed at chance for hundreds of steps);
  with the relation term it learns in about a hundred. Shuffle and Learn draws its tuples
  from high-motion windows: the video modality's ``motion`` clip sampler gives such clips;
  the elements are drawn within them.
* ``arrow_of_time`` -- forward vs reversed sequence (Wei et al. 2018): transformation
  prediction (binary form) with the single transformation ``TimeReverse``. The encoder must
  see frame order (for video, ``temporal=conv``): a clip embedding that pools frames
  without regard to order cannot tell a clip from its reverse.

Metrics: ``pretext_acc`` (chance 0.5 for both).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError
from selfsup.modalities.base import Transformation
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.heads import mlp
from selfsup.objectives.transformation import TransformationPrediction

TUPLE = 5                    # elements a, b, c, d, e


class TimeReverse(Transformation):
    """Reverse the order along ``dim`` (the time axis of the batch)."""

    name = "time_reverse"

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return x.flip(self.dim)


def arrow_of_time(encoder: Encoder, time_dim: int = -1, hidden: int = 256) -> TransformationPrediction:
    """Forward (0) vs reversed (1) sequences, on TransformationPrediction's binary head."""
    return TransformationPrediction(encoder, [TimeReverse(time_dim)], form="binary", hidden=hidden)


def five_positions(batch: int, length: int, device=None) -> torch.Tensor:
    """(B, 5) sorted distinct positions in [0, length) per sequence, uniformly drawn."""
    if length < TUPLE:
        raise ConfigError(f"temporal order needs at least {TUPLE} elements per sequence, got {length}")
    picks = torch.rand(batch, length, device=device).argsort(dim=1)[:, :TUPLE]
    return picks.sort(dim=1).values


def order_tuples(positions: torch.Tensor, negative_fraction: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 5) positions a..e -> ((B, 3) tuple positions, (B,) labels 1 = in order).

    In order: (b, c, d). Out of order: (b, a, d) or (b, e, d), half each."""
    b = positions.shape[0]
    a, p_b, c, d, e = positions.unbind(dim=1)
    negative = torch.rand(b, device=positions.device) < negative_fraction
    wrong = torch.where(torch.rand(b, device=positions.device) < 0.5, a, e)
    middle = torch.where(negative, wrong, c)
    return torch.stack([p_b, middle, d], dim=1), (~negative).float()


def tuple_features(z: torch.Tensor) -> torch.Tensor:
    """(N, 3, D) embeddings of (first, middle, last) -> (N, 4D): the three, then their relation
    (first - middle) * (last - middle), negative per feature where the middle lies between."""
    first, middle, last = z.unbind(dim=1)
    return torch.cat([first, middle, last, (first - middle) * (last - middle)], dim=1)


class TemporalOrder(Objective):
    """Shuffle and Learn on sequences (B, ..., T, ...): elements of ``element_length`` steps
    along ``time_dim`` (1 for video clips (B, T, C, H, W): elements are single frames).

    Each sequence gives ``tuples`` tuples (each its own five positions and label). When the
    sequence has no more elements than the tuples use, every element is embedded once and
    the tuples share those embeddings: more tuples per step at little cost, which the head's
    three-way comparison needs (it learns slowly from few)."""

    def __init__(self, encoder: Encoder, time_dim: int = 1, element_length: int = 1, hidden: int = 256,
                 negative_fraction: float = 0.5, tuples: int = 4):
        super().__init__()
        if not 0 < negative_fraction < 1:
            raise ConfigError(f"negative_fraction must be in (0, 1), got {negative_fraction}")
        if tuples < 1:
            raise ConfigError(f"tuples must be at least 1, got {tuples}")
        self.time_dim, self.element_length, self.negative_fraction = time_dim, element_length, negative_fraction
        self.tuples = tuples
        self.head = mlp(4 * encoder.embed_dim, hidden, 1)

    def elements(self, x: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """(B, ..., T, ...) and (B, K) start steps -> (B * K, ..., element_length, ...)."""
        xt = x.movedim(self.time_dim, 1)                                         # (B, T, ...)
        steps = starts[..., None] + torch.arange(self.element_length, device=x.device)   # (B, K, L)
        rows = torch.arange(x.shape[0], device=x.device)[:, None, None]
        picked = xt[rows, steps]                                                 # (B, K, L, ...)
        return picked.flatten(0, 1).movedim(1, self.time_dim)

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]
        b, k = x.shape[0], self.tuples
        length = x.shape[self.time_dim] - self.element_length + 1
        positions = five_positions(b * k, length, x.device)
        tuples, in_order = order_tuples(positions, self.negative_fraction)
        tuples = tuples.view(b, k * 3)                                           # element starts per sequence
        if length <= 3 * k:                 # embed every element once, then look the tuples up
            every = torch.arange(length, device=x.device).expand(b, length)
            z = rearrange(encoder.embed(self.elements(x, every)), "(b n) d -> b n d", b=b)
            z = z[torch.arange(b, device=x.device)[:, None], tuples]            # (B, 3K, D)
        else:
            z = rearrange(encoder.embed(self.elements(x, tuples)), "(b n) d -> b n d", b=b)
        logit = self.head(tuple_features(rearrange(z, "b (k e) d -> (b k) e d", e=3))).squeeze(1)
        loss = F.binary_cross_entropy_with_logits(logit, in_order)
        acc = ((logit.detach() > 0).float() == in_order).float().mean()
        return ObjectiveOutput(loss, {"pretext_acc": acc})


__all__ = ["TemporalOrder", "TimeReverse", "arrow_of_time", "five_positions", "order_tuples", "tuple_features"]
