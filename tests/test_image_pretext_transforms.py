"""The batched image operations behind the pretext tasks, and the pieces of their objectives
that can be checked exactly: rotations, tile grids, colour projection and dropping, masks,
jigsaw permutation sets, colour quantisation and rebalancing, the S4L label budget."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from selfsup.errors import ConfigError
from selfsup.modalities.color import rgb_to_lab
from selfsup.modalities.image_pretext import (GREEN_MAGENTA, CountingParts, InpaintingMask, Rotation, TileGrid,
                                              disk_mask, drop_colour, grid_geometry, normalise_tiles,
                                              project_colour, rotation_set, tile_grid)
from selfsup.objectives.colorization import (SoftQuantiser, ab_gamut, ab_histogram, lightness_only,
                                             rebalancing_weights)
from selfsup.objectives.counting import counting_loss
from selfsup.objectives.jigsaw import maximal_hamming_permutations, min_hamming_distance
from selfsup.objectives.s4l import kept_labels
from selfsup.objectives.split_brain import colour_only


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.rand(4, 3, 24, 24)


def test_quarter_rotations_are_exact_and_compose(images):
    r90, r180 = Rotation(90), Rotation(180)
    assert torch.equal(r90(images), torch.rot90(images, 1, dims=(-2, -1)))
    assert torch.equal(r90(r90(images)), r180(images))
    assert torch.equal(Rotation(360)(images), images)


def test_eight_rotations_are_disk_cut_and_two_45_degree_turns_make_a_quarter_turn():
    x = torch.zeros(1, 1, 32, 32)
    x[..., 4:10, 14:18] = 1                                            # a bar near the top
    turns = rotation_set(8)
    assert [t.name for t in turns] == ["rot0", "rot45", "rot90", "rot135", "rot180", "rot225", "rot270", "rot315"]
    outside = disk_mask(32, 32) == 0
    for t in turns:                                                    # no corner gives the angle away
        assert t(torch.ones(2, 1, 32, 32))[:, :, outside].abs().max() == 0
    twice = turns[1](turns[1](x))
    error = (twice - turns[2](x)).abs().sum()                          # bilinear resampling blurs a little
    assert error < 0.25 * (twice - turns[6](x)).abs().sum()            # but it turned the way rot90 turns
    assert error < 0.4 * x.sum()


def test_rotation_sets_and_their_limits():
    assert [t.name for t in rotation_set(2)] == ["rot0", "rot180"]
    assert [t.name for t in rotation_set(4)] == ["rot0", "rot90", "rot180", "rot270"]
    assert not any(t.disk for t in rotation_set(4))
    with pytest.raises(ConfigError, match="rotation count"):
        rotation_set(3)


def test_tile_grid_cuts_real_slices_with_gaps_between_neighbours():
    torch.manual_seed(1)
    x = torch.arange(2 * 1 * 30 * 30, dtype=torch.float32).view(2, 1, 30, 30)
    tile, gap, jitter = 7, 1, 1
    tiles = tile_grid(x, 3, tile, gap, jitter)
    assert tiles.shape == (2, 9, 1, 7, 7)
    for b, n in itertools.product(range(2), range(9)):
        first = int(tiles[b, n, 0, 0, 0] - x[b, 0, 0, 0])
        top, left = divmod(first, 30)
        assert torch.equal(tiles[b, n, 0], x[b, 0, top: top + tile, left: left + tile])
        cell_top, cell_left = (n // 3) * 10, (n % 3) * 10               # cells of 30 // 3 px
        assert cell_top <= top <= cell_top + gap // 2 + jitter and cell_left <= left <= cell_left + gap // 2 + jitter
    # Horizontal neighbours never touch: at least `gap` pixels lie between them.
    lefts = (tiles[:, :, 0, 0, 0] - x[:, 0, 0, 0, None]).long() % 30
    assert ((lefts[:, 1::3] - lefts[:, 0::3] - tile) >= gap).all()


def test_grid_geometry_defaults_and_too_small_images():
    assert grid_geometry(28, 3) == (7, 1, 1)
    assert grid_geometry(96, 3) == (27, 3, 2)
    with pytest.raises(ConfigError, match="modality_options.size"):
        grid_geometry(8, 3)


def test_tile_normalisation_removes_each_tiles_own_statistics(images):
    tiles = tile_grid(images, 3, 6, 1, 1) * torch.linspace(0.2, 1.0, 9).view(1, 9, 1, 1, 1)   # tiles of unequal contrast
    out = normalise_tiles(tiles)
    means, stds = out.mean(dim=(-2, -1)), out.std(dim=(-2, -1))
    assert torch.allclose(means, means[0, 0, 0].expand_as(means), atol=1e-4)
    assert torch.allclose(stds, stds[0, 0, 0].expand_as(stds), rtol=1e-3)


def test_colour_projection_removes_green_magenta_and_dropping_keeps_one_channel(images):
    axis = torch.tensor(GREEN_MAGENTA) / torch.tensor(GREEN_MAGENTA).norm()
    x = images * 0.5 + 0.25                                           # stays in [0, 1] after projection
    projected = project_colour(x)
    assert torch.einsum("bchw,c->bhw", projected, axis).abs().max() < 1e-5
    assert torch.equal(project_colour(x[:, :1]), x[:, :1])             # grey: nothing to project
    torch.manual_seed(0)
    dropped = drop_colour(x)
    spread = dropped.std(dim=(-2, -1))                                 # (B, 3)
    kept = spread.argmax(dim=1)
    for b in range(len(x)):
        assert torch.equal(dropped[b, kept[b]], x[b, kept[b]])
        others = [c for c in range(3) if c != kept[b]]
        assert (spread[b, others] < spread[b, kept[b]] / 50).all()


@pytest.mark.parametrize("kind", ["central", "block", "region"])
def test_inpainting_masks(kind):
    torch.manual_seed(0)
    mask = InpaintingMask(kind, coverage=0.25)(torch.rand(16, 1, 28, 28))
    assert mask.shape == (16, 1, 28, 28) and mask.dtype == torch.bool
    coverage = mask.float().mean(dim=(1, 2, 3))
    if kind == "block":
        assert (coverage > 0.03).all() and (coverage < 0.5).all()
        assert not torch.equal(mask[0], mask[1])
    else:
        assert torch.allclose(coverage, torch.full_like(coverage, 0.25), atol=0.01)
    if kind == "central":
        assert mask[:, 0, 7:21, 7:21].all() and not mask[:, 0, :7].any()
    with pytest.raises(ConfigError):
        InpaintingMask("star")


def test_counting_parts_are_the_four_tiles_and_the_downsampled_whole(images):
    whole, tiles = CountingParts((24, 24))({"x": images})
    assert whole.shape == (4, 3, 12, 12) and tiles.shape == (4, 4, 3, 12, 12)
    assert torch.equal(tiles[:, 3], images[..., 12:, 12:])
    assert torch.allclose(whole.mean(dim=(-2, -1)), images.mean(dim=(-2, -1)), atol=0.02)


def test_counting_loss_is_zero_when_counts_add_up_and_others_are_far():
    whole = torch.tensor([[4.0, 0.0], [0.0, 4.0]])
    assert counting_loss(whole, whole, whole.flip(0), margin=10.0) == 0
    assert counting_loss(whole, whole, whole, margin=10.0) == 10.0     # another image's counts alike: hinge


def test_jigsaw_permutations_are_distinct_far_apart_and_reproducible():
    perms = maximal_hamming_permutations(9, 100)
    assert len(set(perms)) == 100 and all(sorted(p) == list(range(9)) for p in perms)
    assert min_hamming_distance(perms) >= 6
    assert perms == maximal_hamming_permutations(9, 100, 0)
    assert maximal_hamming_permutations(9, 100, 1) != perms
    assert len(maximal_hamming_permutations(4, 24)) == 24              # every permutation of 4 tiles
    with pytest.raises(ValueError):
        maximal_hamming_permutations(3, 7)


def test_tile_grid_module_options_and_chroma_check(images):
    tiles = TileGrid((24, 24), grid=3, normalise=True, chroma="drop")({"x": images})
    assert tiles.shape == (4, 9, 3, 6, 6)
    with pytest.raises(ConfigError, match="chroma"):
        TileGrid((24, 24), chroma="rainbow")


def test_ab_quantiser_soft_encoding_and_annealed_decoding():
    centres = ab_gamut()
    assert 200 < len(centres) < 320 and (centres.abs() <= 130).all()
    q = SoftQuantiser(centres)
    ab = torch.tensor([[[[12.0]], [[-31.0]]]])                          # one pixel (1, 2, 1, 1)
    soft = q.encode(ab)
    assert torch.allclose(soft.sum(dim=1), torch.ones(1, 1, 1)) and (soft > 0).sum() == 5
    assert torch.equal(centres[soft.argmax(dim=1)].flatten(), torch.tensor([10.0, -30.0]))
    assert q.nearest(ab).item() == soft.argmax(dim=1).item()
    decoded = q.decode(torch.log(soft + 1e-12), temperature=1.0)       # the soft target's own mean
    assert (decoded.flatten() - ab.flatten()).abs().max() < 5


def test_rebalancing_favours_rare_colours_and_averages_one():
    centres = ab_gamut()
    counts = torch.zeros(len(centres))
    grey = int((centres.abs().sum(dim=1)).argmin())
    counts[grey], counts[0] = 1000, 1
    w = rebalancing_weights(counts, centres)
    assert w[0] > 5 * w[grey]
    smoothed = torch.exp(-torch.cdist(centres, centres) ** 2 / 50) @ (counts / counts.sum())
    assert torch.isclose((smoothed / smoothed.sum() * w).sum(), torch.tensor(1.0), atol=1e-4)


def test_lab_halves_keep_what_they_should(images):
    lab, only_l, only_ab = rgb_to_lab(images), rgb_to_lab(lightness_only(images)), rgb_to_lab(colour_only(images))
    assert (only_l[:, 1:].abs() < 0.5).all()
    assert (only_l[:, 0] - lab[:, 0]).abs().max() < 0.5
    assert (only_ab[:, 0] - 50).abs().mean() < 1                      # gamut clipping moves a few
    hist = ab_histogram(images)
    assert hist.sum() == images[:, 0].numel()


def test_label_budget_keeps_a_fixed_fraction():
    index = torch.arange(10_000)
    kept = kept_labels(index, 0.1)
    assert 0.09 < kept.float().mean() < 0.11
    assert torch.equal(kept, kept_labels(index, 0.1))                  # the same samples every epoch
    assert not torch.equal(kept, kept_labels(index, 0.1, seed=1))
    assert np.all(kept_labels(index, 1.0).numpy())


def test_inpainting_adversarial_term_trains_the_discriminator_only_on_its_own_loss():
    from selfsup.encoders.image import SmallCNN
    from selfsup.objectives.inpainting import Inpainting

    torch.manual_seed(0)
    encoder = SmallCNN(1)
    objective = Inpainting(encoder, InpaintingMask("central"), channels=1, adversarial=0.5)
    out = objective({"x": torch.rand(8, 1, 16, 16)}, encoder)
    assert {"adversarial", "discriminator", "discriminator_acc"} <= set(out.metrics)
    real, completed = torch.rand(8, 1, 16, 16), torch.rand(8, 1, 16, 16, requires_grad=True)
    fool, judge, _ = objective._adversarial(real, completed)
    fool.backward()                          # the decoder's side: through frozen discriminator weights
    assert completed.grad.abs().max() > 0
    assert all(p.grad is None for p in objective.discriminator.parameters())
    completed.grad = None
    judge.backward()                         # the discriminator's side: completed images detached
    assert completed.grad is None
    assert all(p.grad is not None and p.grad.abs().max() > 0 for p in objective.discriminator.parameters())
