"""Generated videos with ground truth: real handwritten digits (scikit-learn) or Fashion-MNIST
items moving over textured, coloured backgrounds, written as real mp4 files with PyAV.

Each video shows ``objects`` items (the first one names the clip's class) tinted with a
random colour, thrown under gravity, with air drag and bounces that lose energy (so a
reversed clip looks wrong, as real footage does), while the camera pans slowly over the
background (up to ``pan`` px per frame at 64 px, in a random direction). The background is
one of four scene kinds, each with its own pattern and its own ambient sound on the audio
track (hiss, hum, rumble, rain-like clicks), so that sound says something about the picture.

    root/videos/<class>/<name>.mp4        H.264 + AAC mono 16 kHz; class subfolders = labels
    root/davis/JPEGImages/480p/<name>/    the same frames as JPEGs (DAVIS layout) ...
    root/davis/Annotations/480p/<name>/   ... with palette masks: 1 = first object, 2 = second
    root/davis/ImageSets/2017/val.txt
    root/metadata.json                    per video: class, scene, objects; manifest.json: the request

    root = generate_moving_objects(kind="digits", classes=4, videos_per_class=8)
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from selfsup.errors import ConfigError
from selfsup.io import write_json

KINDS = ("digits", "fashion")
SCENES = ("hiss", "hum", "rumble", "rain")
SAMPLE_RATE = 16000
GRAVITY, DRAG, RESTITUTION = 0.3, 0.98, 0.75    # per frame, for frames of 64 px
MOTIONS = ("throw", "glide")


def default_cache() -> Path:
    return Path(os.environ.get("SELFSUP_CACHE", Path.home() / ".cache" / "selfsup")) / "synthetic-video"


# -- the items ------------------------------------------------------------------------------
def load_items(kind: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images (N, h, w) float in [0, 1], labels (N,), class names) of the real item images."""
    if kind == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images / 16.0, d.target.astype(np.int64), [str(c) for c in d.target_names]
    if kind == "fashion":
        from selfsup.datasets.images import FASHION_MNIST_CLASSES, load_fashion_mnist

        test = load_fashion_mnist("test")
        return test.images[:, 0].numpy() / 255.0, test.labels, list(FASHION_MNIST_CLASSES)
    raise ConfigError(f"unknown item kind '{kind}'; choose from {', '.join(KINDS)}")


def item_sprite(image: np.ndarray, side: int, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A grey item image -> (RGB (side, side, 3) tinted by ``colour``, alpha (side, side))."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)[0, 0].numpy().clip(0, 1)
    alpha = np.clip(x * 2.0, 0, 1)
    rgb = colour[None, None, :] * (0.45 + 0.55 * x[..., None])     # the item's own strokes as shading
    return rgb, alpha


def random_colour(rng: np.random.Generator, saturation=(0.6, 1.0), value=(0.6, 1.0)) -> np.ndarray:
    """A random saturated RGB colour in [0, 1] (from hue, saturation, value)."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


# -- backgrounds and their sounds -------------------------------------------------------------
def background(scene: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) in [0, 1]: a smooth field of random colours overlaid with the scene's pattern."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    field = np.zeros((size, size, 3))
    weights = np.zeros((size, size, 1))
    for _ in range(4):                                   # a few broad blobs of colour
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.25, 0.6)
        w = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))[..., None]
        field += w * random_colour(rng, (0.3, 0.8), (0.3, 0.7))
        weights += w
    field /= weights
    angle, freq = rng.uniform(0, np.pi), rng.uniform(4, 9)
    if scene == "hiss":                                  # fine speckle
        pattern = rng.uniform(-1, 1, (size, size))
        pattern = F.avg_pool2d(torch.from_numpy(pattern)[None, None], 3, 1, 1)[0, 0].numpy() * 1.5
    elif scene == "hum":                                 # stripes
        pattern = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    elif scene == "rumble":                              # checkerboard
        cells = rng.integers(4, 8)
        pattern = np.where((np.floor(xx * cells) + np.floor(yy * cells)) % 2 == 0, 1.0, -1.0)
    elif scene == "rain":                                # scattered dots
        pattern = -0.3 * np.ones((size, size))
        for _ in range(int(size * size / 40)):
            y, x = rng.integers(0, size - 2, 2)
            pattern[y: y + 2, x: x + 2] = 1.0
    else:
        raise ConfigError(f"unknown scene '{scene}'; scenes: {', '.join(SCENES)}")
    return np.clip(field * (1 + 0.35 * pattern[..., None]), 0, 1)


def ambient_sound(scene: str, seconds: float, rng: np.random.Generator, rate: int = SAMPLE_RATE) -> np.ndarray:
    """(N,) float in [-1, 1]: the scene's ambient sound, with random level and parameters."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    noise = torch.from_numpy(rng.standard_normal(n).astype(np.float32))
    spectrum = torch.fft.rfft(noise)
    freqs = torch.fft.rfftfreq(n, 1 / rate)
    if scene == "hiss":                                  # noise above ~3 kHz
        cutoff = rng.uniform(2500, 4000)
        x = torch.fft.irfft(spectrum * (freqs > cutoff), n).numpy()
    elif scene == "hum":                                 # a buzzing harmonic tone
        f0 = rng.uniform(90, 180)
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 6))
        x = x + 0.05 * noise.numpy()
    elif scene == "rumble":                              # low noise, slowly swelling
        x = torch.fft.irfft(spectrum / (1 + freqs / rng.uniform(60, 150)) ** 2, n).numpy()
        x = x * (1 + 0.6 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t))
    elif scene == "rain":                                # random clicks: short decaying bursts
        x = np.zeros(n)
        starts = rng.integers(0, n, int(seconds * rng.uniform(25, 45)))
        burst = np.exp(-np.arange(int(0.004 * rate)) / (0.0008 * rate)) * rng.standard_normal(int(0.004 * rate))
        for s in starts:
            m = min(len(burst), n - s)
            x[s: s + m] += burst[:m] * rng.uniform(0.3, 1.0)
    else:
        raise ConfigError(f"unknown scene '{scene}'; scenes: {', '.join(SCENES)}")
    x = np.asarray(x, dtype=np.float64)
    return (x / (np.abs(x).max() + 1e-9) * rng.uniform(0.3, 0.7)).astype(np.float32)


