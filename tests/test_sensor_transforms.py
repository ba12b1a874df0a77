"""Each of the eight TPN transformations keeps the property that defines it."""

import math

import pytest
import torch

from selfsup.modalities import sequence_transforms as st

B, C, T = 16, 6, 100
GROUPS = [[0, 1, 2], [3, 4, 5]]


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(B, C, T)


def test_noise_adds_zero_mean_noise_of_the_given_scale(x):
    out = st.AddNoise(sigma=0.1)(x)
    diff = out - x
    assert out.shape == x.shape
    assert abs(diff.mean().item()) < 0.01
    assert diff.std().item() == pytest.approx(0.1, rel=0.05)


def test_scale_multiplies_each_channel_by_one_factor(x):
    out = st.Scale(sigma=0.3)(x)
    ratio = out / x
    per_channel = ratio.std(dim=2)
    assert per_channel.max().item() < 1e-4            # one factor per (sample, channel)
    assert ratio[:, :, 0].std().item() > 0.1          # factors differ across samples/channels


def test_rotation_keeps_per_group_norms_and_rotates(x):
    out = st.Rotate3d(GROUPS)(x)
    for g in GROUPS:
        assert torch.allclose(out[:, g].norm(dim=1), x[:, g].norm(dim=1), atol=1e-5)
    assert not torch.allclose(out, x, atol=1e-3)


def test_rotation_turns_both_sensors_of_a_sample_by_the_same_rotation():
    torch.manual_seed(1)
    signal = torch.randn(B, 3, T)
    x = torch.cat([signal, signal], dim=1)            # accelerometer == gyroscope
    out = st.Rotate3d(GROUPS)(x)
    assert torch.allclose(out[:, :3], out[:, 3:], atol=1e-5)


def test_rotation_matrices_are_proper_rotations():
    r = st.random_rotation_matrices(64)
    eye = torch.eye(3).expand(64, 3, 3)
    assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(64), atol=1e-5)


def test_rotation_needs_tri_axial_groups():
    with pytest.raises(ValueError, match="tri-axial"):
        st.Rotate3d([[0, 1]])


def test_negation_twice_is_identity(x):
    neg = st.Negate()
    assert torch.equal(neg(neg(x)), x)
    assert torch.equal(neg(x), -x)


def test_time_flip_twice_is_identity_and_reverses_time(x):
    flip = st.TimeFlip()
    assert torch.equal(flip(flip(x)), x)
    assert torch.equal(flip(x)[..., 0], x[..., -1])


def test_permutation_keeps_the_segments():
    ramp = torch.arange(T, dtype=torch.float32).expand(B, C, T).clone()
    out = st.Permute(segments=4)(ramp)
    for b in range(B):
        row = out[b, 0]
        assert torch.equal(row.sort().values, ramp[b, 0])   # the same multiset of samples
        # The output is a concatenation of at most 4 runs of consecutive time steps.
        breaks = int(((row[1:] - row[:-1]) != 1).sum())
        assert breaks <= 3
        assert torch.equal(out[b, 1], row)                   # channels move together
    assert not torch.equal(out, ramp)


def test_time_warp_keeps_length_and_its_time_curve_is_monotone(x):
    warp = st.TimeWarp(sigma=0.5)
    curve = warp.time_curve(B, T)
    assert curve.shape == (B, T)
    assert (curve[:, 1:] > curve[:, :-1]).all()
    assert torch.allclose(curve[:, 0], torch.zeros(B)) and torch.allclose(curve[:, -1], torch.full((B,), T - 1.0))
    out = warp(x)
    assert out.shape == x.shape
    ramp = torch.arange(T, dtype=torch.float32).expand(B, 1, T)
    warped = warp(ramp)[:, 0]
    assert (warped[:, 1:] >= warped[:, :-1]).all()          # a ramp stays increasing
    assert not torch.allclose(warped, ramp[:, 0], atol=0.5)


def test_channel_shuffle_permutes_channels(x):
    out = st.ChannelShuffle()(x)
    for b in range(B):
        matched = [(out[b, c:c + 1] == x[b]).all(dim=1).nonzero().flatten().tolist() for c in range(C)]
        assert sorted(m[0] for m in matched) == list(range(C))
    assert not torch.equal(out, x)


def test_transformations_are_batched_and_seeded(x):
    for t in st.tpn_transformations(GROUPS):
        torch.manual_seed(3)
        a = t(x)
        torch.manual_seed(3)
        b = t(x)
        assert a.shape == x.shape and torch.equal(a, b), t.name


def test_tpn_has_eight_transformations_with_groups_and_seven_without():
    assert [t.name for t in st.tpn_transformations(GROUPS)] == [
        "noise", "scale", "rotation", "negation", "time_flip", "permutation", "time_warp", "channel_shuffle"]
    assert "rotation" not in [t.name for t in st.tpn_transformations(None)]


def test_random_apply_touches_about_p_of_the_batch():
    torch.manual_seed(0)
    x = torch.ones(4000, 1, 5)
    out = st.RandomApply(st.Negate(), p=0.3)(x)
    assert (out[:, 0, 0] < 0).float().mean().item() == pytest.approx(0.3, abs=0.03)


def test_rotation_angle_bound():
    r = st.random_rotation_matrices(500, max_angle=0.1)
    angle = torch.arccos(((r.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    assert angle.max().item() <= 0.1 + 1e-4
    assert math.isfinite(angle.mean().item())
