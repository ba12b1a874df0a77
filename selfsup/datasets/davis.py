"""The DAVIS-2017 layout: reading and writing sequences of frames with object masks.

    ROOT/JPEGImages/<res>/<sequence>/00000.jpg ...     RGB frames
    ROOT/Annotations/<res>/<sequence>/00000.png ...    palette PNGs: pixel = object id (0 = background)
    ROOT/ImageSets/2017/<split>.txt                    sequence names, one a line (optional)

``read_sequence`` gives frames (T, 3, H, W) float in [0, 1] and masks (T, H, W) long (frames
without an annotation file get -1 everywhere: DAVIS test sets annotate the first frame only).
``write_sequence`` writes the same layout (JPEG frames, palette masks with the DAVIS colours),
so generated data and predicted masks can be looked at with the DAVIS tools.
``DavisClips`` serves clips of consecutive frames of every sequence for pretraining.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from selfsup.datasets.base import SampleDataset
from selfsup.datasets.images import conform
from selfsup.errors import DataError

RESOLUTION = "480p"
FRAME_RATE = 24             # DAVIS sequences are 24 fps
UNANNOTATED = -1


@dataclass
class DavisSequence:
    name: str
    frames: torch.Tensor     # (T, 3, H, W) float in [0, 1]
    masks: torch.Tensor      # (T, H, W) long object ids; -1 where a frame has no annotation

    @property
    def num_objects(self) -> int:
        return int(self.masks[0].max())


@functools.lru_cache(maxsize=1)
def davis_palette() -> np.ndarray:
    """(256, 3) uint8: the PASCAL VOC colour map that DAVIS annotations use (id 1 red, 2 green ...)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for bit in range(8):                      # spread the id's bits over the three channels
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def is_davis_root(path: str | Path) -> bool:
    path = Path(path)
    return (path / "JPEGImages").is_dir() and (path / "Annotations").is_dir()


def _folder(root: Path, kind: str, resolution: str) -> Path:
    folder = root / kind / resolution
    if not folder.is_dir():
        have = sorted(p.name for p in (root / kind).iterdir() if p.is_dir()) if (root / kind).is_dir() else []
        raise DataError(f"no {kind}/{resolution} folder (resolutions here: {', '.join(have) or 'none'})", root)
    return folder


def sequence_names(root: str | Path, resolution: str = RESOLUTION, split: str | None = None) -> list[str]:
    """The sequences of ``split`` (ImageSets/2017/<split>.txt), or every sequence folder."""
    root = Path(root)
    if not is_davis_root(root):
        raise DataError("not a DAVIS folder (it needs JPEGImages/ and Annotations/)", root)
    frames = _folder(root, "JPEGImages", resolution)
    if split is not None:
        listing = root / "ImageSets" / "2017" / f"{split}.txt"
        if not listing.is_file():
            raise DataError(f"no ImageSets/2017/{split}.txt", root)
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        missing = [n for n in names if not (frames / n).is_dir()]
        if missing:
            raise DataError(f"{split}.txt names sequences without frames: {', '.join(missing[:5])}", listing)
        return names
    names = sorted(p.name for p in frames.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(f"no sequences under JPEGImages/{resolution}", root)
    return names


def frame_files(root: str | Path, name: str, resolution: str = RESOLUTION) -> list[Path]:
    folder = Path(root) / "JPEGImages" / resolution / name
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise DataError("no .jpg frames", folder)
    return files


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"unreadable image ({exc.__class__.__name__})", path) from None


def read_mask(path: str | Path) -> np.ndarray:
    """A palette (or grey) PNG -> (H, W) int64 object ids."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L"):
                raise DataError(f"an annotation must be a palette (P) or grey (L) PNG, not mode {img.mode}", path)
            return np.asarray(img).astype(np.int64)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"unreadable annotation ({exc.__class__.__name__})", path) from None


def read_frames(files: Sequence[Path], size: tuple[int, int] | None = None) -> torch.Tensor:
    """JPEG files -> (T, 3, H, W) float, resized (shorter side, centre crop) to ``size``."""
    frames = torch.from_numpy(np.stack([_read_rgb(f) for f in files])).permute(0, 3, 1, 2).float().div_(255)
    return conform(frames, 3, size) if size is not None else frames


def read_sequence(root: str | Path, name: str, resolution: str = RESOLUTION,
                  size: tuple[int, int] | None = None) -> DavisSequence:
    """One sequence's frames and masks (masks resized with nearest neighbours to match)."""
    root = Path(root)
    files = frame_files(root, name, resolution)
    frames = read_frames(files, size)
    notes = _folder(root, "Annotations", resolution) / name
    masks = torch.full((len(files), *frames.shape[-2:]), UNANNOTATED, dtype=torch.long)
    for t, f in enumerate(files):
        png = notes / f"{f.stem}.png"
        if png.is_file():
            m = torch.from_numpy(read_mask(png))
            if size is not None:
                m = _resize_mask(m, size)
            if m.shape != frames.shape[-2:]:
                raise DataError(f"mask is {tuple(m.shape)} but its frame is {tuple(frames.shape[-2:])}", png)
            masks[t] = m
    if bool((masks[0] == UNANNOTATED).all()):
        raise DataError("the first frame has no annotation (propagation starts from it)", notes / f"{files[0].stem}.png")
    return DavisSequence(name, frames, masks)


