"""Image data: folders, IDX files, the built-in sets and the standard sets' real formats."""

from __future__ import annotations

import gzip
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.datasets import images as image_data
from selfsup.errors import DataError
from selfsup.modalities.image import ImageModality


# -- folders ----------------------------------------------------------------------------------
def write_folder(root, sizes=((12, 10),), mode="RGB", per_class=3, classes=("cat", "dog"), ext="png"):
    rng = np.random.default_rng(0)
    for c in classes:
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            shape = (h, w, 3) if mode == "RGB" else (h, w)
            path = root / c / ("sub" if i == 0 else "") / f"{i}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)
    return root


def test_folder_with_class_subfolders_gives_labels_and_fixed_size_tensors(tmp_path):
    root = write_folder(tmp_path / "data", mode="RGB", ext="png")
    (root / "dog" / "3.jpg").write_bytes((root / "dog" / "1.png").read_bytes())   # a png under a .jpg name is fine
    ds = ImageModality().load(root)
    assert ds.class_names == ["cat", "dog"]
    assert sorted(ds.labels.tolist()) == [0, 0, 0, 1, 1, 1, 1]
    x = ds[0]["x"]
    assert x.shape == (3, 12, 10) and x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1


def test_folder_conversion_to_grey_and_size(tmp_path):
    root = write_folder(tmp_path / "data", sizes=((12, 10), (20, 30)), mode="RGB")
    with pytest.raises(DataError, match="differ in size.*modality_options.size"):
        ImageModality().load(root)
    ds = ImageModality(size=8, channels=1).load(root)
    assert all(ds[i]["x"].shape == (1, 8, 8) for i in range(len(ds)))


def test_grey_folder_stays_grey_and_flat_folder_is_unlabelled(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.full((6, 6), 40 * i, dtype=np.uint8), mode="L").save(root / f"{i}.png")
    ds = ImageModality().load(root)
    assert ds.labels is None and not ds.has_labels
    assert ds[2]["x"].shape == (1, 6, 6) and torch.allclose(ds[2]["x"], torch.full((1, 6, 6), 80 / 255))


def test_bad_folders_raise_data_errors_naming_the_problem(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        ImageModality().load(tmp_path / "missing")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        ImageModality().load(tmp_path / "empty")
    root = write_folder(tmp_path / "corrupt")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        ImageModality().load(root)
    mixed = write_folder(tmp_path / "mixed")
    Image.new("RGB", (12, 10)).save(mixed / "loose.png")
    with pytest.raises(DataError, match="loose image"):
        ImageModality().load(mixed)


def test_truncated_image_fails_when_read_with_its_name(tmp_path):
    root = write_folder(tmp_path / "data", sizes=((40, 40),), ext="jpg")
    path = root / "cat" / "1.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])                       # header intact, pixels cut off
    ds = ImageModality().load(root)
    index = [str(f) for f in ds.files].index(str(path))
    with pytest.raises(DataError, match="1.jpg: not a readable image"):
        ds[index]


# -- IDX and the built-in sets ----------------------------------------------------------------
def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_read_idx_plain_and_gzipped(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    ints = np.array([1, -2, 70000], dtype=">i4")
    (tmp_path / "b").write_bytes(idx_bytes(ints, 0x0C))
    assert np.array_equal(image_data.read_idx(tmp_path / "a-idx3-ubyte"), images)
    assert np.array_equal(image_data.read_idx(tmp_path / "a-idx3-ubyte.gz"), images)
    assert image_data.read_idx(tmp_path / "b").tolist() == [1, -2, 70000]


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "magic").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="bad magic"):
        image_data.read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros((4, 4), np.uint8))[:-3])
    with pytest.raises(DataError, match="header .* implies"):
        image_data.read_idx(tmp_path / "short")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"x" * 100)[:20])
    with pytest.raises(DataError, match="truncated"):
        image_data.read_idx(tmp_path / "bad.gz")


def test_builtin_digits_and_fashion_mnist():
    digits = ImageModality().load("builtin:digits")
    assert len(digits) == 1797 and digits[0]["x"].shape == (1, 8, 8) and digits.num_classes == 10
    assert float(digits.images.float().max()) == 255.0
    fashion = ImageModality(size=14).load("builtin:fashion-mnist-test")
    assert len(fashion) == 10000 and fashion[0]["x"].shape == (1, 14, 14)
    assert np.bincount(fashion.labels).tolist() == [1000] * 10 and fashion.class_names[9] == "Ankle boot"
    with pytest.raises(DataError, match="unknown built-in"):
        ImageModality().load("builtin:mnist")


