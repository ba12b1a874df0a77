"""Images (C, H, W) in [0, 1], batched as (B, C, H, W).

Data: a folder with class subfolders (png/jpg ..., grey or colour), ``builtin:digits``
(scikit-learn's 8x8 digits, for fast tests), ``builtin:fashion-mnist[-train|-test]`` (the
Debian IDX files) and the standard sets through torchvision: ``cifar10[-test]:ROOT``,
``cifar100[-test]:ROOT``, ``stl10[-test|-unlabeled|-train+unlabeled]:ROOT`` (with
``modality_options.download=true`` to fetch them into ROOT).

Options: ``size`` (N or [H, W]; default the data's own), ``channels`` (1 or 3; default the
data's own), ``normalize`` (per-channel mean/std of the training data, stored in the
encoder), ``download`` and ``verify`` (the standard sets' archive and file checksums). The
size and channels that the encoder was trained on are recorded in its run, so
probing it on other images converts them the same way.

The objectives live in their own modules and are generic; this file only says how images
make their views (augmentations, patch grids) and lists them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from selfsup.datasets import images as image_data
from selfsup.datasets.base import SampleDataset, spread_samples
from selfsup.encoders import image as image_encoders
from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError, DataError
from selfsup.modalities import image_transforms as it
from selfsup.modalities.base import Entry, Modality, Transformation
from selfsup.objectives.contrastive import SimCLR
from selfsup.objectives.cpc_grid import GridCPC
from selfsup.objectives.deepcluster import DeepCluster
from selfsup.objectives.dim import DIM
from selfsup.objectives.exemplar import Exemplar
from selfsup.objectives.iic import IIC
from selfsup.objectives.moco import MoCo
from selfsup.objectives.supcon import SupCon

BUILTIN = {
    "digits": "scikit-learn digits: 1,797 grey 8x8 images, 10 classes (fast tests)",
    "fashion-mnist": "Fashion-MNIST training set: 60,000 grey 28x28 images, 10 classes (also -train, -test)",
}
STANDARD = re.compile(r"^(cifar10|cifar100|stl10)(?:-(train\+unlabeled|train|test|unlabeled))?:(.+)$")
NORMALIZE_SAMPLES = 2000


class ImageViews(Transformation):
    """The view augmentation of a batch, built for the batch's channels and size on first use.

    ``backend``: "batched" (tensor ops on the batch's device) or "torchvision"
    (transforms.v2, image by image); the other keywords are the recipe's
    (see ``image_transforms.batched_augmentation``).
    """

    name = "views"

    def __init__(self, backend: str = "batched", **recipe: Any):
        super().__init__()
        if backend not in it.AUGMENTATION_BACKENDS:
            raise ConfigError(f"unknown augmentation backend '{backend}'; "
                              f"choose from {', '.join(it.AUGMENTATION_BACKENDS)}")
        self.backend, self.recipe = backend, recipe
        self._built: dict[tuple[int, int, int], torch.nn.Module] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape[1:])
        if key not in self._built:
            self._built[key] = it.AUGMENTATION_BACKENDS[self.backend](tuple(x.shape[-2:]), x.shape[1], **self.recipe)
        return self._built[key](x)


class ImageModality(Modality):
    name = "image"
    description = ("images (B, C, H, W) in [0, 1]: a folder with class subfolders (png/jpg), builtin:digits, "
                   "builtin:fashion-mnist[-train|-test], cifar10|cifar100|stl10[-SPLIT]:ROOT")
    default_encoder = "small-cnn"
    default_objective = "simclr"

    def __init__(self, size: int | list[int] | None = None, channels: int | None = None, normalize: bool = True,
                 download: bool = False, verify: bool = True):
        super().__init__(size=size, channels=channels, normalize=normalize, download=download, verify=verify)
        if channels not in (None, 1, 3):
            raise ConfigError(f"image channels must be 1 (grey) or 3 (RGB), got {channels}")
        try:
            self.size = image_data.as_size(size)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad image size {size!r}: {exc}") from None
        self.channels, self.normalize, self.download, self.verify = channels, normalize, download, verify

    # -- data ------------------------------------------------------------------------------
    def load(self, path: str | Path) -> SampleDataset:
        path = str(path)
        conversion = {"channels": self.channels, "size": self.size}
        if path.startswith("builtin:"):
            name = path.split(":", 1)[1]
            if name == "digits":
                return image_data.load_digits_images(**conversion)
            if name in ("fashion-mnist", "fashion-mnist-train", "fashion-mnist-test"):
                return image_data.load_fashion_mnist("test" if name.endswith("-test") else "train", **conversion)
            raise DataError(f"unknown built-in image dataset '{name}'; built-in: {', '.join(BUILTIN)} "
                            "(fashion-mnist-train, fashion-mnist-test)")
        standard = STANDARD.match(path)
        if standard:
            name, split, root = standard.groups()
            return image_data.load_standard_set(name, root, split or "train", download=self.download,
                                                verify=self.verify, **conversion)
        return image_data.ImageFolderDataset(path, **conversion)

    def encoder_kwargs(self, dataset: SampleDataset) -> dict[str, Any]:
        """in_channels and the normalisation statistics of (up to 2000 samples of) the data.

        Also fixes ``size`` and ``channels`` in this modality's options to the data's, so the
        run records them and a probe on other images converts those images to match.
        """
        x = torch.stack(spread_samples(dataset, NORMALIZE_SAMPLES))                  # (N, C, H, W)
        channels = int(x.shape[1])
        self.options.update(channels=channels, size=list(x.shape[-2:]))
        self.channels, self.size = channels, tuple(x.shape[-2:])
        return {"in_channels": channels, **(image_encoders.normalization_stats(x) if self.normalize else {})}

    def check_input(self, dataset: SampleDataset, encoder: Encoder) -> None:
        x = dataset[0]["x"]
        if x.dim() != 3:
            raise DataError(f"image samples must be (C, H, W), got shape {tuple(x.shape)}", dataset.source)
        expected = getattr(encoder, "in_channels", None)
        if expected is not None and x.shape[0] != expected:
            raise DataError(f"images have {x.shape[0]} channel(s) but the encoder takes {expected}; "
                            f"set modality_options.channels={expected}", dataset.source)

    # -- views -----------------------------------------------------------------------------
    @staticmethod
    def views(options: dict[str, Any], **defaults: Any) -> ImageViews:
        """The view augmentation, taking (and removing) its keywords from objective ``options``:
        augment (backend), crop_scale, flip, jitter, hue, jitter_p, grey_p, blur_p, degrees."""
        recipe = {**defaults, **{k: options.pop(k) for k in VIEW_OPTIONS if k in options}}
        return ImageViews(recipe.pop("augment", "batched"), **recipe)

    @staticmethod
    def patch_maker(options: dict[str, Any], size: tuple[int, int]):
        """make_patches(batch) -> (B, Gh, Gw, C, P, P); ``patch_size`` defaults to half the
        image side (at least 4 px) and ``patch_stride`` to half the patch: a 3 x 3 grid of
        overlapping patches, within a CPU's means (CPC v2 used 7 x 7 on a GPU)."""
        patch = int(options.pop("patch_size", max(4, min(size) // 2)))
        stride = int(options.pop("patch_stride", max(1, patch // 2)))
        if patch > min(size):
            raise ConfigError(f"patch_size {patch} is larger than the {size} images")
        return lambda batch: it.patch_grid(batch["x"], patch, stride)


VIEW_OPTIONS = ("augment", "crop_scale", "flip", "jitter", "hue", "jitter_p", "grey_p", "blur_p", "degrees")
# Exemplar's surrogate classes come from heavy augmentation: large crops, rotation, strong colour.
EXEMPLAR_VIEWS = {"crop_scale": (0.3, 1.0), "degrees": 20.0, "jitter": 0.5, "jitter_p": 1.0}
# DeepCluster trains on crops and flips only.
DEEPCLUSTER_VIEWS = {"crop_scale": (0.4, 1.0), "jitter_p": 0.0, "grey_p": 0.0, "blur_p": 0.0}


def _build(cls, *args, **options):
    """``cls(*args, **options)``, with a ConfigError that lists the options ``cls`` takes
    when one is unknown (instead of a TypeError traceback)."""
    import inspect

    accepted = [n for n in list(inspect.signature(cls.__init__).parameters)[1 + len(args):] if n != "kwargs"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"unknown objective option(s) {unknown} for {cls.__name__}; it takes "
                          f"{', '.join(accepted)} and the view options {', '.join(VIEW_OPTIONS)}")
    return cls(*args, **options)


def _pair(views):
    return lambda batch: (views(batch["x"]), views(batch["x"]))


def _image_size(dataset: SampleDataset | None, modality: ImageModality) -> tuple[int, int]:
    if dataset is not None:
        return tuple(dataset[0]["x"].shape[-2:])
    if modality.size is None:
        raise ConfigError("this objective needs the image size: pass the dataset or modality_options.size")
    return modality.size


def _num_classes(dataset: SampleDataset | None, default: int) -> int:
    return dataset.num_classes if dataset is not None and dataset.has_labels else default


def _simclr(encoder, modality, dataset, **kw):
    return _build(SimCLR, encoder, _pair(modality.views(kw)), **kw)


def _moco(encoder, modality, dataset, **kw):
    views = modality.views(kw)
    if "queue_size" not in kw and dataset is not None:       # a queue longer than the data repeats its samples
        kw["queue_size"] = max(64, min(4096, len(dataset) // 2))
    return _build(MoCo, encoder, _pair(views), **kw)


def _supcon(encoder, modality, dataset, **kw):
    if dataset is not None and not dataset.has_labels:
        raise ConfigError("supcon needs labelled data (class subfolders); use simclr for unlabelled images")
    return _build(SupCon, encoder, _pair(modality.views(kw)), **kw)


def _exemplar(encoder, modality, dataset, **kw):
    if dataset is None:
        raise ConfigError("exemplar needs the training set: each of its samples is a surrogate class")
    views = modality.views(kw, **EXEMPLAR_VIEWS)
    return _build(Exemplar, encoder, views, kw.pop("num_exemplars", len(dataset)), **kw)


def _deepcluster(encoder, modality, dataset, **kw):
    if dataset is None:
        raise ConfigError("deepcluster needs the training set (it clusters all of it every epoch)")
    if kw.pop("sobel", False) and not getattr(getattr(encoder, "input", None), "sobel", False):
        raise ConfigError("DeepCluster's Sobel input belongs to the encoder (so that probes see it too): "
                          "pass --set encoder_options.sobel=true")
    views = modality.views(kw, **DEEPCLUSTER_VIEWS)
    kw.setdefault("num_clusters", min(10 * _num_classes(dataset, 10), max(2, len(dataset) // 10)))
    return _build(DeepCluster, encoder, len(dataset), augment=views, **kw)


def _iic(encoder, modality, dataset, **kw):
    kw.setdefault("num_clusters", _num_classes(dataset, 10))
    return _build(IIC, encoder, _pair(modality.views(kw)), **kw)


def _dim(encoder, modality, dataset, **kw):
    return _build(DIM, encoder, **kw)


def _cpc(encoder, modality, dataset, **kw):
    return _build(GridCPC, encoder, modality.patch_maker(kw, _image_size(dataset, modality)), **kw)


ImageModality.encoders = {
    "small-cnn": Entry(image_encoders.SmallCNN,
                       "4 conv layers (32-64-128-128) -> 128-d; trains in minutes on a CPU, for small images"),
    "alexnet": Entry(image_encoders.AlexNetSmall,
                     "AlexNet's 5 conv layers (+BN), small-image stem -> 256-d; the seed papers' net, slow on a CPU"),
    "resnet18": Entry(image_encoders.resnet18,
                      "torchvision ResNet-18 (small_stem for <= 96 px) -> 512-d; for a GPU (~22 img/s on 2 CPU cores)"),
    "resnet50": Entry(image_encoders.resnet50, "torchvision ResNet-50 (small_stem for <= 96 px) -> 2048-d; GPU only"),
}
ImageModality.objectives = {
    "simclr": Entry(_simclr, "NT-Xent between two augmented views (crop, flip, colour, grey, blur)"),
    "moco": Entry(_moco, "MoCo v2: momentum key encoder and a queue of negatives"),
    "supcon": Entry(_supcon, "supervised contrastive: views of the same class are positives (needs labels)"),
    "exemplar": Entry(_exemplar, "Exemplar-CNN: each image is a surrogate class of its heavy augmentations"),
    "deepcluster": Entry(_deepcluster, "k-means pseudo-labels each epoch, balanced; Sobel: encoder_options.sobel=true"),
    "iic": Entry(_iic, "invariant information clustering: MI between views' clusters (+ overclustering head)"),
    "dim": Entry(_dim, "Deep InfoMax: local-global InfoNCE between the pooled vector and map positions"),
    "cpc": Entry(_cpc, "CPC v2: predict patch latents of rows below in a grid of patches (InfoNCE)"),
}

# The predictive pretext tasks, multi-task lists and S4L (issue 5) live in their own module.
from selfsup.modalities.image_pretext import PRETEXT_OBJECTIVES  # noqa: E402

ImageModality.objectives.update(PRETEXT_OBJECTIVES)