def _resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour version of ``conform``'s resize-shorter-side-then-centre-crop."""
    h, w = mask.shape
    scale = max(size[0] / h, size[1] / w)
    rh, rw = max(size[0], round(h * scale)), max(size[1], round(w * scale))
    m = torch.nn.functional.interpolate(mask[None, None].float(), size=(rh, rw), mode="nearest")[0, 0].long()
    top, left = (rh - size[0]) // 2, (rw - size[1]) // 2
    return m[top: top + size[0], left: left + size[1]]


def read_davis(root: str | Path, resolution: str = RESOLUTION, split: str | None = None,
               size: tuple[int, int] | None = None) -> list[DavisSequence]:
    return [read_sequence(root, n, resolution, size) for n in sequence_names(root, resolution, split)]


# -- writing ----------------------------------------------------------------------------------
def write_mask(path: str | Path, mask: np.ndarray | torch.Tensor) -> Path:
    """(H, W) object ids (0..255) -> a palette PNG with the DAVIS colours."""
    from PIL import Image

    m = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask)
    if m.ndim != 2 or m.min() < 0 or m.max() > 255:
        raise ValueError(f"a mask must be (H, W) ids in 0..255, got shape {m.shape}, range {m.min()}..{m.max()}")
    img = Image.fromarray(m.astype(np.uint8), mode="P")
    img.putpalette(davis_palette().flatten().tolist())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return Path(path)


def write_sequence(root: str | Path, name: str, frames: torch.Tensor | np.ndarray,
                   masks: torch.Tensor | np.ndarray | None = None, resolution: str = RESOLUTION,
                   quality: int = 95) -> None:
    """frames (T, 3, H, W) float in [0, 1] or uint8 (T, H, W, 3); masks (T, H, W) ids (None:
    frames only). Masks of every frame are written (as DAVIS's train/val sets have). Files are
    written in place (not one atomic rename each): a set is complete when its writer says so."""
    from PIL import Image

    if isinstance(frames, torch.Tensor) and frames.is_floating_point():
        frames = (frames.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1)
    frames = np.asarray(frames.cpu() if isinstance(frames, torch.Tensor) else frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, 3, H, W) float or (T, H, W, 3) uint8, got {frames.shape}")
    folder = Path(root) / "JPEGImages" / resolution / name
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}.jpg", format="JPEG", quality=quality)
    if masks is not None:
        if len(masks) != len(frames):
            raise ValueError(f"{len(masks)} masks for {len(frames)} frames")
        for t, mask in enumerate(masks):
            write_mask(Path(root) / "Annotations" / resolution / name / f"{t:05d}.png", mask)


def write_image_set(root: str | Path, split: str, names: Sequence[str]) -> Path:
    from selfsup.io import atomic_path

    path = Path(root) / "ImageSets" / "2017" / f"{split}.txt"
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{n}\n" for n in names))
    return path


# -- clips for pretraining --------------------------------------------------------------------
class DavisClips(SampleDataset):
    """Clips of ``num_frames`` consecutive frames (every ``step``-th) of each DAVIS sequence,
    float (T, 3, H, W); ``clips_per_video`` evenly spread clips (``sampler="random"``: drawn
    anew at every read). Unlabelled; a clip's subject is its sequence."""

    def __init__(self, root: str | Path, num_frames: int = 8, fps: float | None = None, size=64,
                 sampler: str = "uniform", clips_per_video: int | None = 1, resolution: str = RESOLUTION,
                 split: str | None = None):
        from selfsup.datasets.video_io import as_size

        if sampler not in ("uniform", "random"):
            raise DataError(f"DAVIS clips take the uniform or random sampler, not '{sampler}'", root)
        self.root, self.resolution = Path(root), resolution
        self.names = sequence_names(root, resolution, split)
        self.files = [frame_files(root, n, resolution) for n in self.names]
        self.num_frames, self.size, self.sampler = int(num_frames), as_size(size), sampler
        self.step = max(1, int(round(FRAME_RATE / fps))) if fps else 1
        need = (self.num_frames - 1) * self.step + 1
        short = [n for n, f in zip(self.names, self.files) if len(f) < need]
        if short:
            raise DataError(f"sequences shorter than a clip ({need} frames): {', '.join(short[:5])}", root)
        counts = [clips_per_video or max(1, len(f) // need) for f in self.files]
        self.seq_of = np.repeat(np.arange(len(self.names)), counts)
        self.clip_of = np.concatenate([np.arange(c) for c in counts]).astype(np.int64)
        self.counts = counts
        super().__init__(subjects=self.seq_of, source=str(root),
                         info={"num_frames": self.num_frames, "fps": FRAME_RATE / self.step, "size": self.size,
                               "channels": 3})

    def __len__(self) -> int:
        return len(self.seq_of)

    def load(self, i: int) -> torch.Tensor:
        k, clip = int(self.seq_of[i]), int(self.clip_of[i])
        files = self.files[k]
        last_start = len(files) - ((self.num_frames - 1) * self.step + 1)
        if self.sampler == "random":
            first = int(torch.randint(0, last_start + 1, ()))
        else:
            count = self.counts[k]
            first = 0 if count == 1 else int(round(clip * last_start / (count - 1)))
        return read_frames(files[first: first + (self.num_frames - 1) * self.step + 1: self.step], self.size)


__all__ = ["DavisSequence", "DavisClips", "davis_palette", "is_davis_root", "sequence_names", "read_sequence",
           "read_davis", "read_mask", "write_mask", "write_sequence", "write_image_set", "frame_files"]