# -- motion and rendering ---------------------------------------------------------------------
def trajectory(num_frames: int, size: int, side: int, rng: np.random.Generator, motion: str = "throw") -> np.ndarray:
    """(T, 2) top-left (y, x) positions of an item in a ``size`` frame.

    ``throw``: thrown under gravity, with air drag and bounces that lose energy (irreversible);
    ``glide``: a straight line at constant speed in a random direction, bouncing off the edges
    without loss (the easy case for frame order: where a frame falls on the line says when)."""
    if motion not in MOTIONS:
        raise ConfigError(f"unknown motion '{motion}'; choose from {', '.join(MOTIONS)}")
    scale = size / 64
    low, high = 0.0, float(size - side)
    if motion == "throw":
        pos = np.array([rng.uniform(low, high * 0.5), rng.uniform(low, high)])
        vel = np.array([rng.uniform(-3, 0.5), rng.choice([-1, 1]) * rng.uniform(1.5, 3)]) * scale
        gravity, drag, restitution = GRAVITY * scale, DRAG, RESTITUTION
    else:
        angle = rng.uniform(0, 2 * np.pi)
        pos = rng.uniform(low, high, 2)
        vel = rng.uniform(2, 3.5) * scale * np.array([np.sin(angle), np.cos(angle)])
        gravity, drag, restitution = 0.0, 1.0, 1.0
    out = np.zeros((num_frames, 2))
    for t in range(num_frames):
        out[t] = pos
        vel = vel * drag + np.array([gravity, 0.0])
        pos = pos + vel
        for axis in (0, 1):
            if pos[axis] < low or pos[axis] > high:
                pos[axis] = np.clip(2 * (low if pos[axis] < low else high) - pos[axis], low, high)
                vel[axis] = -vel[axis] * restitution
    return out


