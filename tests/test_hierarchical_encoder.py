"""The dilated-conv encoder: shapes, receptive field, timestamp masking, sliding-window encoding."""

import pytest
import torch
from torch import nn

from selfsup.encoders.dilated_conv import DilatedConvEncoder, SameDilatedConv1d
from selfsup.errors import ConfigError
from selfsup.modalities.sensor import SensorModality


def small(**kw):
    torch.manual_seed(0)
    return DilatedConvEncoder(6, **{"hidden": 16, "depth": 3, "out_dim": 24, **kw})


def test_default_architecture_is_ts2vec_sized():
    enc = SensorModality().build_encoder("dilated-conv", in_channels=6)
    assert isinstance(enc, DilatedConvEncoder)
    assert len(enc.blocks) == 11                              # 10 hidden blocks + 1 to the output width
    assert [b.conv1.dilation[0] for b in enc.blocks] == [2 ** i for i in range(11)]
    assert enc.blocks[0].conv1.out_channels == 64 and enc.embed_dim == enc.feature_dim == 320
    assert enc.receptive_field == 1 + 2 * 2 * (2 ** 11 - 1)  # two kernel-3 convs per block
    assert enc.min_input_length == 1


@pytest.mark.parametrize("length", [1, 2, 7, 100])
def test_shapes_keep_time_resolution(length):
    enc = small().eval()
    x = torch.randn(3, 6, length)
    assert enc(x).shape == (3, length, 24)
    assert enc.embed(x).shape == (3, 24)
    feats = enc.layer_features(x)
    assert list(feats) == ["block1", "block2", "block3", "block4"]
    assert feats["block1"].shape == (3, 16) and feats["block4"].shape == (3, 24)
    torch.testing.assert_close(feats["block4"], enc.embed(x))


def test_embed_pools_max_or_mean():
    x = torch.randn(2, 6, 30)
    enc = small().eval()
    torch.testing.assert_close(enc.embed(x), enc(x).amax(dim=1))
    mean = small(pool="mean").eval()
    torch.testing.assert_close(mean.embed(x), mean(x).mean(dim=1))


def test_receptive_field_is_exact():
    """An output step depends on exactly receptive_field input steps, centred on it."""
    enc = small(dropout=0.0).double().eval()
    assert enc.receptive_field == 1 + 4 * (1 + 2 + 4 + 8)    # 61
    x = torch.randn(1, 6, 201, dtype=torch.float64, requires_grad=True)
    enc(x)[0, 100].sum().backward()
    reached = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero().flatten()
    half = enc.receptive_field // 2
    assert reached.min().item() == 100 - half and reached.max().item() == 100 + half
    assert len(reached) == enc.receptive_field


@pytest.mark.parametrize("dilation", [1, 4, 64, 1024])
@pytest.mark.parametrize("length", [1, 5, 100])
def test_same_dilated_conv_matches_same_padding(dilation, length):
    """Dropping taps that only see padding changes nothing."""
    torch.manual_seed(0)
    conv = SameDilatedConv1d(5, 7, 3, dilation)
    reference = nn.Conv1d(5, 7, 3, padding="same", dilation=dilation)
    reference.load_state_dict(conv.state_dict())
    x = torch.randn(2, 5, length)
    torch.testing.assert_close(conv(x), reference(x))


def test_timestamp_mask_zeroes_the_input_projection():
    enc = small(dropout=0.0).eval()
    x = torch.randn(2, 6, 40)
    keep_all = torch.ones(2, 40, dtype=torch.bool)
    torch.testing.assert_close(enc(x, timestamp_mask=keep_all), enc(x))
    keep = keep_all.clone()
    keep[:, 10:20] = False
    # A masked step is as if its projected input were zero, whatever the input there.
    noisy = x.clone()
    noisy[:, :, 10:20] = torch.randn(2, 6, 10) * 100
    torch.testing.assert_close(enc(x, timestamp_mask=keep), enc(noisy, timestamp_mask=keep))
    assert not torch.allclose(enc(x, timestamp_mask=keep), enc(x))
    # embed never masks, and in eval mode it is deterministic
    torch.testing.assert_close(enc.embed(x), enc.embed(x))
    torch.testing.assert_close(enc.embed(x), enc(x).amax(dim=1))


@pytest.mark.parametrize("length,window", [(500, 64), (333, 100), (64, 64)])
def test_sliding_window_with_full_context_equals_whole_encoding(length, window):
    enc = small().eval()
    x = torch.randn(2, 6, length)
    with torch.no_grad():
        whole = enc(x)
        slid = enc.encode_sliding(x, window, chunks_per_pass=3)
    torch.testing.assert_close(slid, whole, atol=1e-5, rtol=1e-5)


def test_sliding_window_option_routes_long_inputs():
    enc = small(sliding_window=50).eval()
    assert enc.sliding_context == enc.receptive_field // 2
    x = torch.randn(1, 6, 400)
    calls = []
    original = enc._encode
    enc._encode = lambda x, mask=None: calls.append(x.shape[-1]) or original(x, mask)
    with torch.no_grad():
        z = enc(x)
    assert z.shape == (1, 400, 24)
    assert max(calls) <= 50 + 2 * enc.sliding_context < 400   # never the whole recording at once
    short = small(sliding_window=10, sliding_context=5).eval()
    with torch.no_grad():
        approx, exact = short(x), short._encode(x)
    # less context than the receptive field: an approximation, still close
    assert approx.shape == exact.shape and not torch.allclose(approx, exact)
    assert torch.nn.functional.cosine_similarity(approx, exact, dim=-1).mean() > 0.9


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="odd kernel"):
        DilatedConvEncoder(6, kernel=4)
    with pytest.raises(ConfigError, match="pool"):
        DilatedConvEncoder(6, pool="attention")
    with pytest.raises(ConfigError, match="sliding_window"):
        DilatedConvEncoder(6, sliding_window=0)
