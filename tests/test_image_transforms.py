"""Batched image augmentations: what each op does, per-sample randomness, and its speed."""

from __future__ import annotations

import time

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from selfsup.modalities import image_transforms as it
from selfsup.modalities.image import ImageModality, ImageViews


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.rand(16, 3, 12, 10)


def test_full_crop_without_flip_is_identity_and_flip_mirrors(batch):
    same = it.RandomResizedCrop((12, 10), scale=(1, 1), ratio=(10 / 12, 10 / 12), flip=0.0)
    assert torch.allclose(same(batch), batch, atol=1e-5)
    flipped = it.RandomResizedCrop((12, 10), scale=(1, 1), ratio=(10 / 12, 10 / 12), flip=1.0)
    assert torch.allclose(flipped(batch), batch.flip(-1), atol=1e-5)
    flips = it.RandomApply(it.Flip(), p=0.5)(batch)
    mirrored = (flips == batch.flip(-1)).flatten(1).all(dim=1)
    assert 0 < int(mirrored.sum()) < len(batch) and torch.equal(flips[~mirrored], batch[~mirrored])


def test_crops_differ_per_sample_and_have_the_asked_size(batch):
    crop = it.RandomResizedCrop(6, scale=(0.2, 0.5))
    one = batch[:1].expand(8, -1, -1, -1)
    out = crop(one)
    assert out.shape == (8, 3, 6, 6)
    assert len({round(float(v), 5) for v in out.mean(dim=(1, 2, 3))}) == 8    # eight different crops


def test_grey_matches_torchvision_and_random_grey_is_per_sample(batch):
    assert torch.allclose(it.grey(batch), TF.rgb_to_grayscale(batch), atol=1e-6)
    out = it.RandomApply(it.Grey(), p=0.5)(batch)
    greyed = (out[:, 0] == out[:, 1]).flatten(1).all(dim=1)
    assert 0 < int(greyed.sum()) < len(batch)
    assert torch.allclose(out[greyed], it.grey(batch[greyed]).expand(-1, 3, -1, -1))


def test_blur_matches_torchvision_for_a_fixed_sigma(batch):
    blur = it.GaussianBlur(5, sigma=(1.3, 1.3))
    expected = torch.stack([TF.gaussian_blur(img, [5, 5], [1.3, 1.3]) for img in batch])
    assert torch.allclose(blur(batch), expected, atol=1e-5)


def test_color_jitter_brightness_scales_each_sample_by_its_own_factor(batch):
    jitter = it.ColorJitter(brightness=0.5, contrast=0.0, saturation=0.0, hue=0.0)
    x = batch * 0.5                                                   # no clipping at 1.5x
    ratio = jitter(x) / x
    per_sample = ratio.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-4)
    assert float(per_sample[:, 0].std()) > 0.05 and ((per_sample[:, 0] >= 0.5) & (per_sample[:, 0] <= 1.5)).all()


def test_hue_rotation_keeps_grey_pixels_and_luma(batch):
    hue = it.ColorJitter(0.0, 0.0, 0.0, hue=0.5)
    grey_img = batch[:, :1].expand(-1, 3, -1, -1)
    assert torch.allclose(hue(grey_img), grey_img, atol=1e-5)
    mild = batch * 0.3 + 0.35                                         # stays inside [0, 1] after rotation
    assert torch.allclose(it.grey(hue(mild)), it.grey(mild), atol=1e-4)


def test_grey_images_skip_colour_only_ops():
    x = torch.rand(4, 1, 8, 8)
    out = it.batched_augmentation(8, 1)(x)
    assert out.shape == (4, 1, 8, 8) and 0 <= float(out.min()) and float(out.max()) <= 1


@pytest.mark.parametrize("backend", ["batched", "torchvision"])
def test_both_backends_give_valid_views(backend, batch):
    views = ImageViews(backend, crop_scale=(0.3, 1.0))
    a, b = it.MultiView([views, views])(batch)
    assert a.shape == b.shape == batch.shape
    assert 0 <= float(a.min()) and float(a.max()) <= 1 + 1e-5 and not torch.allclose(a, b)


def test_view_options_are_taken_from_objective_options():
    options = {"crop_scale": [0.5, 1.0], "augment": "torchvision", "temperature": 0.2}
    views = ImageModality.views(options, flip=0.0)
    assert options == {"temperature": 0.2}
    assert views.backend == "torchvision" and views.recipe == {"flip": 0.0, "crop_scale": [0.5, 1.0]}


def test_patch_grid_cuts_overlapping_patches():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    patches = it.patch_grid(x, size=4, stride=2)
    assert patches.shape == (2, 3, 3, 1, 4, 4)
    assert torch.equal(patches[1, 2, 1], x[1, :, 4:8, 2:6])


def test_batched_augmentation_is_faster_than_per_image_torchvision():
    x = torch.rand(128, 3, 32, 32)
    timings = {}
    for name, make in it.AUGMENTATION_BACKENDS.items():
        aug = make(32, 3)
        aug(x[:4])
        started = time.perf_counter()
        aug(x)
        timings[name] = time.perf_counter() - started
    assert timings["batched"] < timings["torchvision"], timings