def camera_path(num_frames: int, size: int, pan: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """(T, 2) top-left (y, x) of the view in a background canvas, panning at a constant random
    velocity of up to ``pan`` px per frame (at 64 px), and the canvas side the pan needs."""
    speed = rng.uniform(0.4, 1.0) * pan * size / 64
    angle = rng.uniform(0, 2 * np.pi)
    step = speed * np.array([np.sin(angle), np.cos(angle)])
    travel = step * (num_frames - 1)
    extent = int(np.ceil(np.abs(travel).max())) + 1
    start = (extent - 1 - travel) / 2                     # the path centred in the canvas
    return start + np.outer(np.arange(num_frames), step), size + extent


def render(canvas: np.ndarray, view: np.ndarray, size: int, sprites: Sequence[tuple[np.ndarray, np.ndarray]],
           paths: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The view of ``canvas`` at each (y, x) of ``view`` with the sprites composited along their
    paths -> (frames uint8 (T, size, size, 3), masks uint8 (T, size, size)). Later items pass
    in front of earlier ones; item k has mask id k + 1."""
    corners = np.round(view).astype(int)
    frames = np.stack([canvas[y: y + size, x: x + size] for y, x in corners])
    masks = np.zeros((len(view), size, size), dtype=np.uint8)
    for k, ((rgb, alpha), path) in enumerate(zip(sprites, paths)):
        side = alpha.shape[0]
        for t, (y, x) in enumerate(np.round(path).astype(int)):
            region = (slice(y, y + side), slice(x, x + side))
            a = alpha[..., None]
            frames[t][region] = frames[t][region] * (1 - a) + rgb * a
            masks[t][region][alpha > 0.5] = k + 1
    return (frames * 255).round().astype(np.uint8), masks


# -- the generator ----------------------------------------------------------------------------
def generate_moving_objects(root: str | Path | None = None, kind: str = "digits", classes: int | Sequence[int] = 4,
                            videos_per_class: int = 8, num_frames: int = 24, fps: float = 12, size: int = 64,
                            objects: int = 1, motion: str = "throw", pan: float = 1.0, audio: bool = True,
                            seed: int = 0, davis: bool = True) -> Path:
    """Generate the videos once into ``root`` and return it (``None``: a cache folder keyed by
    the request, ``$SELFSUP_CACHE/synthetic-video/<key>``; an existing complete set is reused).

    Items are drawn from different real images for every video (``seed`` fixes which), so a
    class is the same digit or garment in many hands or styles, not one picture.
    """
    from selfsup.datasets.davis import write_image_set, write_sequence
    from selfsup.datasets.video_io import write_video

    if objects not in (1, 2):
        raise ConfigError(f"objects must be 1 or 2, got {objects}")
    if size % 2 or size < 32:
        raise ConfigError(f"size must be even and at least 32, got {size}")
    images, labels, names = load_items(kind)
    chosen = list(range(classes)) if isinstance(classes, int) else [int(c) for c in classes]
    if not chosen or max(chosen) >= len(names) or min(chosen) < 0:
        raise ConfigError(f"classes must be ids in 0..{len(names) - 1}, got {chosen}")
    request = {"kind": kind, "classes": chosen, "videos_per_class": int(videos_per_class),
               "num_frames": int(num_frames), "fps": float(fps), "size": int(size), "objects": int(objects),
               "motion": motion, "pan": float(pan),
               "audio": bool(audio), "seed": int(seed), "davis": bool(davis), "version": 4}
    if root is None:
        root = default_cache() / hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(root)
    if (root / "manifest.json").is_file() and json.loads((root / "manifest.json").read_text()) == request:
        return root
    rng = np.random.default_rng(seed)
    side = int(round(size * (0.25 if kind == "digits" else 0.3)))
    metadata, sequences = [], []
    for c in chosen:
        pool = np.flatnonzero(labels == c)
        for v in range(videos_per_class):
            item_ids = [int(rng.choice(pool))] + [int(rng.integers(len(images))) for _ in range(objects - 1)]
            scene = SCENES[int(rng.integers(len(SCENES)))]
            view, canvas_side = camera_path(num_frames, size, pan, rng)
            canvas = background(scene, canvas_side, rng)
            sprites = [item_sprite(images[i], side, random_colour(rng)) for i in item_ids]
            paths = [trajectory(num_frames, size, side, rng, motion) for _ in item_ids]
            frames, masks = render(canvas, view, size, sprites, paths)
            name = f"{_safe(names[c])}_{v:03d}"
            sound = ambient_sound(scene, num_frames / fps, rng) if audio else None
            write_video(root / "videos" / _safe(names[c]) / f"{name}.mp4", frames, fps, sound, SAMPLE_RATE)
            if davis:
                write_sequence(root / "davis", name, frames, masks)
            sequences.append(name)
            metadata.append({"name": name, "class": names[c], "scene": scene,
                             "items": [{"image": i, "label": names[int(labels[i])]} for i in item_ids]})
    if davis:
        write_image_set(root / "davis", "val", sequences)
    write_json(root / "metadata.json", metadata)
    write_json(root / "manifest.json", request)
    return root


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-").lower() or "x"


__all__ = ["KINDS", "SCENES", "MOTIONS", "generate_moving_objects", "load_items", "background", "ambient_sound", "trajectory",
           "render", "camera_path", "item_sprite", "random_colour", "default_cache"]
