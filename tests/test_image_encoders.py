"""2-D encoders: output shapes, pooled embedding, bounded per-layer features, input stage."""

from __future__ import annotations

import pytest
import torch

from selfsup.encoders.image import AlexNetSmall, SmallCNN, bounded_pool, resnet18, resnet50
from selfsup.modalities.image import ImageModality
from selfsup.training.build import encoder_spec, load_encoder, save_encoder


@pytest.mark.parametrize("factory, dim, layers", [
    (SmallCNN, 128, ["conv1", "conv2", "conv3", "conv4"]),
    (AlexNetSmall, 256, ["conv1", "conv2", "conv3", "conv4", "conv5"]),
    (resnet18, 512, ["conv1", "layer1", "layer2", "layer3", "layer4"]),
])
def test_map_output_embed_is_global_average_and_layers_are_bounded(factory, dim, layers):
    torch.manual_seed(0)
    enc = factory(in_channels=3).eval()
    x = torch.rand(2, 3, 32, 32)
    fmap = enc(x)
    assert enc.output_kind == "map" and fmap.dim() == 4 and fmap.shape[1] == dim == enc.embed_dim
    assert torch.allclose(enc.embed(x), fmap.mean(dim=(2, 3)), atol=1e-6)
    feats = enc.layer_features(x)
    assert list(feats) == layers
    assert all(f.shape[0] == 2 and f.shape[1] <= enc.max_layer_dim for f in feats.values())


def test_encoders_take_tiny_and_grey_inputs():
    for factory in (SmallCNN, AlexNetSmall):
        assert factory(in_channels=1)(torch.rand(2, 1, 8, 8)).shape[0] == 2
    assert resnet18(in_channels=1, small_stem=False)(torch.rand(2, 1, 16, 16)).shape == (2, 512, 1, 1)


def test_resnet50_builds_with_small_stem():
    enc = resnet50(in_channels=3).eval()
    assert enc.embed_dim == 2048 and enc.embed(torch.rand(1, 3, 16, 16)).shape == (1, 2048)
    assert enc.stages["conv1"][0].kernel_size == (3, 3)


def test_bounded_pool_picks_the_largest_grid_within_the_bound():
    h = torch.rand(2, 32, 8, 8)
    assert bounded_pool(h, 2048).shape == (2, 32 * 8 * 8)
    assert bounded_pool(h, 600).shape == (2, 32 * 4 * 4)
    assert bounded_pool(h, 10).shape == (2, 32)


def test_input_stage_normalises_and_sobel_replaces_channels():
    enc = SmallCNN(in_channels=3, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    x = torch.full((1, 3, 4, 4), 0.75)
    assert torch.allclose(enc.input(x), torch.ones(1, 3, 4, 4))
    sobel = SmallCNN(in_channels=3, sobel=True)
    ramp = torch.linspace(0, 1, 8).view(1, 1, 1, 8).expand(1, 3, 8, 8)   # brightness rises to the right
    grad = sobel.input(ramp)
    assert grad.shape == (1, 2, 8, 8) and sobel.stages["conv1"][0].in_channels == 2
    inner = grad[:, :, 1:-1, 1:-1]
    assert (inner[:, 0] < 0).all() and torch.allclose(inner[:, 1], torch.zeros_like(inner[:, 1]), atol=1e-6)


def test_normalisation_statistics_travel_with_the_saved_encoder(tmp_path):
    modality = ImageModality()
    data = modality.load("builtin:digits")
    kwargs = modality.encoder_kwargs(data)
    assert kwargs["in_channels"] == 1 and 0.2 < kwargs["mean"][0] < 0.4 and modality.options["size"] == [8, 8]
    enc = modality.build_encoder(None, **kwargs)
    path = save_encoder(tmp_path / "encoder.pt", enc, encoder_spec(modality, None, kwargs))
    loaded, spec = load_encoder(path)
    assert spec["modality_options"]["size"] == [8, 8]
    assert torch.equal(loaded.input.mean, enc.input.mean) and torch.equal(loaded.input.std, enc.input.std)
