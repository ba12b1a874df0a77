"""Tracking emerges by colourising videos (Vondrick et al. 2018).

From a clip take ``num_refs`` reference frames and the frame after them as the target. Every
frame goes to the encoder in grey; the colours of the reference frames are known, the
target's must be found. The encoder's dense maps (``frame_maps``: (N, D, h, w)) give an
embedding per position; each target position points at every reference position with a
softmax over their similarities (the pointer), and copies their colours:

    A[j, i]  = softmax_i( <f_j, f_i> / temperature )          j: target, i: references
    p[j]     = sum_i A[j, i] * onehot(colour class of reference position i)
    loss     = cross-entropy(p[j], colour class of target position j)

Colours are the (a, b) channels of CIE Lab at the maps' resolution, quantised into
``num_colours`` classes (16 in the paper) by k-means on frames of the training data
(``fit_colours``; without it, on the first batch). Embeddings are L2-normalised and divided
by ``temperature`` (the paper uses raw dot products; normalised ones train more steadily).

Metrics: ``pretext_acc`` (the copied colour class is right) beside ``copy_acc``, the trivial
tracker that copies the colour at the same position of the last reference frame (no motion),
and ``majority_acc`` (always the most frequent class of the batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError
from selfsup.modalities.color import rgb_to_lab
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.deepcluster import kmeans

LUMA = (0.299, 0.587, 0.114)


def grey_frames(frames: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB -> the same shape in grey (luma repeated), so a colour encoder sees no colour."""
    if frames.shape[-3] != 3:
        return frames
    w = torch.tensor(LUMA, device=frames.device, dtype=frames.dtype).view(3, 1, 1)
    return (frames * w).sum(dim=-3, keepdim=True).expand_as(frames)


def ab_at(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, h, w, 2) Lab (a, b) of the area-averaged colour of each map cell."""
    small = F.adaptive_avg_pool2d(frames, size)
    return rearrange(rgb_to_lab(small)[:, 1:], "n c h w -> n h w c")


class ColorizationTracking(Objective):
    requires = ("map", "sequence")

    def __init__(self, encoder: Encoder, num_refs: int = 3, num_colours: int = 16, temperature: float = 0.05,
                 colour_samples: int = 20000):
        super().__init__()
        if not hasattr(encoder, "frame_maps"):
            raise ConfigError(f"colorization-tracking needs an encoder with dense frame maps (frame_maps); "
                              f"{type(encoder).__name__} has none")
        if num_refs < 1:
            raise ConfigError(f"num_refs must be at least 1, got {num_refs}")
        self.num_refs, self.num_colours, self.temperature = num_refs, num_colours, temperature
        self.colour_samples = colour_samples
        self.register_buffer("centroids", torch.zeros(num_colours, 2))
        self.register_buffer("fitted", torch.tensor(False))

    # -- colour classes ------------------------------------------------------------------------
    @torch.no_grad()
    def fit_colours(self, frames: torch.Tensor, map_size: tuple[int, int], seed: int = 0) -> "ColorizationTracking":
        """k-means of the (a, b) colours of ``frames`` (N, 3, H, W) at the maps' resolution."""
        ab = ab_at(frames.float(), map_size).reshape(-1, 2)
        g = torch.Generator().manual_seed(seed)
        if len(ab) > self.colour_samples:
            ab = ab[torch.randperm(len(ab), generator=g)[: self.colour_samples]]
        if len(ab) < self.num_colours:
            raise ConfigError(f"too few pixels ({len(ab)}) to find {self.num_colours} colour classes")
        centroids, _, _ = kmeans(ab.cpu(), self.num_colours, generator=g)
        self.centroids.copy_(centroids.to(self.centroids))
        self.fitted.fill_(True)
        return self

    def colour_classes(self, frames: torch.Tensor, map_size: tuple[int, int]) -> torch.Tensor:
        """(N, 3, H, W) -> (N, h, w) index of the nearest colour centroid."""
        ab = ab_at(frames, map_size)
        return torch.cdist(ab.reshape(-1, 2), self.centroids).argmin(dim=1).reshape(ab.shape[:-1])

    # -- the pointer ---------------------------------------------------------------------------
    def copy_colours(self, target: torch.Tensor, refs: torch.Tensor, ref_classes: torch.Tensor) -> torch.Tensor:
        """target (B, P, D), refs (B, Q, D) embeddings, ref_classes (B, Q) -> (B, P, K) colour
        probabilities copied through the pointer."""
        logits = F.normalize(target, dim=-1) @ F.normalize(refs, dim=-1).transpose(1, 2) / self.temperature
        pointer = logits.softmax(dim=-1)                                        # (B, P, Q)
        return pointer @ F.one_hot(ref_classes, self.num_colours).to(pointer)

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]                                                          # (B, T, 3, H, W)
        b, t = x.shape[:2]
        if t < self.num_refs + 1:
            raise ConfigError(f"colorization-tracking with {self.num_refs} reference frames needs clips of at least "
                              f"{self.num_refs + 1} frames, got {t}")
        start = int(torch.randint(0, t - self.num_refs, ()))
        frames = rearrange(x[:, start: start + self.num_refs + 1], "b t c h w -> (b t) c h w")
        maps = encoder.frame_maps(grey_frames(frames))                           # (B (R+1), D, h, w)
        size = tuple(maps.shape[-2:])
        if not bool(self.fitted):
            self.fit_colours(frames.detach(), size)
        with torch.no_grad():
            classes = rearrange(self.colour_classes(frames, size), "(b t) h w -> b t (h w)", b=b)
        emb = rearrange(maps, "(b t) d h w -> b t (h w) d", b=b)
        refs = rearrange(emb[:, : self.num_refs], "b t p d -> b (t p) d")
        probs = self.copy_colours(emb[:, -1], refs, rearrange(classes[:, : self.num_refs], "b t p -> b (t p)"))
        target = classes[:, -1]                                                   # (B, P)
        loss = F.nll_loss(rearrange(probs.clamp_min(1e-8).log(), "b p k -> (b p) k"), target.reshape(-1))
        counts = torch.bincount(target.reshape(-1), minlength=self.num_colours)
        metrics = {"pretext_acc": (probs.detach().argmax(-1) == target).float().mean(),
                   "copy_acc": (classes[:, -2] == target).float().mean(),
                   "majority_acc": counts.max().float() / target.numel()}
        return ObjectiveOutput(loss, metrics)


__all__ = ["ColorizationTracking", "grey_frames", "ab_at"]
