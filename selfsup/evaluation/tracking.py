"""Mask propagation through videos by feature affinity, scored with the DAVIS measures.

The first frame's masks are given; every later frame takes its labels from reference frames
-- the first frame (true labels) and the ``context`` frames just before it (their predicted
labels) -- through the affinity of its feature map to theirs:

    for each target position j: its ``topk`` most similar reference positions i (cosine
    similarity of features centred on the sequence's mean and L2-normalised, only within
    ``radius`` cells when set), weights softmax(similarity / temperature) over them,
    labels = weighted sum of their labels.

Labels are soft (one channel per object plus background) at the feature maps' resolution,
upsampled bilinearly to the frame and arg-maxed into a mask. This is the colourisation
pointer of Vondrick et al. used as a tracker, and the same code serves every source of
features (``FeatureSource``): a trained run's encoder, the same architecture randomly
initialised, or raw pixels (Lab colour of each stride x stride patch), so the three are
measured the same way.

Scores (the DAVIS-2017 semi-supervised protocol): per object, region similarity J (IoU) and
contour accuracy F (boundary F-measure with a tolerance of 0.8 % of the image diagonal),
averaged over the frames between the first and the last (both excluded); J and F are the
means over all objects of all sequences, and J&F their mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from selfsup.datasets.davis import DavisSequence, read_davis, write_mask
from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError
from selfsup.modalities.color import rgb_to_lab

FeatureFn = Callable[[torch.Tensor], torch.Tensor]       # frames (T, 3, H, W) -> maps (T, D, h, w)
BOUNDARY_TOLERANCE = 0.008                              # of the image diagonal (DAVIS)


@dataclass
class Propagation:
    topk: int = 10
    context: int = 3            # previous frames used as references, besides the first
    radius: float | None = 6.0  # in feature cells; None: the whole frame
    temperature: float = 0.05


# -- features ---------------------------------------------------------------------------------
def encoder_features(encoder: Encoder, batch_size: int = 16) -> FeatureFn:
    """Dense maps from a video encoder's ``frame_maps`` (eval mode, no gradients)."""
    if not hasattr(encoder, "frame_maps"):
        raise ConfigError(f"{type(encoder).__name__} gives no dense frame maps (frame_maps); "
                          "track with a video encoder")
    device = next(encoder.parameters()).device

    @torch.no_grad()
    def features(frames: torch.Tensor) -> torch.Tensor:
        was = encoder.training
        encoder.eval()
        try:
            return torch.cat([encoder.frame_maps(part.to(device)).float().cpu() for part in frames.split(batch_size)])
        finally:
            encoder.train(was)
    return features


def pixel_features(stride: int = 4) -> FeatureFn:
    """Raw pixels: the Lab colours of each stride x stride patch, (T, 3 * stride^2, H / s, W / s),
    centred on the sequence's mean colour (so that cosine similarity compares colours)."""
    def features(frames: torch.Tensor) -> torch.Tensor:
        lab = rgb_to_lab(frames) / torch.tensor([100.0, 128.0, 128.0]).view(1, 3, 1, 1)
        lab = lab - lab.mean(dim=(0, 2, 3), keepdim=True)
        return F.pixel_unshuffle(lab, stride)
    return features


