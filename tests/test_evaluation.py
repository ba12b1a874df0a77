"""The shared evaluation protocol: probes over seeds, and frozen embeddings extracted once."""

import numpy as np
import pytest
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


def test_paired_difference_tests_one_mean_per_group_of_dependent_seeds():
    from selfsup.evaluation.metrics import paired_difference

    better = [0.85, 0.83, 0.86, 0.84, 0.84, 0.81]
    worse = [0.77, 0.82, 0.80, 0.71, 0.79, 0.76]
    per_seed = paired_difference(better, worse)
    per_run = paired_difference(better, worse, groups=3)      # seeds i and i + 3 probe one pretraining run
    assert per_seed["higher"] == 6 and per_seed["tested"] == 6 and per_run["tested"] == 3
    assert per_seed["mean"] == per_run["mean"] and 0 < per_seed["p"] < per_run["p"] < 0.1   # fewer values, weaker
    assert paired_difference(worse, better)["p"] > 0.9                                      # one-sided: a > b
    assert paired_difference([0.9, 0.8], [0.8, 0.7])["p"] is None                          # nothing to test
    with pytest.raises(ValueError, match="equally long"):
        paired_difference([0.9, 0.8], [0.8])


def test_label_draws_score_each_seed_as_the_mean_over_several_label_subsets(watch):
    from selfsup.evaluation.splits import label_subset

    train, test, _ = split_dataset(watch.subset(np.arange(0, len(watch), 6)))
    torch.manual_seed(0)
    encoder = SensorModality().build_encoder("tpn", in_channels=6).eval()
    cache = EmbeddingCache()
    one = evaluate(lambda seed: encoder, train, test, "linear", labels_per_class=3, seeds=2, embeddings=cache)
    four = evaluate(lambda seed: encoder, train, test, "linear", labels_per_class=3, seeds=2, embeddings=cache,
                    label_draws=4)
    assert one.label_draws == 1 and four.label_draws == 4 and len(four.per_draw) == 2
    # draw 0 of each seed is that seed's subset alone, so one draw reproduces the plain run
    assert [d[0]["accuracy"] for d in four.per_draw] == [s["accuracy"] for s in one.per_seed]
    for seed, draws in enumerate(four.per_draw):
        assert four.per_seed[seed]["accuracy"] == pytest.approx(np.mean([d["accuracy"] for d in draws]))
    subsets = {tuple(label_subset(train.labels, s, per_class=3, draw=k)) for s in range(2) for k in range(4)}
    assert len(subsets) == 8                                   # every (seed, draw) keeps other labels
    assert four.to_dict()["label_draws"] == 4 and "per_draw" in four.to_dict()
    everything = evaluate(lambda seed: encoder, train, test, "linear", seeds=1, embeddings=cache, label_draws=4)
    assert everything.label_draws == 1                          # all labels: nothing to draw
    with pytest.raises(ValueError, match="label_draws"):
        evaluate(lambda seed: encoder, train, test, "linear", labels_per_class=3, label_draws=0)
