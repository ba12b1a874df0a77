"""The log-mel front end (defaults, agreement with librosa, silence), the spectrogram CNN,
CPC's waveform encoder and the weightless log-mel baseline."""

import numpy as np
import pytest
import torch

from selfsup.encoders.audio import CPCWaveEncoder, LogMelFeatures, LogMelFrontEnd, SpectrogramCNN
from selfsup.errors import ConfigError
from selfsup.modalities.audio import AudioModality


def test_front_end_defaults_follow_audio2vec():
    fe = LogMelFrontEnd()
    assert (fe.win_length, fe.hop_length, fe.n_mels) == (400, 160, 64)       # 25 ms, 10 ms at 16 kHz
    assert fe.f_max == 7800 and fe.fbank.shape == (64, 257)
    assert fe.fbank[:, :1].abs().max() == 0                                  # nothing below 60 Hz (bin 0)
    x = torch.randn(3, 1, 16000)
    out = fe(x)
    assert out.shape == (3, 64, fe.frames(16000)) == (3, 64, 101)
    assert torch.allclose(out.mean(dim=(1, 2)), torch.zeros(3), atol=1e-4)   # per-clip normalisation
    assert torch.allclose(out.std(dim=(1, 2)), torch.ones(3), atol=1e-3)
    assert LogMelFrontEnd(8000).f_max == 4000                                 # clamped to Nyquist


def test_front_end_matches_librosa():
    import librosa

    x = torch.randn(2, 1, 8000) * 0.1
    ours = LogMelFrontEnd().mel_power(x)[:, 0].numpy()
    theirs = librosa.feature.melspectrogram(y=x[:, 0].numpy(), sr=16000, n_fft=512, win_length=400, hop_length=160,
                                            n_mels=64, fmin=60, fmax=7800, htk=True, norm=None, pad_mode="reflect")
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()


def test_front_end_keeps_channels_and_silence_finite():
    fe = LogMelFrontEnd(n_mels=32)
    stereo = torch.randn(2, 2, 4000)
    assert fe(stereo).shape == (2, 64, 26)                                    # (B, C * n_mels, frames)
    silent = fe(torch.zeros(2, 1, 4000))
    assert torch.isfinite(silent).all() and silent.abs().max() == 0


def test_spectrogram_cnn_sequence_and_embedding():
    enc = SpectrogramCNN(in_channels=2)
    x = torch.randn(4, 2, 16000)
    seq = enc(x)
    assert enc.output_kind == "sequence" and seq.shape == (4, 101 // 4, 256)
    assert enc.embed(x).shape == (4, 256)
    assert torch.allclose(enc.embed(x), seq.mean(1) + seq.amax(1))
    short = torch.randn(2, 2, enc.min_input_length)
    assert enc(short).shape[1] >= 1
    with pytest.raises(RuntimeError):
        enc(torch.randn(2, 2, enc.min_input_length - 160))
    spec = enc.spectrogram(x)
    assert torch.allclose(enc(spec), seq)                                    # a precomputed log-mel works too
    assert list(enc.layer_features(x)) == ["block1", "block2", "block3", "output"]


@pytest.mark.parametrize("context", ["gru", "causal-conv", "none"])
def test_cpc_wave_encoder_one_latent_per_10_ms(context):
    enc = CPCWaveEncoder(width=32, context=context, context_dim=24)
    x = torch.randn(2, 1, 16000)
    z = enc(x)
    assert z.shape == (2, 100, 32)                                           # 16000 / 160
    assert enc.embed(x).shape == (2, enc.embed_dim) == (2, 32 if context == "none" else 24)
    assert enc(torch.randn(1, 1, enc.min_input_length)).shape[1] == 1


def test_cpc_context_is_causal():
    enc = CPCWaveEncoder(width=16, context="causal-conv", context_dim=16).eval()
    z = torch.randn(1, 30, 16)
    c = enc.context_network(z)
    z2 = z.clone()
    z2[:, 20:] = torch.randn(1, 10, 16)
    c2 = enc.context_network(z2)
    assert torch.allclose(c[:, :20], c2[:, :20]) and not torch.allclose(c[:, 20:], c2[:, 20:])


def test_log_mel_baseline_has_no_weights_and_cannot_be_pretrained():
    m = AudioModality()
    enc = m.build_encoder("log-mel", sample_rate=16000, in_channels=1)
    assert list(enc.parameters()) == []
    x = torch.randn(3, 1, 8000)
    frames = LogMelFrontEnd()(x)
    assert torch.allclose(enc.embed(x), frames.mean(-1) + frames.amax(-1))
    with pytest.raises(ConfigError, match="spectrogram-cnn, cpc-wave.*no weights"):
        m.build_objective("simclr", enc, None)
    assert isinstance(enc, LogMelFeatures)
