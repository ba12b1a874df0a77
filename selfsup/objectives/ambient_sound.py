"""Ambient sound as supervision (Owens et al. 2016): a frame predicts what its video sounds like.

Each sample carries ``batch["sound"]``: texture statistics of the audio around its clip (the
video modality attaches them, see ``selfsup.modalities.sound_texture``). The labels are made
here from the whole training set's statistics, once, in one of two forms:

* ``target="clusters"``: k-means over the dataset; a frame's label is its sound's nearest
  cluster; cross-entropy over ``num_clusters`` classes.
* ``target="codes"``: the PCA-binarised variant; ``bits`` binary labels, one logistic
  output each (the mean of their binary cross-entropies).

The encoder sees one frame of the clip (drawn per sample; ``time_dim`` is the clip's time
axis), as in the paper: the sound is not guessed from motion. Metrics: ``pretext_acc``
(cluster accuracy, or the share of bits right) beside ``majority_acc`` (always the most
frequent cluster of the batch, or each bit's majority value).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError, DataError
from selfsup.modalities.sound_texture import SoundClusters, SoundCodes
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput, accuracy
from selfsup.objectives.heads import mlp

TARGETS = ("clusters", "codes")


class AmbientSound(Objective):
    def __init__(self, encoder: Encoder, sound_features: torch.Tensor, target: str = "clusters",
                 num_clusters: int = 30, bits: int = 30, hidden: int = 256, time_dim: int = 1, seed: int = 0):
        super().__init__()
        if target not in TARGETS:
            raise ConfigError(f"ambient-sound target must be one of {TARGETS}, got {target!r}")
        self.target, self.time_dim = target, time_dim
        dim = sound_features.shape[1]
        if target == "clusters":
            self.labels = SoundClusters(dim, num_clusters).fit(sound_features, seed)
            outputs = num_clusters
        else:
            self.labels = SoundCodes(dim, bits).fit(sound_features)
            outputs = self.labels.bits
        self.head = mlp(encoder.embed_dim, hidden, outputs)

    def one_frame(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ..., T, ...) -> (B, ..., 1, ...): one element along time, drawn per sample."""
        xt = x.movedim(self.time_dim, 1)
        pick = torch.randint(0, xt.shape[1], (xt.shape[0],), device=x.device)
        return xt[torch.arange(len(xt), device=x.device), pick][:, None].movedim(1, self.time_dim)

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        if "sound" not in batch:
            raise DataError("ambient-sound needs samples with 'sound' statistics (video clips with an audio "
                            "track, read by the video modality)")
        logits = self.head(encoder.embed(self.one_frame(batch["x"])))
        with torch.no_grad():
            sound = batch["sound"]
            targets = self.labels.assign(sound) if self.target == "clusters" else self.labels.codes(sound)
        if self.target == "clusters":
            counts = torch.bincount(targets, minlength=logits.shape[1])
            return ObjectiveOutput(F.cross_entropy(logits, targets),
                                   {"pretext_acc": accuracy(logits, targets),
                                    "majority_acc": counts.max().float() / len(targets)})
        majority = torch.maximum(targets.mean(0), 1 - targets.mean(0)).mean()
        return ObjectiveOutput(F.binary_cross_entropy_with_logits(logits, targets),
                               {"pretext_acc": ((logits.detach() > 0).float() == targets).float().mean(),
                                "majority_acc": majority})


__all__ = ["AmbientSound", "TARGETS"]
