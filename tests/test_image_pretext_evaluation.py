"""Per-layer linear probes and the nearest-neighbour retrieval figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.datasets.images import ImageArrayDataset
from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError
from selfsup.evaluation.layers import evaluate_layers, format_layers
from selfsup.evaluation.protocol import evaluate
from selfsup.evaluation.retrieval import nearest_neighbours, retrieval
from selfsup.evaluation.splits import stratified_split
from selfsup.modalities.image import ImageModality


@pytest.fixture(scope="module")
def digits():
    data = ImageModality().load("builtin:digits")
    train, test = stratified_split(data.labels, 0.3)
    return data, data.subset(train[:600]), data.subset(test[:300])


def _random_encoder(data):
    modality = ImageModality()
    kwargs = modality.encoder_kwargs(data)

    def build(seed: int):
        torch.manual_seed(seed)
        return modality.build_encoder(None, **kwargs).eval()

    return build


class OneLayer(Encoder):
    """The encoder's features at one depth, as an embedding: what a per-layer probe must see."""

    def __init__(self, encoder, layer):
        super().__init__()
        self.encoder, self.layer = encoder, layer

    def embed(self, x):
        return self.encoder.layer_features(x)[self.layer]


def test_each_layer_is_probed_as_evaluate_would_probe_its_features(digits):
    data, train, test = digits
    build = _random_encoder(data)
    results = evaluate_layers(build, train, test, seeds=2)
    assert list(results) == ["conv1", "conv2", "conv3", "conv4"]
    for layer in ("conv1", "conv4"):
        direct = evaluate(lambda seed: OneLayer(build(seed), layer), train, test, seeds=2)
        assert results[layer].per_seed == direct.per_seed
    assert results["conv4"].extra["feature_dim"] == 512                # 128 channels pooled to 2 x 2
    for r in results.values():
        assert r.summary["accuracy"] > 0.5                              # chance 0.1
    text = format_layers(results)
    assert "conv1" in text and "±" in text


def test_one_encoder_is_extracted_once_for_all_seeds_and_layers(digits):
    data, train, test = digits
    encoder = _random_encoder(data)(0)
    calls = []
    original = encoder.layer_features
    encoder.layer_features = lambda x: calls.append(len(x)) or original(x)
    results = evaluate_layers(lambda seed: encoder, train, test, seeds=3, layers=["conv2", "conv4"])
    assert list(results) == ["conv2", "conv4"] and results["conv2"].n_labelled == [600, 600, 600]
    assert sum(calls) == len(train) + len(test)


def test_layer_probe_rejects_unknown_layers_and_fine_tuning(digits):
    data, train, test = digits
    with pytest.raises(ConfigError, match="unknown layer"):
        evaluate_layers(_random_encoder(data), train, test, seeds=1, layers=["fc9"])
    with pytest.raises(ConfigError, match="frozen protocol"):
        evaluate_layers(_random_encoder(data), train, test, protocol="finetune")


def test_nearest_neighbours_skip_the_query_itself():
    z = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    found, sims = nearest_neighbours(z, z, k=1, exclude=np.arange(4))
    assert found[:, 0].tolist() == [1, 0, 3, 2]
    found, _ = nearest_neighbours(z, z, k=2, chunk=3)                   # chunks give the same answer
    assert found[:, 0].tolist() == [0, 1, 2, 3]


def test_retrieval_figure_finds_duplicates_and_saves_a_png(digits, tmp_path):
    data, _, test = digits
    images = torch.stack([test[i]["x"] for i in range(40)])
    doubled = ImageArrayDataset(torch.cat([images, images]), np.concatenate([test.labels[:40]] * 2),
                                test.class_names)
    encoder = _random_encoder(data)(0)
    out = retrieval(encoder, doubled, k=3, num_queries=5, out=tmp_path / "retrieval.png")
    assert out["matches"].shape == (5, 3) and len(out["queries"]) == 5
    twins = (out["queries"] + 40) % 80
    assert (out["matches"][:, 0] == twins).all()                        # each query's copy comes first
    assert np.allclose(out["similarities"][:, 0], 1.0, atol=1e-5)
    assert out["precision_at_k"] > 1 / 3 and (tmp_path / "retrieval.png").stat().st_size > 5000
    against = retrieval(encoder, test, gallery=data, k=5, num_queries=3)
    assert against["path"] is None and 0 <= against["precision_at_k"] <= 1
