"""Audio2Vec (Tagliasacchi et al. 2019): reconstruct slices of a sequence from neighbouring slices.

* CBoW: the encoder embeds the ``context`` slices on each side of a missing middle slice;
  their embeddings, concatenated in order, are decoded into the middle slice's target.
* skip-gram: the encoder embeds the middle slice; it is decoded into the targets of the
  ``context`` slices on each side.

Generic over sequence-like inputs (B, ..., N): slices are cut along the last axis, and
``target`` (a module, e.g. the audio modality's log-mel front end; default: the raw slice)
turns a batch of slices (B', ..., L) into what is reconstructed, standardised per feature.
Loss: mean squared error.
Metrics on each batch: ``mse``; ``baseline_mse`` of the trivial predictor that outputs the
batch's mean target for each output position (it even peeks at the held-out targets);
``relative_mse`` = mse / baseline_mse (below 1 beats it); and
``pretext_acc``, how often a prediction is closer to its own target than to any other
target of the batch (chance 1 / B).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError
from selfsup.modalities.sequence_transforms import gather_time
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.heads import mlp


def take_slices(x: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """x (B, ..., N), starts (B, S) -> (B, S, ..., length): S slices of each sequence."""
    index = starts[:, :, None] + torch.arange(length, device=x.device)             # (B, S, L)
    picked = gather_time(x, rearrange(index, "b s l -> b (s l)"))                    # (B, ..., S L)
    return rearrange(picked, "b ... (s l) -> b s ... l", s=starts.shape[1])


def random_offsets(batch: int, span: int, total: int, device=None) -> torch.Tensor:
    """(B,) start positions of a span of ``span`` steps inside sequences of ``total`` steps."""
    if span > total:
        raise ConfigError(f"the slices span {span} steps but the inputs have only {total}; use shorter slices "
                          f"or longer inputs")
    return torch.randint(0, total - span + 1, (batch,), device=device)


def check_slice_length(encoder: Encoder, length: int, objective: str) -> None:
    if length < encoder.min_input_length:
        raise ConfigError(f"objective '{objective}': slices of {length} steps are shorter than the encoder's "
                          f"smallest input ({encoder.min_input_length}); use longer slices")


def target_size(target: nn.Module, sample_shape: tuple[int, ...]) -> int:
    """Number of values ``target`` makes from one slice of shape ``sample_shape`` (..., L)."""
    with torch.no_grad():
        return int(target(torch.zeros(1, *sample_shape)).numel())


class ReconstructionTarget(nn.Module):
    """``target`` (a module on slices (B', ..., L)), flattened to (B', F) and standardised per
    feature with running statistics, so that the decoder starts on a unit scale whatever
    the raw target's offset (a log-mel sits around -10)."""

    def __init__(self, target: nn.Module | None, sample_shape: tuple[int, ...]):
        super().__init__()
        self.target = target if target is not None else nn.Identity()
        self.size = target_size(self.target, sample_shape)
        self.norm = nn.BatchNorm1d(self.size, affine=False, momentum=None)  # running stats: a plain average

    @torch.no_grad()
    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        return self.norm(self.target(slices).flatten(1))


def reconstruction_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """pred, target (..., N, F): N predictions per problem (e.g. per slice position). Detached."""
    pred, target = pred.detach(), target.detach()
    mse = F.mse_loss(pred, target)
    baseline = (target - target.mean(dim=-2, keepdim=True)).pow(2).mean()
    closest = torch.cdist(pred, target).argmin(dim=-1)                              # (..., N)
    own = torch.arange(pred.shape[-2], device=pred.device)
    return {"mse": mse, "baseline_mse": baseline, "relative_mse": mse / baseline.clamp_min(1e-12),
            "pretext_acc": (closest == own).float().mean()}


class Audio2Vec(Objective):
    requires = ("vector", "sequence", "map")

    def __init__(self, encoder: Encoder, slice_length: int, sample_shape: tuple[int, ...], mode: str = "cbow",
                 context: int = 2, target: nn.Module | None = None, hidden: int = 512):
        """``sample_shape``: one input's shape without the time axis, e.g. (channels,)."""
        super().__init__()
        if mode not in ("cbow", "skipgram"):
            raise ValueError(f"mode must be 'cbow' or 'skipgram', got {mode!r}")
        if context < 1:
            raise ValueError("context must be at least 1 slice on each side")
        check_slice_length(encoder, slice_length, f"audio2vec-{mode}")
        self.mode, self.context, self.slice_length = mode, context, slice_length
        self.target = ReconstructionTarget(target, (*sample_shape, slice_length))
        self.target_dim = self.target.size
        d, k = encoder.embed_dim, 2 * context
        if mode == "cbow":
            self.decoder = mlp(k * d, hidden, self.target_dim)
        else:
            self.decoder = mlp(d, hidden, k * self.target_dim)

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]
        b, n_slices, length = x.shape[0], 2 * self.context + 1, self.slice_length
        first = random_offsets(b, n_slices * length, x.shape[-1], x.device)
        starts = first[:, None] + length * torch.arange(n_slices, device=x.device)       # (B, 2k+1)
        slices = take_slices(x, starts, length)                                          # (B, 2k+1, ..., L)
        targets = self.target(slices.flatten(0, 1)).reshape(b, n_slices, -1)           # (B, 2k+1, F)
        middle = self.context
        around = [i for i in range(n_slices) if i != middle]
        if self.mode == "cbow":
            z = encoder.embed(slices[:, around].flatten(0, 1))                          # (B 2k, D)
            pred = self.decoder(rearrange(z, "(b k) d -> b (k d)", b=b))[None]          # (1, B, F)
            target = targets[:, middle][None]
        else:
            z = encoder.embed(slices[:, middle])                                        # (B, D)
            pred = rearrange(self.decoder(z), "b (k f) -> k b f", k=len(around))        # (2k, B, F)
            target = rearrange(targets[:, around], "b k f -> k b f")
        return ObjectiveOutput(F.mse_loss(pred, target), reconstruction_metrics(pred, target))


__all__ = ["Audio2Vec", "ReconstructionTarget", "take_slices", "random_offsets", "reconstruction_metrics", "check_slice_length",
           "target_size"]
