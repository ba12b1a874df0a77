"""A learned sparse combination of an encoder's layers per head ("lasso", Doersch & Zisserman 2017).

In multi-task self-supervision each task may want features from a different depth. Wrapped
in ``LayerLasso``, an objective's heads no longer read the encoder's last embedding but

    z = sum_l alpha_l * LN(P_l(LN(f_l)))

where f_l are the encoder's ``layer_features`` (conv1 ... last), LN a layer normalisation
without parameters (so that alpha alone sets each layer's share, P cannot make up for a small
alpha) and P_l a learned linear map to the embedding size. An L1 penalty (``penalty`` *
sum |alpha_l|) pushes each task to use few layers. The alphas start equal (1 / L) and are
logged as ``alpha_<layer>``.

alpha = max(beta, 0) with beta learned: under Adam-like optimisers a plain L1 term only makes
the weights hover around zero, while the clipped form reaches exactly zero: a layer whose use
to the task is worth less than the penalty is dropped (for good: it then gets no gradient).

Only heads that read the embedding (``encoder.embed``) are redirected; objectives that read
the feature map itself (dense heads) still see the last map. The layer sizes depend on the
input size, so the wrapper needs the shape of what the objective embeds (e.g. a tile).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput


@torch.no_grad()
def layer_sizes(encoder: Encoder, input_shape: Sequence[int]) -> dict[str, int]:
    """{layer: feature size} of ``encoder.layer_features`` for inputs of ``input_shape``."""
    was_training = encoder.training
    encoder.eval()                                 # no BatchNorm statistics from the dry run
    try:
        p = next(encoder.parameters(), None)
        x = torch.zeros(2, *input_shape, device=p.device if p is not None else "cpu")
        return {name: int(f.shape[1]) for name, f in encoder.layer_features(x).items()}
    finally:
        encoder.train(was_training)


class LayerCombination(nn.Module):
    """{layer: (B, D_l)} -> (B, out_dim): the alpha-weighted sum of normalised projections."""

    def __init__(self, sizes: dict[str, int], out_dim: int):
        super().__init__()
        self.names = list(sizes)
        self.projections = nn.ModuleList(nn.Linear(d, out_dim) for d in sizes.values())
        self.beta = nn.Parameter(torch.full((len(sizes),), 1.0 / len(sizes)))

    @property
    def alpha(self) -> torch.Tensor:
        return self.beta.clamp_min(0)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for a, name, proj in zip(self.alpha, self.names, self.projections):   # a dropped layer still runs: cheap
            f = features[name]
            z = proj(F.layer_norm(f, f.shape[-1:]))
            total = total + a * F.layer_norm(z, z.shape[-1:])
        return total


class _CombinedView:
    """The encoder as a wrapped objective sees it: ``embed`` is the combination of its layers;
    everything else (forward, pool, sizes ...) is the encoder's own. Made per call, never stored."""

    def __init__(self, encoder: Encoder, combination: LayerCombination):
        self._encoder, self._combination = encoder, combination

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self._combination(self._encoder.layer_features(x))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._encoder(x)

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)


class LayerLasso(Objective):
    """``part`` with its embedding replaced by a sparse learned combination of layers."""

    def __init__(self, part: Objective, encoder: Encoder, input_shape: Sequence[int], penalty: float = 0.01):
        super().__init__()
        if penalty < 0:
            raise ValueError(f"the lasso penalty must be >= 0, got {penalty}")
        self.part, self.penalty = part, penalty
        self.combination = LayerCombination(layer_sizes(encoder, input_shape), encoder.embed_dim)
        self.requires = part.requires

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        out = self.part(batch, _CombinedView(encoder, self.combination))
        alpha = self.combination.alpha
        l1 = alpha.sum()                                                           # alpha >= 0
        metrics = dict(out.metrics, lasso_l1=l1.detach())
        metrics.update({f"alpha_{name}": a.detach() for name, a in zip(self.combination.names, alpha)})
        return ObjectiveOutput(out.loss + self.penalty * l1, metrics)

    def layer_weights(self) -> dict[str, float]:
        return {name: float(a) for name, a in zip(self.combination.names, self.combination.alpha.detach())}

    def on_train_epoch_start(self, encoder, dataloader, epoch):
        return self.part.on_train_epoch_start(encoder, dataloader, epoch)

    def on_after_optimizer_step(self, encoder):
        self.part.on_after_optimizer_step(encoder)


__all__ = ["LayerLasso", "LayerCombination", "layer_sizes"]