# -- propagation ------------------------------------------------------------------------------
def one_hot_labels(mask: torch.Tensor, num_labels: int, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) ids -> (num_labels, h, w): the share of each id in every feature cell."""
    onehot = F.one_hot(mask.clamp_min(0), num_labels).permute(2, 0, 1).float()[None]
    return F.adaptive_avg_pool2d(onehot, size)[0]


def local_mask(h: int, w: int, radius: float | None, device=None) -> torch.Tensor | None:
    """(h w, h w) True where two cells are within ``radius`` cells of each other (None: all)."""
    if radius is None:
        return None
    yy, xx = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    cells = torch.stack([yy.flatten(), xx.flatten()], dim=1).float()
    return torch.cdist(cells, cells) <= radius


def propagate(maps: torch.Tensor, first: torch.Tensor, how: Propagation) -> torch.Tensor:
    """maps (T, D, h, w) features, first (K, h, w) soft labels of frame 0 -> (T, K, h, w) labels."""
    t, _, h, w = maps.shape
    # Centred on the sequence's mean feature: what all positions share says nothing about which is which.
    feats = rearrange(maps.float(), "t d h w -> t (h w) d")
    feats = F.normalize(feats - feats.mean(dim=(0, 1)), dim=-1)
    near = local_mask(h, w, how.radius, maps.device)
    labels = [rearrange(first, "k h w -> (h w) k")]
    for i in range(1, t):
        refs = [0] + list(range(max(1, i - how.context), i))
        sim = feats[i] @ rearrange(feats[refs], "r p d -> d (r p)")            # (P, R P)
        if near is not None:
            sim = sim.masked_fill(~near.repeat(1, len(refs)), float("-inf"))
        k = min(how.topk, sim.shape[1])
        top, index = sim.topk(k, dim=1)
        weights = (top / how.temperature).softmax(dim=1)                       # (P, k); -inf cells get 0
        ref_labels = torch.cat([labels[r] for r in refs])                     # (R P, K)
        labels.append(torch.einsum("pk,pkc->pc", weights, ref_labels[index]))
    return rearrange(torch.stack(labels), "t (h w) k -> t k h w", h=h)


def track_sequence(sequence: DavisSequence, features: FeatureFn, how: Propagation) -> torch.Tensor:
    """(T, H, W) predicted ids, frame 0 being the given annotation."""
    maps = features(sequence.frames)
    num_labels = int(sequence.masks[0].max()) + 1
    first = one_hot_labels(sequence.masks[0], num_labels, tuple(maps.shape[-2:]))
    soft = propagate(maps, first, how)
    full = F.interpolate(soft, size=tuple(sequence.frames.shape[-2:]), mode="bilinear", align_corners=False)
    predicted = full.argmax(dim=1)
    predicted[0] = sequence.masks[0].clamp_min(0)
    return predicted


# -- the DAVIS measures -----------------------------------------------------------------------
def region_similarity(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """J: intersection over union of two boolean masks (1 when both are empty)."""
    union = (pred | truth).sum()
    return 1.0 if union == 0 else float((pred & truth).sum() / union)


def boundary(mask: torch.Tensor) -> torch.Tensor:
    """The one-pixel inner boundary of a boolean (H, W) mask."""
    m = mask.float()[None, None]
    eroded = -F.max_pool2d(-F.pad(m, (1, 1, 1, 1), value=1.0), 3, stride=1)
    return (mask & ~eroded[0, 0].bool())


def contour_accuracy(pred: torch.Tensor, truth: torch.Tensor, tolerance: float = BOUNDARY_TOLERANCE) -> float:
    """F: boundary F-measure; a boundary pixel matches if the other boundary lies within
    ``tolerance`` x the image diagonal (1 when both masks are empty, 0 when one is)."""
    bp, bt = boundary(pred), boundary(truth)
    n_pred, n_truth = int(bp.sum()), int(bt.sum())
    if n_pred == 0 and n_truth == 0:
        return 1.0
    if n_pred == 0 or n_truth == 0:
        return 0.0
    r = max(1, math.ceil(tolerance * math.hypot(*pred.shape)))
    dilate = lambda b: F.max_pool2d(b.float()[None, None], 2 * r + 1, stride=1, padding=r)[0, 0].bool()  # noqa: E731
    precision = float((bp & dilate(bt)).sum()) / n_pred
    recall = float((bt & dilate(bp)).sum()) / n_truth
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def score_sequence(predicted: torch.Tensor, truth: torch.Tensor) -> dict[int, tuple[float, float]]:
    """{object id: (J, F)} averaged over the annotated frames between the first and the last."""
    frames = [t for t in range(1, len(truth) - 1) if bool((truth[t] >= 0).all())] or list(range(1, len(truth)))
    scores = {}
    for obj in range(1, int(truth[0].max()) + 1):
        js = [region_similarity(predicted[t] == obj, truth[t] == obj) for t in frames]
        fs = [contour_accuracy(predicted[t] == obj, truth[t] == obj) for t in frames]
        scores[obj] = (float(np.mean(js)), float(np.mean(fs)))
    return scores


@dataclass
class TrackingResult:
    J: float
    F: float
    per_sequence: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def JF(self) -> float:
        return (self.J + self.F) / 2

    def to_dict(self) -> dict:
        return {"J": self.J, "F": self.F, "J&F": self.JF, "sequences": len(self.per_sequence),
                "objects": sum(int(s["objects"]) for s in self.per_sequence.values()),
                "seconds": round(self.seconds, 2), "per_sequence": self.per_sequence}


def track_davis(features: FeatureFn, sequences: list[DavisSequence], how: Propagation | None = None,
                out: str | Path | None = None, resolution: str = "480p") -> TrackingResult:
    """Propagate the first masks of every sequence; score J and F; optionally write the
    predicted masks in DAVIS layout under ``out`` (Annotations/<resolution>/<sequence>/)."""
    import time

    how = how or Propagation()
    started = time.perf_counter()
    js, fs, per_sequence = [], [], {}
    for seq in sequences:
        predicted = track_sequence(seq, features, how)
        scores = score_sequence(predicted, seq.masks)
        js += [j for j, _ in scores.values()]
        fs += [f for _, f in scores.values()]
        per_sequence[seq.name] = {"J": float(np.mean([j for j, _ in scores.values()])),
                                  "F": float(np.mean([f for _, f in scores.values()])), "objects": len(scores)}
        if out is not None:
            for t, mask in enumerate(predicted):
                write_mask(Path(out) / "Annotations" / resolution / seq.name / f"{t:05d}.png", mask)
    if not js:
        raise ConfigError("no objects to track: the first annotations hold only background")
    return TrackingResult(float(np.mean(js)), float(np.mean(fs)), per_sequence, time.perf_counter() - started)


def load_sequences(root: str | Path, resolution: str = "480p", split: str | None = None,
                   size: int | None = None) -> list[DavisSequence]:
    """DAVIS sequences, frames resized to ``size`` (shorter side, centre crop) when given."""
    return read_davis(root, resolution, split, None if size is None else (size, size))


# -- sources ----------------------------------------------------------------------------------
@dataclass
class TrackingSource:
    """Where the features come from: a run, the same kind of encoder randomly initialised, or pixels."""

    run: str | None = None
    random_init: bool = False
    pixels: bool = False
    encoder: str | None = None              # with random_init (default: spatial-map)
    modality_options: dict | None = None
    encoder_options: dict | None = None
    seed: int = 0
    stride: int = 4                         # with pixels: patch size


def davis_root(davis: str | Path) -> Path:
    """A DAVIS folder, or ``builtin:moving-digits[?...]`` / ``builtin:moving-fashion``: the
    generated set's DAVIS folder (generated on first use)."""
    text = str(davis)
    if text.startswith("builtin:"):
        from selfsup.modalities.video import GENERATED, generated_root

        name, _, query = text.split(":", 1)[1].partition("?")
        if name not in GENERATED:
            raise ConfigError(f"no built-in DAVIS-format set '{name}'; choose from {', '.join(GENERATED)}")
        return generated_root(name, query) / "davis"
    return Path(text)


