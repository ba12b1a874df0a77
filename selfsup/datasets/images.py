"""Image datasets: folders with class subfolders, IDX files, the built-in and standard sets.

Every reader yields images as float tensors (C, H, W) in [0, 1], converted to a fixed
number of ``channels`` (1 grey or 3 RGB) and a fixed ``size`` (resize the shorter side,
then centre-crop), so that a batch stacks. In-memory sets keep uint8 pixels (4x smaller).

* ``ImageFolderDataset``: ``root/<class>/**/*.png|jpg`` (class = first-level subfolder), or
  a flat folder of images (unlabelled). Files are decoded when a sample is read.
* ``read_idx``: the IDX format of MNIST / Fashion-MNIST (optionally gzipped).
* ``load_digits_images``, ``load_fashion_mnist``: the offline sets (../shared/DATA.md).
* ``load_standard_set``: CIFAR-10/100 and STL-10 (with its unlabelled split), parsed by
  torchvision's own code; ``download_standard_set`` fetches the official archives.
"""

from __future__ import annotations

import gzip
import math
import pickle
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from selfsup.datasets.base import SampleDataset
from selfsup.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


# -- pixel conversion -------------------------------------------------------------------------
def conform(images: torch.Tensor, channels: int | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(N, C, H, W) float images -> ``channels`` channels and ``size`` (H, W).

    Grey -> RGB repeats the channel; RGB -> grey takes the luma; an alpha channel is dropped.
    A new size is reached by an antialiased resize of the shorter side and a centre crop,
    so the aspect ratio is kept.
    """
    c = images.shape[1]
    if c in (2, 4):                       # grey + alpha, RGB + alpha
        images, c = images[:, : c - 1], c - 1
    if channels is not None and channels != c:
        if channels == 3 and c == 1:
            images = images.expand(-1, 3, -1, -1)
        elif channels == 1 and c == 3:
            from selfsup.modalities.image_transforms import grey

            images = grey(images)
        else:
            raise ValueError(f"cannot convert {c}-channel images to {channels} channels")
    if size is not None and tuple(images.shape[-2:]) != tuple(size):
        h, w = images.shape[-2:]
        scale = max(size[0] / h, size[1] / w)
        rh, rw = max(size[0], round(h * scale)), max(size[1], round(w * scale))
        images = F.interpolate(images, size=(rh, rw), mode="bilinear", antialias=True, align_corners=False)
        top, left = (rh - size[0]) // 2, (rw - size[1]) // 2
        images = images[..., top: top + size[0], left: left + size[1]]
    return images.clamp(0, 1)


def as_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise ValueError(f"an image size is one number or (height, width), got {size}")
    return size


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return (images * 255).round().clamp(0, 255).to(torch.uint8)


# -- in-memory sets ---------------------------------------------------------------------------
class ImageArrayDataset(SampleDataset):
    """Images held in memory as uint8 (N, C, H, W); samples are float (C, H, W) in [0, 1]."""

    def __init__(self, images: torch.Tensor | np.ndarray, labels=None, class_names=None, source: str = "<memory>",
                 channels: int | None = None, size: int | Sequence[int] | None = None, chunk: int = 4096):
        images = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
        if images.dim() == 3:                                    # (N, H, W) grey
            images = images[:, None]
        if images.dim() != 4 or len(images) == 0:
            raise DataError(f"expected images (N, C, H, W) or (N, H, W), got shape {tuple(images.shape)}", source)
        if images.dtype != torch.uint8:
            images = images.float()
            if not torch.isfinite(images).all():
                raise DataError("images contain NaN or inf values", source)
            if images.min() < 0 or images.max() > 1:
                raise DataError("float images must have values in [0, 1] (or pass uint8 pixels)", source)
        size = as_size(size)
        if images.dtype != torch.uint8 or (channels not in (None, images.shape[1])) or \
                (size is not None and tuple(images.shape[-2:]) != size):
            # Convert in chunks: float copies of a whole standard set would not fit in memory.
            images = torch.cat([to_uint8(conform(_as_float(part), channels, size)) for part in images.split(chunk)])
        self.images = images.contiguous()
        super().__init__(labels=labels, class_names=class_names, source=source,
                         info={"channels": int(images.shape[1]), "size": tuple(images.shape[-2:])})

    def __len__(self) -> int:
        return len(self.images)

    def load(self, i: int) -> torch.Tensor:
        return self.images[i].float().div_(255)

    def subset(self, indices) -> "ImageArrayDataset":
        idx = np.asarray(indices, dtype=np.int64)
        out = ImageArrayDataset.__new__(ImageArrayDataset)
        out.images = self.images[torch.as_tensor(idx)]
        SampleDataset.__init__(out, labels=None if self.labels is None else self.labels[idx],
                               class_names=self.class_names, info=self.info, source=self.source)
        return out


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255 if images.dtype == torch.uint8 else images.float()


# -- folders ----------------------------------------------------------------------------------
def read_image(path: str | Path, channels: int | None = None) -> torch.Tensor:
    """One image file -> uint8 (C, H, W); ``channels`` 1 or 3 converts, None keeps grey as grey."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            mode = "L" if (channels == 1 or (channels is None and img.mode in GREY_MODES)) else "RGB"
            arr = np.asarray(img.convert(mode))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"not a readable image ({exc.__class__.__name__}: {exc})", path) from None
    tensor = torch.from_numpy(arr.copy())
    return tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _header(path: Path) -> tuple[tuple[int, int], bool]:
    """((H, W), is_grey) from the file header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return (img.height, img.width), img.mode in GREY_MODES
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"not a readable image ({exc.__class__.__name__})", path) from None


class ImageFolderDataset(SampleDataset):
    """``root/<class name>/**/<image>``: the class is the first-level subfolder.

    A folder with no subfolders holds unlabelled images. Headers are read up front (so a
    file that is not an image is reported at once); pixels are decoded when a sample is read.
    ``channels`` None: 1 if every image is grey, else 3. ``size`` None: the images' common
    size (a DataError names two files of different sizes if there is none).
    """

    def __init__(self, root: str | Path, channels: int | None = None, size: int | Sequence[int] | None = None):
        root = Path(root)
        if not root.is_dir():
            raise DataError("no such folder" if not root.exists() else "not a folder", root)
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        files, labels, names = [], [], []
        for name in classes:
            found = _image_files(root / name)
            if found:
                labels += [len(names)] * len(found)
                names.append(name)
                files += found
        loose = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if loose and files:
            raise DataError(f"holds both class subfolders and {len(loose)} loose image(s) (e.g. {loose[0].name}); "
                            "put every image in a class subfolder, or use a flat folder for unlabelled images", root)
        if not files:
            files = loose
        if not files:
            raise DataError(f"no images found (looked for {', '.join(IMAGE_EXTENSIONS)} in class subfolders "
                            "or in the folder itself)", root)
        self.files = files
        headers = [_header(p) for p in files]
        self.channels = channels or (1 if all(g for _, g in headers) else 3)
        sizes = {s for s, _ in headers}
        if size is None and len(sizes) > 1:
            a = next(p for p, (s, _) in zip(files, headers) if s == headers[0][0])
            b = next(p for p, (s, _) in zip(files, headers) if s != headers[0][0])
            raise DataError(f"images differ in size ({a.name}: {headers[files.index(a)][0]}, {b.name}: "
                            f"{headers[files.index(b)][0]}); choose one with --set modality_options.size=N", root)
        self.size = as_size(size) or headers[0][0]
        super().__init__(labels=labels if names else None, class_names=names or None, source=str(root),
                         info={"channels": self.channels, "size": self.size})

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> torch.Tensor:
        img = read_image(self.files[i], self.channels).float().div_(255)
        return conform(img[None], self.channels, self.size)[0]


# -- IDX (MNIST, Fashion-MNIST) ---------------------------------------------------------------
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally .gz): 2 zero bytes, a type code, the number of dimensions, the
    sizes as big-endian uint32, then the values, big-endian."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file", path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"unreadable or truncated gzip file ({exc})", path) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError("not an IDX file (bad magic number)", path)
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError("IDX header is truncated", path)
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"IDX data has {len(raw)} bytes, the header {shape} implies {expected}", path)
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_fashion_mnist(split: str = "train", folder: str | Path = FASHION_MNIST_DIR, **conversion) -> ImageArrayDataset:
    """Fashion-MNIST from its original IDX files (Debian's dataset-fashion-mnist ships them)."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise DataError(f"unknown Fashion-MNIST split '{split}'; choose train or test")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("Fashion-MNIST not found; install Debian's dataset-fashion-mnist (scripts/setup.sh does)",
                        folder)
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    if images.ndim != 3 or labels.shape != (len(images),):
        raise DataError(f"images {images.shape} and labels {labels.shape} do not match", folder)
    return ImageArrayDataset(torch.from_numpy(images.copy()), labels.astype(np.int64), FASHION_MNIST_CLASSES,
                             source=f"builtin:fashion-mnist-{split}", **conversion)


