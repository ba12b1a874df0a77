"""Video encoders: a frame CNN shared over time with temporal pooling or fusion, and the dense
spatial-map encoder at stride 4 or 8; both give frame maps for tracking."""

import pytest
import torch

from selfsup.encoders.video import FrameEncoder, SpatialMapEncoder


def clip(b=2, t=5, side=32):
    torch.manual_seed(0)
    return torch.rand(b, t, 3, side, side)


def test_frame_encoder_shapes_and_shared_weights():
    x = clip()
    enc = FrameEncoder().eval()
    seq = enc(x)
    assert enc.output_kind == "sequence" and seq.shape == (2, 5, 128) and enc.embed(x).shape == (2, 128)
    # one network for every frame: frame 3 of the clip embeds like the same frame on its own
    alone = enc(x[:, 3:4])
    assert torch.allclose(seq[:, 3], alone[:, 0], atol=1e-5)
    assert enc.stride == 4 and enc.frame_maps(x[:, 0]).shape == (2, 128, 8, 8)
    layers = enc.layer_features(x)
    assert list(layers) == ["conv1", "conv2", "conv3", "conv4", "clip"] and layers["clip"].shape == (2, 128)
    with pytest.raises(ValueError, match="clips"):
        enc(x[:, 0])


def test_only_fusion_sees_frame_order():
    x = clip()
    reversed_x = x.flip(1)
    for temporal, order_blind in (("mean", True), ("max", True), ("conv", False)):
        enc = FrameEncoder(temporal=temporal).eval()
        same = torch.allclose(enc.embed(x), enc.embed(reversed_x), atol=1e-5)
        assert same == order_blind, temporal


def relative_change(z: torch.Tensor) -> float:
    """How far apart the embeddings of frames 0 and 1 are, relative to their size."""
    return float(2 * (z[0, 0] - z[0, 1]).norm() / (z[0, 0].norm() + z[0, 1].norm()))


@torch.no_grad()
def test_grid_embedding_keeps_where_things_are():
    x = torch.zeros(1, 2, 3, 32, 32)
    x[0, 0, :, 2:10, 2:10] = 1.0           # the same square, top-left ...
    x[0, 1, :, 22:30, 22:30] = 1.0         # ... and bottom-right
    for seed in range(3):
        torch.manual_seed(seed)
        grid = FrameEncoder(grid=2, embed_dim=32).eval()(x)
        pooled = FrameEncoder().eval()(x)      # global average: only border effects tell the places apart
        assert grid.shape == (1, 2, 32)
        # (relative, since the two embeddings have different scales)
        assert relative_change(grid) > 1.5 * relative_change(pooled), seed


@pytest.mark.parametrize("backbone", ["small-cnn", "resnet18"])
@pytest.mark.parametrize("stride", [4, 8])
def test_spatial_map_encoder_strides(backbone, stride):
    x = clip(b=1, t=2, side=32)
    enc = SpatialMapEncoder(stride=stride, backbone=backbone, mean=[0.5] * 3, std=[0.2] * 3).eval()
    assert enc.stride == stride and enc.output_kind == "map"
    out = enc(x)
    assert out.shape == (1, 64, 2, 32 // stride, 32 // stride)
    assert enc.frame_maps(x[:, 0]).shape == (1, 64, 32 // stride, 32 // stride)
    assert enc.embed(x).shape == (1, 64)
    assert "projection" in enc.layer_features(x)


def test_spatial_map_encoder_sees_grey():
    enc = SpatialMapEncoder().eval()
    frame = torch.rand(1, 3, 32, 32)
    grey = (frame * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True).expand(-1, 3, -1, -1)
    assert torch.allclose(enc.frame_maps(frame), enc.frame_maps(grey), atol=1e-5)
    colour = SpatialMapEncoder(grey=False).eval()
    assert not torch.allclose(colour.frame_maps(frame), colour.frame_maps(grey), atol=1e-3)
    with pytest.raises(ValueError, match="stride 4 or 8"):
        SpatialMapEncoder(stride=2)
