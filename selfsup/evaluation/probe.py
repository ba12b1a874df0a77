"""``selfsup probe``: measure a trained (or randomly initialised) encoder on labelled data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from selfsup.datasets.base import SampleDataset
from selfsup.errors import ConfigError
from selfsup.evaluation.protocol import Evaluation, evaluate
from selfsup.evaluation.splits import labelled_indices, split_dataset


@dataclass
class EncoderSource:
    """Where the probed encoder comes from: a run folder, or a fresh random initialisation."""

    run: str | None = None
    modality: str | None = None
    encoder: str | None = None
    modality_options: dict | None = None
    encoder_options: dict | None = None

    def describe(self, spec: dict) -> str:
        kind = f"run {self.run}" if self.run else "random init"
        return f"{spec['encoder']} encoder ({kind})"


def resolve(source: EncoderSource):
    """(modality, spec, encoder_for_seed) for a source."""
    from selfsup.registry import get_modality
    from selfsup.training.build import build_encoder_from_spec, load_encoder

    if source.run:
        encoder, spec = load_encoder(source.run)
        modality, _ = build_encoder_from_spec(spec)
        return modality, spec, lambda seed: encoder
    if not source.modality:
        raise ConfigError("--random-init needs --modality")
    modality = get_modality(source.modality, **(source.modality_options or {}))
    spec = {"modality": modality.name, "encoder": source.encoder or modality.default_encoder,
            "encoder_kwargs": dict(source.encoder_options or {})}
    return modality, spec, None


def probe_inputs(source: EncoderSource, data: str | SampleDataset, test: str | SampleDataset | None = None):
    """(modality, spec, encoder_for_seed, train_set, test_set, split): what a probe of ``source`` measures."""
    modality, spec, encoder_for_seed = resolve(source)
    train_set = data if isinstance(data, SampleDataset) else modality.open(data)
    if test is None:
        train_set, test_set, split = split_dataset(train_set)
    else:
        test_set = test if isinstance(test, SampleDataset) else modality.open(test)
        train_set = train_set.subset(labelled_indices(train_set))
        test_set = test_set.subset(labelled_indices(test_set))
        split = f"given test set {test_set.source}"
    if encoder_for_seed is None:
        kwargs = {**modality.encoder_kwargs(train_set), **spec["encoder_kwargs"]}
        spec["encoder_kwargs"] = kwargs

        def encoder_for_seed(seed: int):
            torch.manual_seed(seed)
            return modality.build_encoder(spec["encoder"], **kwargs).eval()

    modality.check_input(train_set, encoder_for_seed(0))
    return modality, spec, encoder_for_seed, train_set, test_set, split


def run_probe(source: EncoderSource, data: str | SampleDataset, test: str | SampleDataset | None = None,
              protocol: str = "linear", label_fraction: float | None = None, labels_per_class: int | None = None,
              seeds: int = 3, out_dir: str | Path | None = None, progress: bool = False,
              finetune_options: dict | None = None, label_draws: int = 1) -> tuple[Evaluation, dict[str, Any]]:
    modality, spec, encoder_for_seed, train_set, test_set, split = probe_inputs(source, data, test)
    result = evaluate(encoder_for_seed, train_set, test_set, protocol, label_fraction, labels_per_class, seeds,
                      progress, finetune_options, label_draws=label_draws)
    info = {"encoder": source.describe(spec), "data": train_set.source, "split": split,
            "labels": _label_budget(label_fraction, labels_per_class, result.label_draws), "plots": []}
    if out_dir is not None:
        info["plots"] = _plots(result, test_set, Path(out_dir), protocol, info["labels"])
    result.extra.update({k: v for k, v in info.items() if k != "plots"}, plots=[str(p) for p in info["plots"]])
    return result, info


def _label_budget(fraction, per_class, draws: int = 1) -> str:
    each = f", the mean of {draws} draws per seed" if draws > 1 else ""
    if per_class is not None:
        return f"{per_class} per class{each}"
    if fraction is not None:
        return f"{fraction:g} of the training labels{each}"
    return "all training labels"


def _plots(result: Evaluation, test_set: SampleDataset, out: Path, protocol: str, labels: str) -> list[Path]:
    from selfsup.evaluation.plots import plot_confusion, plot_embedding_map

    names = test_set.class_names or [str(i) for i in range(int(test_set.labels.max()) + 1)]
    paths = [plot_confusion(test_set.labels, result.predictions, names, out / f"confusion_{protocol}.png",
                            f"{protocol} probe, {labels}: accuracy {result.summary['accuracy']:.3f}")]
    if result.test_embeddings is not None:
        paths.append(plot_embedding_map(result.test_embeddings, test_set.labels, names, out / "embedding_map.png",
                                        "t-SNE of test embeddings"))
    return paths


def format_evaluation(result: Evaluation, info: dict[str, Any]) -> str:
    lines = [f"probe: {result.protocol} on {info['data']}, split {info['split']}",
             f"encoder: {info['encoder']}; labels: {info['labels']} ({result.n_train} train, {result.n_test} test); "
             f"{len(result.per_seed)} seed(s)"]
    for metric in ("accuracy", "macro_f1", "kappa"):
        lines.append(f"  {metric:<9} {result.summary[metric]:.3f} ± {result.summary[metric + '_std']:.3f}")
    if info.get("plots"):
        lines.append("plots: " + ", ".join(str(p) for p in info["plots"]))
    return "\n".join(lines)


__all__ = ["EncoderSource", "run_probe", "format_evaluation"]
