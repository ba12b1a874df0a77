"""One evaluation: a protocol, a label budget and several seeds, reported as mean +- std.

Seeds vary what is random in the measurement: which labelled samples are kept (few-label
runs), the probe's or fine-tuning's initialisation, and -- for a random-init encoder -- the
encoder's own initialisation (the factory is called once per seed).

With a few-label budget, which labels are kept moves a score more than the encoder does (on
the audio benchmark, by about 0.03 between subsets of 5 per class for one encoder, 0.02
between encoders). ``label_draws`` > 1 scores each seed as the mean over that many label
subsets, so the spread between seeds is mostly that of the encoders being compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from selfsup.datasets.base import SampleDataset
from selfsup.encoders.base import Encoder
from selfsup.evaluation.features import extract_embeddings
from selfsup.evaluation.finetune import finetune_predict
from selfsup.evaluation.metrics import classification_metrics, mean_std
from selfsup.evaluation.probes import FROZEN_PROTOCOLS, fit_predict
from selfsup.evaluation.splits import label_subset

PROTOCOLS = FROZEN_PROTOCOLS + ("finetune",)
METRICS = ("accuracy", "macro_f1", "kappa")


@dataclass
class Evaluation:
    protocol: str
    summary: dict[str, float]                  # accuracy, accuracy_std, macro_f1, ...
    per_seed: list[dict[str, float]]
    n_train: int
    n_test: int
    n_labelled: list[int]
    predictions: np.ndarray                    # last seed's test predictions (for the confusion matrix)
    test_embeddings: np.ndarray | None = None  # last seed's (frozen protocols), for the embedding map
    extra: dict[str, Any] = field(default_factory=dict)
    per_draw: list[list[dict[str, float]]] = field(default_factory=list)   # [seed][draw] metrics

    @property
    def label_draws(self) -> int:
        return len(self.per_draw[0]) if self.per_draw else 1

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, **self.summary, "seeds": len(self.per_seed), "per_seed": self.per_seed,
                "label_draws": self.label_draws, **({"per_draw": self.per_draw} if self.label_draws > 1 else {}),
                "n_train": self.n_train, "n_test": self.n_test, "n_labelled": self.n_labelled, **self.extra}


class EmbeddingCache:
    """Frozen embeddings of (encoder, dataset) pairs, reusable across ``evaluate`` calls (several
    protocols or label budgets of one encoder). Keyed by the objects themselves, not their ids,
    which Python reuses once an object is freed; embeddings of a frozen encoder are a pure
    function of (encoder, data)."""

    def __init__(self):
        self._items: list[tuple[Encoder, SampleDataset, np.ndarray]] = []

    def __call__(self, encoder: Encoder, dataset: SampleDataset, progress: bool = False) -> np.ndarray:
        for e, d, z in self._items:
            if e is encoder and d is dataset:
                return z
        z = extract_embeddings(encoder, dataset, progress=progress)
        self._items.append((encoder, dataset, z))
        return z


def evaluate(encoder_for_seed: Callable[[int], Encoder], train_set: SampleDataset, test_set: SampleDataset,
             protocol: str = "linear", label_fraction: float | None = None, labels_per_class: int | None = None,
             seeds: int = 3, progress: bool = False, finetune_options: dict | None = None,
             probe_options: dict | None = None, embeddings: EmbeddingCache | None = None,
             label_draws: int = 1) -> Evaluation:
    """``seeds`` repetitions of ``protocol``; pass one ``embeddings`` cache to several calls on the
    same encoders to extract their frozen features once. With a label budget, each seed's
    metrics are the mean over ``label_draws`` label subsets (module docstring); all labels
    leave nothing to draw, so one."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    if not isinstance(label_draws, int) or label_draws < 1:
        raise ValueError(f"label_draws must be a whole number >= 1, got {label_draws!r}")
    if label_fraction is None and labels_per_class is None:
        label_draws = 1
    num_classes = max(train_set.num_classes, test_set.num_classes,
                      int(max(train_set.labels.max(), test_set.labels.max())) + 1)
    embeddings = EmbeddingCache() if embeddings is None else embeddings
    per_seed, per_draw, n_labelled, preds, z_test = [], [], [], None, None
    for seed in range(seeds):
        encoder = encoder_for_seed(seed)
        if protocol in FROZEN_PROTOCOLS:    # once per encoder, whatever the number of draws
            z_train, z_test = embeddings(encoder, train_set, progress), embeddings(encoder, test_set, progress)
        draws = []
        for draw in range(label_draws):
            subset = label_subset(train_set.labels, seed, label_fraction, labels_per_class, draw)
            if protocol in FROZEN_PROTOCOLS:
                preds = fit_predict(protocol, z_train[subset], train_set.labels[subset], z_test, seed,
                                    **(probe_options or {}))
            else:
                preds = finetune_predict(encoder, train_set.subset(subset), test_set, num_classes, seed=seed,
                                         **(finetune_options or {}))
            draws.append(classification_metrics(test_set.labels, preds))
        n_labelled.append(len(subset))
        per_seed.append({metric: float(np.mean([d[metric] for d in draws])) for metric in draws[0]})
        per_draw.append(draws)
    summary = {}
    for metric in METRICS:
        summary[metric], summary[f"{metric}_std"] = mean_std([s[metric] for s in per_seed])
    return Evaluation(protocol, summary, per_seed, len(train_set), len(test_set), n_labelled, preds, z_test,
                      per_draw=per_draw if label_draws > 1 else [])
