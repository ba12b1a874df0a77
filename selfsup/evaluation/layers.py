"""Linear probes on features from several depths of a frozen encoder (conv1 ... last), as the
tables of the pretext-task papers report them: where in the network do the features that a
task teaches sit?

The features are the encoder's ``layer_features`` (for the image encoders: each stage's map,
average-pooled to the largest grid with at most ``max_layer_dim`` values), extracted once per
encoder for every layer (``extract_embeddings(..., layers=True)``). Each layer is then probed
by the shared ``protocol.evaluate`` -- same probes, label subsets, seeds and metrics as every
other figure -- through a stand-in encoder that looks the extracted rows up.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from selfsup.datasets.base import ArrayDataset, SampleDataset
from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError
from selfsup.evaluation.features import extract_embeddings
from selfsup.evaluation.probes import FROZEN_PROTOCOLS
from selfsup.evaluation.protocol import Evaluation, evaluate


class FeatureRows(Encoder):
    """An 'encoder' whose inputs are row numbers (B, 1) of a precomputed (N, D) feature table."""

    output_kind = "vector"

    def __init__(self, table: np.ndarray):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))
        self.embed_dim = self.feature_dim = int(self.table.shape[1])

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.table[rows[:, 0].long()]


def _row_sets(train_set: SampleDataset, test_set: SampleDataset) -> tuple[ArrayDataset, ArrayDataset]:
    """Stand-ins for the two sets: row i of the train set, row len(train) + j of the test set."""
    n, m = len(train_set), len(test_set)
    rows = np.arange(n + m, dtype=np.float32)[:, None]
    return (ArrayDataset(rows[:n], train_set.labels, class_names=train_set.class_names, source=train_set.source),
            ArrayDataset(rows[n:], test_set.labels, class_names=test_set.class_names, source=test_set.source))


def evaluate_layers(encoder_for_seed: Callable[[int], Encoder], train_set: SampleDataset, test_set: SampleDataset,
                    protocol: str = "linear", label_fraction: float | None = None,
                    labels_per_class: int | None = None, seeds: int = 3, layers: Sequence[str] | None = None,
                    progress: bool = False, probe_options: dict | None = None,
                    label_draws: int = 1) -> dict[str, Evaluation]:
    """{layer: Evaluation} for every layer of ``encoder.layer_features`` (or those in ``layers``),
    shallow to deep. ``encoder_for_seed`` as in ``protocol.evaluate``: one encoder for every seed
    (pretrained: extracted once) or a fresh one per seed (random init: extracted per seed)."""
    if protocol not in FROZEN_PROTOCOLS:
        raise ConfigError(f"per-layer probes need a frozen protocol ({', '.join(FROZEN_PROTOCOLS)}), got {protocol!r}")
    extracted: list[tuple[Encoder, dict[str, FeatureRows]]] = []   # keeps encoders alive: identity checks hold
    by_seed: dict[int, dict[str, FeatureRows]] = {}

    def tables(seed: int) -> dict[str, FeatureRows]:
        if seed not in by_seed:
            encoder = encoder_for_seed(seed)
            known = next((t for e, t in extracted if e is encoder), None)
            if known is None:
                z_train = extract_embeddings(encoder, train_set, progress=progress, layers=True)
                z_test = extract_embeddings(encoder, test_set, progress=progress, layers=True)
                known = {name: FeatureRows(np.concatenate([z_train[name], z_test[name]])) for name in z_train}
                extracted.append((encoder, known))
            by_seed[seed] = known
        return by_seed[seed]

    available = list(tables(0))
    chosen = list(layers) if layers else available
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise ConfigError(f"unknown layer(s) {unknown}; the encoder has {available}")
    rows_train, rows_test = _row_sets(train_set, test_set)
    results = {}
    for name in chosen:
        results[name] = evaluate(lambda seed, name=name: tables(seed)[name], rows_train, rows_test, protocol,
                                 label_fraction, labels_per_class, seeds, probe_options=probe_options,
                                 label_draws=label_draws)
        results[name].extra["feature_dim"] = tables(0)[name].embed_dim
    return results


def format_layers(results: dict[str, Evaluation], metric: str = "accuracy") -> str:
    """One line per layer: its feature size and ``metric`` mean +- std."""
    lines = [f"{'layer':<10}{'features':>9}  {metric}"]
    for name, r in results.items():
        lines.append(f"{name:<10}{r.extra['feature_dim']:>9}  {r.summary[metric]:.3f} ± {r.summary[metric + '_std']:.3f}")
    return "\n".join(lines)


__all__ = ["evaluate_layers", "format_layers", "FeatureRows"]
