"""The shared evaluation protocol: probes over seeds, and frozen embeddings extracted once."""

import numpy as np
import torch

from selfsup.evaluation import protocol
from selfsup.evaluation.protocol import EmbeddingCache, evaluate
from selfsup.evaluation.splits import split_dataset
from selfsup.modalities.sensor import SensorModality


def test_one_cache_embeds_each_encoder_and_dataset_once(watch, monkeypatch):
    train, test, _ = split_dataset(watch.subset(np.arange(0, len(watch), 6)))
    torch.manual_seed(0)
    encoder = SensorModality().build_encoder("tpn", in_channels=6).eval()
    calls = []
    real = protocol.extract_embeddings
    monkeypatch.setattr(protocol, "extract_embeddings", lambda e, d, **kw: calls.append(d) or real(e, d, **kw))
    cache = EmbeddingCache()
    linear = evaluate(lambda seed: encoder, train, test, "linear", seeds=2, embeddings=cache)
    knn = evaluate(lambda seed: encoder, train, test, "knn", labels_per_class=5, seeds=2, embeddings=cache)
    assert len(calls) == 2                                      # train and test, once for both calls
    assert linear.summary["accuracy"] > 1 / 7 and knn.summary["accuracy"] > 1 / 7   # 7 exercises
    fresh = evaluate(lambda seed: encoder, train, test, "linear", seeds=2)
    assert len(calls) == 4 and fresh.summary == linear.summary  # no cache: extracted again, same result
