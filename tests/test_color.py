import pytest
import torch

from selfsup.modalities.color import lab_to_rgb, rgb_to_lab


def _pixel(r, g, b):
    return torch.tensor([r, g, b], dtype=torch.float32).view(3, 1, 1)


@pytest.mark.parametrize("rgb, lab", [((1, 1, 1), (100, 0, 0)), ((0, 0, 0), (0, 0, 0)),
                                      ((1, 0, 0), (53.24, 80.09, 67.20)), ((0, 0, 1), (32.30, 79.19, -107.86))])
def test_reference_colours(rgb, lab):
    got = rgb_to_lab(_pixel(*rgb)).flatten()
    assert torch.allclose(got, torch.tensor(lab, dtype=torch.float32), atol=0.1)


def test_round_trip_on_a_batch():
    torch.manual_seed(0)
    rgb = torch.rand(4, 2, 3, 8, 8)                     # (B, T, C, H, W): leading dims pass through
    lab = rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    assert lab[..., 0, :, :].min() >= 0 and lab[..., 0, :, :].max() <= 100
    assert torch.allclose(lab_to_rgb(lab), rgb, atol=1e-4)