def source_features(source: TrackingSource, root: Path) -> tuple[FeatureFn, str]:
    """(feature function, description) for a source; a random-init encoder gets the input
    statistics of the DAVIS frames, as pretraining on them would have given it."""
    chosen = sum([source.run is not None, source.random_init, source.pixels])
    if chosen != 1:
        raise ConfigError("track one source: a run, a random-init encoder, or pixels")
    if source.pixels:
        return pixel_features(source.stride), f"raw pixels (Lab of {source.stride}x{source.stride} patches)"
    if source.run is not None:
        from selfsup.training.build import load_encoder

        encoder, spec = load_encoder(source.run)
        return encoder_features(encoder), f"{spec['encoder']} encoder (run {source.run})"
    from selfsup.modalities.video import VideoModality

    modality = VideoModality(**(source.modality_options or {}))
    name = source.encoder or "spatial-map"
    kwargs = {**modality.encoder_kwargs(modality.load(root)), **(source.encoder_options or {})}
    torch.manual_seed(source.seed)
    encoder = modality.build_encoder(name, **kwargs).eval()
    return encoder_features(encoder), f"{name} encoder (random init, seed {source.seed})"


def run_tracking(source: TrackingSource, davis: str | Path, how: Propagation | None = None, resolution: str = "480p",
                 split: str | None = None, size: int | None = None, out: str | Path | None = None) -> dict:
    """``selfsup track``: the scores of one source on a DAVIS folder, as a JSON-able dict."""
    root = davis_root(davis)
    sequences = load_sequences(root, resolution, split, size)
    features, description = source_features(source, root)
    how = how or Propagation()
    result = track_davis(features, sequences, how, out, resolution)
    return {**result.to_dict(), "source": description, "davis": str(root),
            "propagation": {"topk": how.topk, "context": how.context, "radius": how.radius,
                            "temperature": how.temperature}}


__all__ = ["Propagation", "TrackingSource", "run_tracking", "source_features", "davis_root", "TrackingResult",
           "encoder_features", "pixel_features", "propagate", "track_sequence", "track_davis", "region_similarity",
           "contour_accuracy", "boundary", "score_sequence", "load_sequences", "one_hot_labels"]
