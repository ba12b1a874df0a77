"""What images give the predictive pretext tasks, and the CLI names of those tasks.

Batched tensor ops on (B, C, H, W) images in [0, 1], on the batch's device:

* ``Rotation`` / ``rotation_set``: the RotNet rotations (2, 4 or 8 of them); multiples of 90
  degrees are exact (``rot90``); with 8, every view is cut to the inscribed disk so that the
  empty corners of a 45-degree turn give nothing away.
* ``tile_grid`` / ``TileGrid``: a grid of square tiles with gaps and random jitter between
  them (relative position, jigsaw, counting), per-tile normalisation (jigsaw) and colour
  projection or dropping against chromatic aberration (relative position).
* ``CountingParts``: the 2x2 tiles of an image and the image downsampled to a tile's size.
* ``InpaintingMask``: central, random-block and random-region masks.
* ``sample_photo_crops``: colour crops of scikit-learn's two sample photos (offline colour data).

``PRETEXT_OBJECTIVES`` maps the CLI names to factories ``factory(encoder, modality, dataset,
**options)``. The objectives themselves live in ``selfsup/objectives/`` and are generic.
Every factory that embeds whole inputs or tiles takes ``lasso=PENALTY`` to read a learned
sparse combination of the encoder's layers instead of its last embedding (``LayerLasso``).

This module does not import ``selfsup.modalities.image`` (that module may import this one).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from selfsup.datasets.base import SampleDataset, spread_samples
from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError
from selfsup.modalities.base import Entry, Transformation
from selfsup.objectives.base import Objective
from selfsup.objectives.colorization import Colorization, ab_histogram
from selfsup.objectives.counting import Counting
from selfsup.objectives.inpainting import Inpainting
from selfsup.objectives.jigsaw import Jigsaw
from selfsup.objectives.layer_combination import LayerLasso
from selfsup.objectives.relative_position import RelativePosition
from selfsup.objectives.s4l import s4l
from selfsup.objectives.split_brain import SplitBrain
from selfsup.objectives.supervised import Supervised
from selfsup.objectives.transformation import TransformationPrediction

ROTATION_COUNTS = (2, 4, 8)
COLOUR_SAMPLES = 500          # images that estimate the colour prior of colourisation's rebalancing


# -- rotations --------------------------------------------------------------------------------
def disk_mask(h: int, w: int, device=None) -> torch.Tensor:
    """(H, W) 1 inside the disk inscribed in the image, 0 outside."""
    yy = torch.arange(h, device=device) - (h - 1) / 2
    xx = torch.arange(w, device=device) - (w - 1) / 2
    return ((yy[:, None] ** 2 + xx[None, :] ** 2) <= (min(h, w) / 2) ** 2).float()


class Rotation(Transformation):
    """Turn every image counter-clockwise by ``degrees``; ``disk`` cuts the result to the
    inscribed disk. Multiples of 90 degrees are exact; others resample bilinearly."""

    def __init__(self, degrees: float, disk: bool = False):
        super().__init__()
        self.degrees, self.disk = float(degrees) % 360, disk
        self.name = f"rot{self.degrees:g}"

    def forward(self, x):
        quarters, rest = divmod(self.degrees, 90)
        if rest == 0:
            out = torch.rot90(x, int(quarters), dims=(-2, -1))
        else:
            a = math.radians(self.degrees)
            # affine_grid maps output to input positions in (x right, y down) coordinates; this
            # matrix turns the content the way rot90 does (checked: two 45-degree turns = one rot90).
            theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]],
                                 device=x.device, dtype=x.dtype).expand(x.shape[0], 2, 3)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.disk:
            out = out * disk_mask(*x.shape[-2:], device=x.device).to(x.dtype)
        return out


def rotation_set(count: int = 4) -> list[Rotation]:
    """0, 360/count, ... degrees: 2 (0, 180), 4 (RotNet's default) or 8 (45-degree steps, disk-cut)."""
    if count not in ROTATION_COUNTS:
        raise ConfigError(f"rotation count must be one of {ROTATION_COUNTS}, got {count}")
    disk = any((i * 360 / count) % 90 for i in range(count))
    return [Rotation(i * 360 / count, disk=disk) for i in range(count)]


# -- tiles ------------------------------------------------------------------------------------
def grid_geometry(side: int, grid: int, gap: int | None = None, jitter: int | None = None) -> tuple[int, int, int]:
    """(tile, gap, jitter) for a ``grid`` x ``grid`` layout over ``side`` pixels: cells of
    side // grid; by default a gap of a tenth of a cell and jitter of a sixteenth (at least 1 px each)."""
    cell = side // grid
    gap = max(1, round(0.1 * cell)) if gap is None else int(gap)
    jitter = max(1, round(cell / 16)) if jitter is None else int(jitter)
    tile = cell - gap - jitter
    if gap < 0 or jitter < 0 or tile < 2:
        raise ConfigError(f"a {grid}x{grid} grid with gap {gap} and jitter {jitter} leaves tiles of {tile} px in "
                          f"{side} px images; use larger images (modality_options.size), a smaller grid or gap")
    return tile, gap, jitter


def tile_grid(x: torch.Tensor, grid: int, tile: int, gap: int = 0, jitter: int = 0) -> torch.Tensor:
    """(B, C, H, W) -> (B, grid * grid, C, tile, tile), tiles in row-major order.

    Cells of side min(H, W) // grid; the whole grid sits at a random place in the image; each
    tile sits in its cell at offset gap // 2 + U{0 .. jitter} (per sample and tile), so that
    neighbouring tiles are between ``gap`` and ``gap + 2 jitter`` pixels apart. One gather.
    """
    b, c, h, w = x.shape
    cell = min(h, w) // grid
    if tile + gap + jitter > cell:
        raise ValueError(f"tiles of {tile} px with gap {gap} and jitter {jitter} exceed {cell} px cells")
    n, dev = grid * grid, x.device
    top = torch.randint(0, h - grid * cell + 1, (b, 1), device=dev) + (torch.arange(n, device=dev) // grid) * cell
    left = torch.randint(0, w - grid * cell + 1, (b, 1), device=dev) + (torch.arange(n, device=dev) % grid) * cell
    top = top + gap // 2 + torch.randint(0, jitter + 1, (b, n), device=dev)                      # (B, N)
    left = left + gap // 2 + torch.randint(0, jitter + 1, (b, n), device=dev)
    span = torch.arange(tile, device=dev)
    index = (top[..., None, None] + span[:, None]) * w + left[..., None, None] + span           # (B, N, t, t)
    tiles = x.flatten(2).gather(2, index.view(b, 1, -1).expand(b, c, -1))                       # (B, C, N t t)
    return rearrange(tiles, "b c (n p q) -> b n c p q", n=n, p=tile)


def normalise_tiles(tiles: torch.Tensor) -> torch.Tensor:
    """Standardise each tile and channel on its own, then restore the batch's overall mean and
    spread, so tiles share no low-level statistics yet stay in the usual pixel range."""
    dims = tuple(range(tiles.dim() - 2, tiles.dim()))
    mean, std = tiles.mean(dim=dims, keepdim=True), tiles.std(dim=dims, keepdim=True)
    return (tiles - mean) / std.clamp_min(1e-3) * tiles.std() + tiles.mean()      # flat tiles stay flat


GREEN_MAGENTA = (-1.0, 2.0, -1.0)


def project_colour(x: torch.Tensor) -> torch.Tensor:
    """Remove the green-magenta component of every RGB pixel (Doersch et al.'s projection):
    chromatic aberration shifts green against magenta, a cue to the position in the lens."""
    if x.shape[-3] != 3:
        return x
    axis = F.normalize(torch.tensor(GREEN_MAGENTA, device=x.device, dtype=x.dtype), dim=0).view(3, 1, 1)
    return (x - (x * axis).sum(dim=-3, keepdim=True) * axis).clamp(0, 1)


def drop_colour(x: torch.Tensor) -> torch.Tensor:
    """Keep one random channel of every RGB image and replace the other two by Gaussian noise
    of 1/100 of that channel's spread (Doersch et al.'s colour dropping). x (..., 3, H, W)."""
    if x.shape[-3] != 3:
        return x
    flat = x.reshape(-1, 3, *x.shape[-2:])
    keep = torch.randint(0, 3, (len(flat),), device=x.device)
    kept = flat[torch.arange(len(flat), device=x.device), keep][:, None]                       # (M, 1, H, W)
    noise = kept.mean(dim=(2, 3), keepdim=True) + torch.randn_like(flat) * kept.std(dim=(2, 3), keepdim=True) / 100
    chosen = F.one_hot(keep, 3).to(x.dtype)[:, :, None, None]
    return (chosen * kept + (1 - chosen) * noise).reshape(x.shape)


CHROMA = {"project": project_colour, "drop": drop_colour, "none": lambda x: x}


class TileGrid(nn.Module):
    """batch -> (B, grid * grid, C, tile, tile) tiles of its images; see ``tile_grid``."""

    def __init__(self, image_size: Sequence[int], grid: int = 3, gap: int | None = None, jitter: int | None = None,
                 normalise: bool = False, chroma: str = "none"):
        super().__init__()
        if chroma not in CHROMA:
            raise ConfigError(f"chroma must be one of {', '.join(CHROMA)}, got {chroma!r}")
        self.grid, self.normalise, self.chroma = grid, normalise, chroma
        self.tile, self.gap, self.jitter = grid_geometry(min(image_size), grid, gap, jitter)

    @property
    def num_tiles(self) -> int:
        return self.grid * self.grid

    def forward(self, batch) -> torch.Tensor:
        tiles = CHROMA[self.chroma](tile_grid(batch["x"], self.grid, self.tile, self.gap, self.jitter))
        return normalise_tiles(tiles) if self.normalise else tiles


class CountingParts(nn.Module):
    """batch -> (image downsampled to a tile's size (B, C, t, t), its 2x2 tiles (B, 4, C, t, t))."""

    def __init__(self, image_size: Sequence[int]):
        super().__init__()
        self.tile = min(image_size) // 2
        if self.tile < 2:
            raise ConfigError(f"counting needs images of at least 4 px, got {tuple(image_size)}")

    def forward(self, batch):
        x = batch["x"]
        whole = F.interpolate(x, size=(self.tile, self.tile), mode="bilinear", antialias=True, align_corners=False)
        return whole, tile_grid(x, 2, self.tile)


# -- inpainting masks -------------------------------------------------------------------------
class InpaintingMask(nn.Module):
    """x (B, C, H, W) -> (B, 1, H, W) bool, True where pixels are removed.

    ``central``: the centred square covering ``coverage`` of the image; ``block``: ``blocks``
    random rectangles per image (sides 20-40% of the image's, overlapping freely); ``region``:
    random blob-shaped regions -- smooth noise thresholded at the quantile that removes
    exactly ``coverage`` of every image (Pathak et al. took such shapes from segmentations).
    """

    KINDS = ("central", "block", "region")

    def __init__(self, kind: str = "central", coverage: float = 0.25, blocks: int = 3):
        super().__init__()
        if kind not in self.KINDS:
            raise ConfigError(f"inpainting mask must be one of {', '.join(self.KINDS)}, got {kind!r}")
        if not 0 < coverage < 1:
            raise ConfigError(f"mask coverage must be in (0, 1), got {coverage}")
        self.kind, self.coverage, self.blocks = kind, coverage, blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        dev = x.device
        yy, xx = torch.arange(h, device=dev), torch.arange(w, device=dev)
        if self.kind == "central":
            side_h, side_w = round(h * math.sqrt(self.coverage)), round(w * math.sqrt(self.coverage))
            top, left = (h - side_h) // 2, (w - side_w) // 2
            inside = ((yy >= top) & (yy < top + side_h))[:, None] & ((xx >= left) & (xx < left + side_w))[None]
            return inside.expand(b, 1, h, w)
        if self.kind == "block":
            size = (0.2 + 0.2 * torch.rand(b, self.blocks, 2, device=dev)) * torch.tensor([h, w], device=dev)
            corner = torch.rand(b, self.blocks, 2, device=dev) * (torch.tensor([h, w], device=dev) - size)
            rows = (yy >= corner[..., :1]) & (yy < corner[..., :1] + size[..., :1])                  # (B, K, H)
            cols = (xx >= corner[..., 1:]) & (xx < corner[..., 1:] + size[..., 1:])                  # (B, K, W)
            return (rows[..., :, None] & cols[..., None, :]).any(dim=1, keepdim=True)
        noise = torch.rand(b, 1, max(2, h // 4), max(2, w // 4), device=dev)
        smooth = F.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False)
        threshold = torch.quantile(smooth.flatten(1), 1 - self.coverage, dim=1)
        return smooth > threshold.view(b, 1, 1, 1)


# -- colour images that ship offline ------------------------------------------------------------
def sample_photo_crops(side: int = 16, stride: int = 5, scale: float = 0.25, split: float = 0.7):
    """(train, test) colour crops of scikit-learn's two sample photographs (a temple in China, a
    flower), downscaled by ``scale`` and cut every ``stride`` pixels into ``side``-pixel squares:
    training crops from the left ``split`` of each photo, test crops from the rest (never
    overlapping them). Real colour images for the colour tasks with no download."""
    from sklearn.datasets import load_sample_images

    from selfsup.datasets.images import ImageArrayDataset

    train, test = [], []
    for photo in load_sample_images().images:
        x = torch.from_numpy(np.array(photo)).permute(2, 0, 1)[None].float() / 255
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", antialias=True)[0].clamp(0, 1)
        h, w = x.shape[-2:]
        cut = int(w * split)
        for top in range(0, h - side + 1, stride):
            train += [x[:, top: top + side, left: left + side] for left in range(0, cut - side + 1, stride)]
            test += [x[:, top: top + side, left: left + side] for left in range(cut + stride, w - side + 1, stride)]
    return (ImageArrayDataset(torch.stack(train), source="sklearn sample photos (left parts)"),
            ImageArrayDataset(torch.stack(test), source="sklearn sample photos (right parts)"))


# -- factories (the CLI's names) --------------------------------------------------------------
def _sample_shape(dataset: SampleDataset | None, modality) -> tuple[int, int, int]:
    """(C, H, W) of the images: from the data, else from the modality's size/channels options."""
    if dataset is not None:
        return tuple(dataset[0]["x"].shape)
    size, channels = getattr(modality, "size", None), getattr(modality, "channels", None)
    if size is None or channels is None:
        raise ConfigError("this objective needs the image size and channels: pass the dataset, or set "
                          "modality_options.size and modality_options.channels")
    return (channels, *size)


def _make(cls, *args, factory=None, **options):
    """``cls(*args, **options)``; an unknown option is a ConfigError that lists the options there
    are (the factory's own and the class's) instead of a TypeError traceback."""
    accepted = list(inspect.signature(cls).parameters)[len(args):]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        own = [n for n in inspect.signature(factory).parameters][3:-1] if factory else []
        raise ConfigError(f"unknown objective option(s) {unknown} for {cls.__name__}; options: "
                          f"{', '.join(own + accepted)}")
    return cls(*args, **options)


def _with_lasso(objective: Objective, encoder: Encoder, lasso: float | None, input_shape) -> Objective:
    """Wrap in ``LayerLasso`` when a lasso penalty is given (``lasso=0`` combines layers, unpenalised)."""
    if lasso is None or lasso is False:
        return objective
    return LayerLasso(objective, encoder, input_shape, float(lasso))


def _rotation(encoder, modality, dataset, count: int = 4, lasso=None, **kw):
    c, h, w = _sample_shape(dataset, modality)
    if h != w and count != 2:
        raise ConfigError(f"rotations by 90 degrees need square images, got {h}x{w}; set modality_options.size=N "
                          "or use rotation count=2")
    kw.setdefault("form", "multiclass")
    objective = _make(TransformationPrediction, encoder, rotation_set(int(count)), factory=_rotation, **kw)
    return _with_lasso(objective, encoder, lasso, (c, h, w))


def _relative_position(encoder, modality, dataset, grid: int = 3, gap=None, jitter=None, chroma: str = "project",
                       lasso=None, **kw):
    c, h, w = _sample_shape(dataset, modality)
    tiles = TileGrid((h, w), grid, gap, jitter, normalise=False, chroma=chroma)
    objective = _make(RelativePosition, encoder, tiles, tiles.num_tiles, factory=_relative_position, **kw)
    return _with_lasso(objective, encoder, lasso, (c, tiles.tile, tiles.tile))


def _jigsaw(encoder, modality, dataset, grid: int = 3, gap=None, jitter=None, normalise: bool = True,
            permutations: int = 100, lasso=None, **kw):
    c, h, w = _sample_shape(dataset, modality)
    tiles = TileGrid((h, w), grid, gap, jitter, normalise=normalise)
    count = min(int(permutations), math.factorial(tiles.num_tiles))
    objective = _make(Jigsaw, encoder, tiles, tiles.num_tiles, count, factory=_jigsaw, **kw)
    return _with_lasso(objective, encoder, lasso, (c, tiles.tile, tiles.tile))


def _counting(encoder, modality, dataset, lasso=None, **kw):
    c, h, w = _sample_shape(dataset, modality)
    parts = CountingParts((h, w))
    objective = _make(Counting, encoder, parts, factory=_counting, **kw)
    return _with_lasso(objective, encoder, lasso, (c, parts.tile, parts.tile))


def _inpainting(encoder, modality, dataset, mask: str = "central", coverage: float = 0.25, blocks: int = 3, **kw):
    c, _, _ = _sample_shape(dataset, modality)
    return _make(Inpainting, encoder, InpaintingMask(mask, coverage, blocks), c, factory=_inpainting, **kw)


def _colour_shape(dataset, modality, name: str) -> tuple[int, int, int]:
    shape = _sample_shape(dataset, modality)
    if shape[0] != 3:
        raise ConfigError(f"{name} needs colour (RGB) images; these have {shape[0]} channel(s) "
                          "(grey images such as digits or Fashion-MNIST have no colour to predict)")
    return shape


def _colorization(encoder, modality, dataset, **kw):
    _colour_shape(dataset, modality, "colorization")
    counts = None
    if dataset is not None and kw.get("rebalance", 0.5) > 0:
        counts = ab_histogram(torch.stack(spread_samples(dataset, COLOUR_SAMPLES)), kw.get("grid", 10.0))
    return _make(Colorization, encoder, counts, **kw)


def _split_brain(encoder, modality, dataset, **kw):
    _colour_shape(dataset, modality, "split-brain")
    return _make(SplitBrain, encoder, **kw)


def _num_classes(dataset: SampleDataset | None, name: str) -> int:
    if dataset is None or not dataset.has_labels:
        raise ConfigError(f"{name} needs labelled images (class subfolders, or a labelled built-in set)")
    return dataset.num_classes


def _supervised(encoder, modality, dataset, lasso=None, **kw):
    objective = _make(Supervised, encoder, _num_classes(dataset, "supervised"), factory=_supervised, **kw)
    return _with_lasso(objective, encoder, lasso, _sample_shape(dataset, modality))


def _s4l(encoder, modality, dataset, task: str = "rotation", weight: float = 1.0, label_fraction: float | None = None,
         seed: int = 0, **task_options: Any):
    if task not in SELF_SUPERVISED:
        raise ConfigError(f"s4l's self-supervised task must be one of {', '.join(SELF_SUPERVISED)}, got {task!r}")
    part = PRETEXT_OBJECTIVES[task].factory(encoder, modality, dataset, **task_options)
    return s4l(encoder, part, _num_classes(dataset, "s4l"), task, weight, label_fraction, seed)


PRETEXT_OBJECTIVES = {
    "rotation": Entry(_rotation, "RotNet: which rotation (count=4: 0/90/180/270; 2 or 8) was applied, all of each "
                                 "image's rotations in the batch"),
    "relative-position": Entry(_relative_position, "Doersch: where a patch sits among the 8 around the centre one "
                                                   "(3x3 grid, gaps + jitter, colour projection)"),
    "jigsaw": Entry(_jigsaw, "Noroozi & Favaro: which of 100 max-Hamming permutations shuffled the 3x3 tiles "
                             "(gaps, per-tile normalisation)"),
    "inpainting": Entry(_inpainting, "context encoder: rebuild a removed region (mask=central|block|region; "
                                     "adversarial=WEIGHT adds the GAN term)"),
    "colorization": Entry(_colorization, "Zhang et al.: predict quantised ab colour classes from lightness, with "
                                         "class rebalancing (colour images)"),
    "split-brain": Entry(_split_brain, "split-brain: lightness predicts colour classes and colour predicts lightness "
                                       "classes (colour images)"),
    "counting": Entry(_counting, "Noroozi et al.: counts of the 2x2 tiles sum to the downsampled image's, "
                                 "contrasted with another image"),
    "supervised": Entry(_supervised, "cross-entropy on the labels (supervised reference; needs labelled images)"),
    "s4l": Entry(_s4l, "S4L: supervised loss on the labelled images + rotation (task=NAME) on all; "
                       "label_fraction=F keeps a fraction of the labels"),
}
SELF_SUPERVISED = ("rotation", "relative-position", "jigsaw", "inpainting", "colorization", "split-brain", "counting")

__all__ = ["PRETEXT_OBJECTIVES", "Rotation", "rotation_set", "disk_mask", "tile_grid", "grid_geometry", "TileGrid",
           "normalise_tiles", "project_colour", "drop_colour", "CountingParts", "InpaintingMask", "sample_photo_crops"]
