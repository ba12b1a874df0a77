"""Hierarchical temporal contrast (TS2Vec, Yue et al. 2022) for any sequence modality.

Each sequence (B, C, T) -- a sensor window, a log-mel frame sequence -- is cut into two random
crops that overlap; each crop is encoded with a random half of its time steps masked (on the
encoder's input projection when it offers one). On the overlap, the two crops give two views
(B, T', D) of the same time steps, compared at every scale of a max-pooling pyramid (T', T'/2,
... 1):

* instance contrast: a time step of one view must pick the same time step of the same
  sequence in the other view among the other sequences of the batch;
* temporal contrast: it must pick the same time step among the other time steps of the same
  sequence (both views).

Both are NT-Xent on raw dot products (``selfsup.objectives.losses.nt_xent`` with leading
batch dims, ``normalize=False``, temperature 1), mixed ``alpha : 1 - alpha`` and averaged
over scales. Time is the input's last axis; an encoder with a ``time_stride`` (input steps per
output step) is cropped in whole output steps, and a ``frontend`` may first turn raw inputs into
frames (audio: waveform -> log-mel, so the crops are log-mel frame sequences). Under DDP every
process uses the same crop geometry (broadcast from rank 0; offsets and masks stay per
sequence) and the instance term gathers the other processes' views with gradients, so its
negatives span the global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from selfsup import distributed
from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError
from selfsup.objectives.base import Batch, Objective, ObjectiveOutput
from selfsup.objectives.losses import nt_xent


@dataclass(frozen=True)
class OverlappingCrops:
    """Two crops of every sequence: crop 1 covers [outer_left, right), crop 2 [left, outer_right),
    both the overlap [left, right); sequence b's crops are shifted by ``offset[b]`` steps."""

    offset: torch.Tensor          # (B,) long
    outer_left: int
    left: int
    right: int
    outer_right: int

    @property
    def overlap(self) -> int:
        return self.right - self.left


def draw_overlapping_crops(batch: int, length: int, min_overlap: int, device=None) -> OverlappingCrops:
    """TS2Vec's cropping: an overlap of random length >= ``min_overlap``, each crop extending
    it by a random amount on one side, and the pair shifted by a random offset per sequence.
    The lengths are process 0's under DDP, so that every process's views can be gathered."""
    if length < min_overlap:
        raise ConfigError(f"hierarchical contrast needs sequences of at least {min_overlap} time steps, "
                          f"got {length}")
    randint = lambda lo, hi: int(torch.randint(lo, hi, ()))     # one draw in [lo, hi)
    overlap = randint(min_overlap, length + 1)
    left = randint(0, length - overlap + 1)
    right = left + overlap
    outer_left, outer_right = randint(0, left + 1), randint(right, length + 1)
    outer_left, left, right, outer_right = distributed.broadcast_ints([outer_left, left, right, outer_right])
    offset = torch.randint(-outer_left, length - outer_right + 1, (batch,), device=device)
    return OverlappingCrops(offset, outer_left, left, right, outer_right)


def take_crop(x: torch.Tensor, start: torch.Tensor, length: int) -> torch.Tensor:
    """x (B, ..., T), start (B,) -> (B, ..., length): x[b, ..., start[b]:start[b] + length]."""
    index = start[:, None] + torch.arange(length, device=x.device)                # (B, length)
    index = index.view(x.shape[0], *[1] * (x.dim() - 2), length)                  # (B, 1.., length)
    return x.gather(-1, index.expand(*x.shape[:-1], length))


