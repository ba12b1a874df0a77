"""Sound-texture statistics: they separate kinds of ambient sound, measure modulation where it
is, and become labels by k-means clusters or PCA-binarised codes."""

import numpy as np
import pytest
import torch

from selfsup.datasets.synthetic_video import SCENES, ambient_sound
from selfsup.errors import DataError
from selfsup.evaluation.metrics import nmi
from selfsup.modalities.sound_texture import MODULATION_BANDS, SoundClusters, SoundCodes, SoundTexture

RATE = 16000


@pytest.fixture(scope="module")
def scene_sounds():
    """6 random 2 s recordings of each of the 4 generated scene sounds, and their scene ids."""
    rng = np.random.default_rng(0)
    waves, scenes = [], []
    for k, scene in enumerate(SCENES):
        for _ in range(6):
            waves.append(ambient_sound(scene, 2.0, rng))
            scenes.append(k)
    return torch.from_numpy(np.stack(waves))[:, None], np.array(scenes)


def test_statistics_have_their_declared_size_and_are_finite(scene_sounds):
    waves, _ = scene_sounds
    texture = SoundTexture(RATE, bands=32)
    stats = texture(waves)
    assert stats.shape == (len(waves), texture.dim) and torch.isfinite(stats).all()
    assert texture.dim == 32 + 32 + (31 + 30 + 28 + 24) + 32 * len(MODULATION_BANDS)
    silence = texture(torch.zeros(1, 1, RATE))
    assert torch.isfinite(silence).all()


def test_modulation_energy_sits_at_the_modulation_rate():
    """Noise amplitude-modulated at 3 Hz puts its envelope's power in the 2-4 Hz band."""
    torch.manual_seed(0)
    t = torch.arange(2 * RATE) / RATE
    wave = (torch.randn(2 * RATE) * (1 + 0.9 * torch.sin(2 * torch.pi * 3.0 * t)))[None, None]
    texture = SoundTexture(RATE, bands=16)
    mod = texture(wave)[0, -16 * len(MODULATION_BANDS):].reshape(16, len(MODULATION_BANDS))
    assert int(mod.mean(0).argmax()) == MODULATION_BANDS.index((2.0, 4.0))


def test_clusters_recover_the_kinds_of_sound(scene_sounds):
    waves, scenes = scene_sounds
    stats = SoundTexture(RATE)(waves)
    clusters = SoundClusters(stats.shape[1], k=4).fit(stats, seed=0)
    assigned = clusters.assign(stats).numpy()
    assert nmi(assigned, scenes) > 0.8
    # labels for new recordings come from the fitted clusters
    rng = np.random.default_rng(1)
    fresh = torch.from_numpy(np.stack([ambient_sound(s, 2.0, rng) for s in SCENES]))[:, None]
    new = clusters.assign(SoundTexture(RATE)(fresh)).numpy()
    majority = [np.bincount(assigned[scenes == k]).argmax() for k in range(len(SCENES))]
    assert (new == np.array(majority)).mean() >= 0.75


def test_codes_are_balanced_bits_that_follow_the_sound(scene_sounds):
    waves, scenes = scene_sounds
    stats = SoundTexture(RATE)(waves)
    codes = SoundCodes(stats.shape[1], bits=8).fit(stats)
    bits = codes.codes(stats)
    assert bits.shape == (len(waves), 8) and set(bits.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(bits.mean(0), torch.full((8,), 0.5), atol=0.1)
    same = [(bits[i] == bits[j]).float().mean() for i in range(len(bits)) for j in range(i) if scenes[i] == scenes[j]]
    other = [(bits[i] == bits[j]).float().mean() for i in range(len(bits)) for j in range(i) if scenes[i] != scenes[j]]
    assert float(torch.stack(same).mean()) > float(torch.stack(other).mean()) + 0.2


def test_bad_statistics_are_refused():
    with pytest.raises(DataError, match="at least 2 clips"):
        SoundClusters(5, k=2).fit(torch.rand(1, 5))
    with pytest.raises(DataError, match="NaN"):
        SoundCodes(5).fit(torch.tensor([[float("nan")] * 5, [0.0] * 5]))
    with pytest.raises(DataError, match="lower num_clusters"):
        SoundClusters(5, k=10).fit(torch.rand(4, 5))