def load_digits_images(**conversion) -> ImageArrayDataset:
    """scikit-learn's 1,797 handwritten digits, 8x8, 17 grey levels (0..16) scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.images / 16.0).float()
    return ImageArrayDataset(images, d.target, [str(c) for c in d.target_names], source="builtin:digits",
                             **conversion)


# -- the standard sets through torchvision ----------------------------------------------------
STANDARD_SETS = {
    "cifar10": ("CIFAR10", {"train": {"train": True}, "test": {"train": False}}),
    "cifar100": ("CIFAR100", {"train": {"train": True}, "test": {"train": False}}),
    "stl10": ("STL10", {s: {"split": s} for s in ("train", "test", "unlabeled", "train+unlabeled")}),
}


def _torchvision_class(name: str, verify: bool):
    """torchvision's dataset class; with ``verify=False`` a subclass that checks only that its
    files exist, not their checksums (copies re-packed by hand, the tests' small files)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, STANDARD_SETS[name][0])
    if verify:
        return cls
    attrs = {"train_list": [[f, None] for f, _ in cls.train_list], "test_list": [[f, None] for f, _ in cls.test_list]}
    if hasattr(cls, "meta"):
        attrs["meta"] = {**cls.meta, "md5": None}
    return type(cls.__name__, (cls,), attrs)


def download_standard_set(name: str, root: str | Path, url: str | None = None, verify: bool = True) -> Path:
    """Fetch and unpack the official archive of ``name`` into ``root`` unless its folder is there.

    The project's downloader does the transfer (atomic, resumable-safe); the archive is checked
    against torchvision's published MD5 (``verify``); ``url`` replaces the official address.
    """
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import check_md5

    from selfsup.datasets.download import download, extract

    cls = getattr(tvd, STANDARD_SETS[name][0])
    root = Path(root)
    if (root / cls.base_folder).is_dir():
        return root / cls.base_folder
    archive = download(url or cls.url, root / cls.filename)
    if verify and not check_md5(str(archive), cls.tgz_md5):
        raise DataError(f"MD5 of the downloaded archive differs from the published {cls.tgz_md5}; "
                        "delete it and download again", archive)
    extract(archive, root)
    if not (root / cls.base_folder).is_dir():
        raise DataError(f"the archive has no {cls.base_folder}/ folder", archive)
    return root / cls.base_folder


def load_standard_set(name: str, root: str | Path, split: str = "train", download: bool = False,
                      verify: bool = True, url: str | None = None, **conversion) -> ImageArrayDataset:
    """CIFAR-10, CIFAR-100 or STL-10 (splits train, test, unlabeled, train+unlabeled) from
    ``root`` as torchvision lays them out, parsed by torchvision; ``download=True`` fetches
    the official archive into ``root`` first (``url``: another address, e.g. a mirror)."""
    if name not in STANDARD_SETS:
        raise DataError(f"unknown standard set '{name}'; choose from {', '.join(STANDARD_SETS)}")
    splits = STANDARD_SETS[name][1]
    if split not in splits:
        raise DataError(f"{name} has no split '{split}'; choose from {', '.join(splits)}")
    if download:
        download_standard_set(name, root, url, verify)
    cls = _torchvision_class(name, verify)
    try:
        ds = cls(str(root), download=False, **splits[split])
    except RuntimeError as exc:
        raise DataError(f"{name}: {exc}".replace("download=True", "modality_options.download=true"), root) from None
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise DataError(f"{name} files are unreadable or malformed ({exc.__class__.__name__}: {exc})", root) from None
    data = np.asarray(ds.data)
    images = torch.from_numpy(data if name == "stl10" else data.transpose(0, 3, 1, 2).copy())  # CIFAR is NHWC
    labels = np.asarray(ds.labels if name == "stl10" else ds.targets, dtype=np.int64)
    classes = getattr(ds, "classes", None)   # STL-10 without class_names.txt has none
    return ImageArrayDataset(images, labels, classes, source=f"{name}-{split}:{root}", **conversion)


__all__ = ["ImageArrayDataset", "ImageFolderDataset", "read_image", "read_idx", "load_fashion_mnist",
           "load_digits_images", "load_standard_set", "download_standard_set", "conform", "as_size", "STANDARD_SETS"]