def hierarchical_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 0.5,
                                  temporal_unit: int = 0, temperature: float = 1.0, normalize: bool = False,
                                  gather=None, rank: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Instance and temporal NT-Xent of two aligned views z1, z2 (B, T, D) at every scale of a
    max-pooling pyramid (halving T until 1); scales below ``temporal_unit`` skip the temporal term.

    Returns (loss averaged over scales, metrics): instance/temporal accuracy at the finest scale,
    where chance is 1 / (2BW - 1) (W processes) and 1 / (2T - 1) (T of the finest scale with a
    temporal term), and those chance levels. ``gather``/``rank`` as in ``nt_xent``: the instance
    term's candidates then come from every process.
    """
    b = z1.shape[0]
    scale_losses, metrics = [], {}
    scale = 0
    while True:
        terms = []
        # Instance: per time step, the 2B views of the batch are the candidates -> (T, B, D) problems.
        inst, inst_acc = nt_xent(rearrange(z1, "b t d -> t b d"), rearrange(z2, "b t d -> t b d"),
                                 temperature, normalize, gather=gather, rank=rank)
        terms.append(alpha * inst)
        length = z1.shape[1]
        if length > 1 and scale >= temporal_unit:
            # Temporal: per sequence, the 2T time steps of both views are the candidates -> (B, T, D).
            temp, temp_acc = nt_xent(z1, z2, temperature, normalize)
            terms.append((1 - alpha) * temp)
            if "temporal_acc" not in metrics:
                metrics["temporal_acc"] = temp_acc
                metrics["temporal_chance"] = torch.tensor(1.0 / (2 * length - 1), device=z1.device)
        metrics.setdefault("instance_acc", inst_acc)
        scale_losses.append(sum(terms))
        if length == 1:
            break
        z1, z2 = (rearrange(F.max_pool1d(rearrange(z, "b t d -> b d t"), 2), "b d t -> b t d") for z in (z1, z2))
        scale += 1
    world = 1 if gather is None else distributed.world_size()
    metrics["instance_chance"] = torch.tensor(1.0 / (2 * b * world - 1), device=z1.device)
    return torch.stack(scale_losses).mean(), metrics


class HierarchicalContrast(Objective):
    """TS2Vec's objective over a sequence encoder whose output steps map to fixed input steps.

    Output step j of a crop that starts at input step s must stand for input step
    s + j * stride, where ``stride`` is the encoder's ``time_stride`` (input steps per output
    step, e.g. a log-mel hop; 1 when absent). With stride 1 the encoder may keep the length
    ("same" padding, dilated-conv) or lose ``min_input_length - 1`` steps (valid convolutions,
    tpn); with a larger stride, extra trailing frames (centred framing) are dropped. Crops and
    masks are drawn in output steps. Encoders with ``accepts_timestamp_mask`` get the mask
    (B, output steps) for their input projection; the others get their masked input steps zeroed.

    Options: ``alpha`` (instance vs temporal weight), ``temporal_unit`` (finest scale index with
    a temporal term; raise it for long sequences), ``mask_p`` (fraction of time steps masked in
    each view), ``max_length`` (a random window of at most this many input steps is taken from
    longer sequences first), ``temperature`` / ``normalize`` (TS2Vec: 1.0 on raw dot products),
    ``frontend``: a weightless module turning the batch's raw inputs into the (B, ..., T) frames
    that are cropped and fed to the encoder (audio: waveform -> log-mel frames, so crops and
    masks fall on whole frames and ``time_stride`` counts frames).
    """

    requires = ("sequence",)

    def __init__(self, encoder: Encoder, alpha: float = 0.5, temporal_unit: int = 0, mask_p: float = 0.5,
                 max_length: int | None = None, temperature: float = 1.0, normalize: bool = False,
                 frontend: torch.nn.Module | None = None):
        super().__init__()
        self.frontend = frontend
        if not 0 <= alpha <= 1:
            raise ConfigError(f"alpha must be in [0, 1], got {alpha}")
        if not 0 <= mask_p < 1:
            raise ConfigError(f"mask_p must be in [0, 1), got {mask_p}")
        self.alpha, self.temporal_unit, self.mask_p = alpha, temporal_unit, mask_p
        self.max_length, self.temperature, self.normalize = max_length, temperature, normalize
        self.stride = int(getattr(encoder, "time_stride", 1))
        # Output steps lost to valid convolutions (0 for "same" padding), so crops still overlap.
        self.shrink = max(0, encoder.min_input_length - 1) if self.stride == 1 else 0

    def forward(self, batch: Batch, encoder: Encoder) -> ObjectiveOutput:
        z1, z2 = self.aligned_views(batch["x"], encoder)
        loss, metrics = hierarchical_contrastive_loss(z1, z2, self.alpha, self.temporal_unit, self.temperature,
                                                      self.normalize, distributed.gather, distributed.rank())
        accs = [metrics[k] for k in ("instance_acc", "temporal_acc") if k in metrics]
        metrics["pretext_acc"] = torch.stack(accs).mean()
        return ObjectiveOutput(loss, metrics)

    def aligned_views(self, x: torch.Tensor, encoder: Encoder) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, T) -> the two crops' encodings of their overlap, (B, n, D) each, step for step."""
        if self.frontend is not None:
            with torch.no_grad():
                x = self.frontend(x)                                      # (B, ..., frames)
        if self.max_length and x.shape[-1] > self.max_length:
            start, = distributed.broadcast_ints([int(torch.randint(0, x.shape[-1] - self.max_length + 1, ()))])
            x = x[..., start:start + self.max_length]
        units = x.shape[-1] // self.stride                               # sequence length in output steps
        crops = draw_overlapping_crops(x.shape[0], units, 2 ** (self.temporal_unit + 1) + self.shrink, x.device)
        # Crop 1 covers [outer_left, right), crop 2 [left, outer_right), both shifted by offset.
        z1 = self._encode(encoder, x, crops.offset + crops.outer_left, crops.right - crops.outer_left)
        z2 = self._encode(encoder, x, crops.offset + crops.left, crops.outer_right - crops.left)
        n = crops.overlap - self.shrink
        return z1[:, crops.left - crops.outer_left:][:, :n], z2[:, :n]

    def _encode(self, encoder: Encoder, x: torch.Tensor, start: torch.Tensor, units: int) -> torch.Tensor:
        """Encode x's crop of ``units`` output steps from step ``start`` (B,), a random ``mask_p``
        of its steps masked -> (B, units - shrink, D)."""
        s = self.stride
        crop = take_crop(x, start * s, units * s)                                     # (B, ..., units * s)
        keep = torch.rand(x.shape[0], units, device=x.device) >= self.mask_p              # (B, units)
        if getattr(encoder, "accepts_timestamp_mask", False):
            z = encoder(crop, timestamp_mask=keep)
        else:  # nothing to mask inside the encoder: zero the masked steps of the input itself
            steps = repeat(keep, "b u -> b (u s)", s=s).view(x.shape[0], *[1] * (crop.dim() - 2), units * s)
            z = encoder(crop * steps.to(crop.dtype))
        expected = units - self.shrink
        if not expected <= z.shape[1] <= expected + (s > 1):
            raise ConfigError(
                f"hierarchical contrast needs an encoder whose output steps map to input steps (stride "
                f"{s}); {type(encoder).__name__} gave {z.shape[1]} steps for {units * s} input steps "
                f"(expected {expected}); use dilated-conv, or give the encoder a time_stride")
        return z[:, :expected]