# -- CIFAR and STL-10 in their real formats, parsed by torchvision ---------------------------------
def write_cifar(root, coarse: bool = False, n: int = 4):
    rng = np.random.default_rng(1)
    folder = root / ("cifar-100-python" if coarse else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key = "fine_labels" if coarse else "labels"
    names = ["train", "test"] if coarse else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key: rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"fine_label_names": [f"f{i}" for i in range(100)]} if coarse else {"label_names": [f"c{i}" for i in range(10)]}
    (folder / ("meta" if coarse else "batches.meta")).write_bytes(pickle.dumps(meta))
    return folder


def write_stl10(root, n_train=3, n_unlabeled=5, n_test=2):
    rng = np.random.default_rng(2)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    for name, n in (("train", n_train), ("unlabeled", n_unlabeled), ("test", n_test)):
        rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8).tofile(folder / f"{name}_X.bin")
        if name != "unlabeled":
            np.arange(1, n + 1, dtype=np.uint8).tofile(folder / f"{name}_y.bin")   # 1-based on disk
    (folder / "class_names.txt").write_text("\n".join(f"s{i}" for i in range(10)))
    return folder


def test_cifar10_and_cifar100_through_torchvision(tmp_path):
    folder = write_cifar(tmp_path / "c10")
    ds = ImageModality(verify=False).load(f"cifar10:{tmp_path / 'c10'}")
    raw = pickle.loads((folder / "data_batch_1").read_bytes())
    assert len(ds) == 20 and ds.class_names[0] == "c0" and ds.labels[:4].tolist() == raw["labels"]
    # CIFAR stores planes R, G, B of 32 x 32: pixel (0, 0, 1) of image 0 is byte 1 of its row.
    assert ds[0]["x"].shape == (3, 32, 32) and ds[0]["x"][0, 0, 1] == pytest.approx(raw["data"][0, 1] / 255)
    assert len(ImageModality(verify=False).load(f"cifar10-test:{tmp_path / 'c10'}")) == 4
    write_cifar(tmp_path / "c100", coarse=True)
    c100 = ImageModality(verify=False, channels=1).load(f"cifar100:{tmp_path / 'c100'}")
    assert len(c100) == 4 and c100[0]["x"].shape == (1, 32, 32) and len(c100.class_names) == 100
    with pytest.raises(DataError, match="not found or corrupted"):
        ImageModality().load(f"cifar10:{tmp_path / 'c10'}")          # the official checksums do not match


def test_stl10_splits_including_unlabelled(tmp_path):
    write_stl10(tmp_path)
    m = ImageModality(verify=False, size=32)
    train = m.load(f"stl10:{tmp_path}")
    assert train.labels.tolist() == [0, 1, 2] and train[0]["x"].shape == (3, 32, 32)
    unlabelled = m.load(f"stl10-unlabeled:{tmp_path}")
    assert len(unlabelled) == 5 and not unlabelled.has_labels
    both = m.load(f"stl10-train+unlabeled:{tmp_path}")
    assert both.labels.tolist() == [0, 1, 2, -1, -1, -1, -1, -1]
    assert m.load(f"stl10-test:{tmp_path}").labels.tolist() == [0, 1]


def test_standard_set_download_from_a_file_url(tmp_path):
    src = tmp_path / "src"
    write_cifar(src)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    root = tmp_path / "root"
    ds = image_data.load_standard_set("cifar10", root, download=True, verify=False, url=archive.as_uri())
    assert len(ds) == 20 and (root / "cifar-10-python.tar.gz").exists()
    with pytest.raises(DataError, match="MD5"):                      # the official MD5 guards the archive
        image_data.download_standard_set("cifar10", tmp_path / "other", url=archive.as_uri())


def test_conform_keeps_aspect_by_centre_crop():
    img = torch.zeros(1, 1, 4, 8)
    img[..., 2:6] = 1.0                                             # a bright centre band, 4 px wide
    out = image_data.conform(img, channels=3, size=(4, 4))
    assert out.shape == (1, 3, 4, 4) and float(out.mean()) == pytest.approx(1.0)
