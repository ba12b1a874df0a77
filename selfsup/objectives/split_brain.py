"""Split-brain autoencoder (Zhang, Isola & Efros 2017): two halves of the channels predict
each other.

The Lab channels of an RGB input are split into lightness L and colour ab. One pass gives
the encoder the lightness alone (a = b = 0) and predicts the ab colour classes, as in
colourisation; another gives it the colour alone (L fixed at 50) and predicts the lightness
classes (``l_bins`` equal bins of [0, 100], soft-encoded over the 2 nearest). Both are
per-position classifications on the feature map with cross-entropy, summed.

One difference from the paper, said plainly: there the network is split along its width into
two disjoint sub-networks (one per direction) whose features are concatenated; here the
two directions share one encoder (the selfsup contract has one encoder per run), so the
features must serve both predictions at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.encoders.base import Encoder
from selfsup.modalities.color import lab_to_rgb, rgb_to_lab
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.colorization import (DenseHead, SoftQuantiser, ab_gamut, dense_classification_metrics,
                                             lightness_only)


def colour_only(rgb: torch.Tensor, lightness: float = 50.0) -> torch.Tensor:
    """(B, 3, H, W) RGB -> the same colours at one fixed lightness, as RGB (colours that sRGB
    cannot show at that lightness are clipped, which moves their lightness a little)."""
    lab = rgb_to_lab(rgb)
    return lab_to_rgb(torch.cat([torch.full_like(lab[:, :1], lightness), lab[:, 1:]], dim=1))


class SplitBrain(Objective):
    requires = ("map",)

    def __init__(self, encoder: Encoder, grid: float = 10.0, l_bins: int = 20, hidden: int = 128):
        super().__init__()
        width = 100.0 / l_bins
        self.ab = SoftQuantiser(ab_gamut(grid))
        self.lightness = SoftQuantiser((torch.arange(l_bins) * width + width / 2)[:, None], neighbours=2,
                                       sigma=width / 2)
        self.ab_head = DenseHead(encoder.feature_dim, self.ab.num_bins, hidden)
        self.l_head = DenseHead(encoder.feature_dim, self.lightness.num_bins, hidden)

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        x = batch["x"]
        if x.shape[1] != 3:
            raise ValueError(f"split-brain needs RGB images, got {x.shape[1]} channel(s)")
        b = x.shape[0]
        fmap = encoder(torch.cat([lightness_only(x), colour_only(x)]))                 # (2B, D, h, w)
        lab = F.adaptive_avg_pool2d(rgb_to_lab(x), fmap.shape[-2:])                    # (B, 3, h, w)
        loss, metrics = 0.0, {}
        for name, head, quantiser, features, target in (
                ("ab", self.ab_head, self.ab, fmap[:b], lab[:, 1:]),                   # L -> ab
                ("L", self.l_head, self.lightness, fmap[b:], lab[:, :1])):             # ab -> L
            logits, soft = head(features), quantiser.encode(target)
            loss = loss + -(soft * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
            metrics.update({f"{k}_{name}": v for k, v in dense_classification_metrics(logits, soft).items()})
        metrics["pretext_acc"] = (metrics["pretext_acc_ab"] + metrics["pretext_acc_L"]) / 2
        return ObjectiveOutput(loss, metrics)


__all__ = ["SplitBrain", "colour_only"]
