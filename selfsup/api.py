"""The short path for notebooks and scripts: pretrain, load an encoder, embed new data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.datasets.base import ArrayDataset, SampleDataset


def _as_dataset(data, labels=None, subjects=None, modality=None) -> SampleDataset:
    if isinstance(data, SampleDataset):
        return data
    if isinstance(data, (str, Path)):
        if modality is None:
            raise ValueError("loading a path needs the modality")
        return modality.open(data)
    return ArrayDataset(data, labels, subjects)


def pretrain(data, modality: str = "sensor", objective: str | None = None, encoder: str | None = None,
             out: str | Path = "runs/pretrain", labels=None, subjects=None, resume: bool = False, **config: Any):
    """Pretrain on a path, a ``SampleDataset`` or an array of samples (N, ...), e.g. sensor
    windows (N, C, T). Other keyword arguments are ``PretrainConfig`` fields (epochs,
    batch_size, lr, objective_options ...). Returns a ``RunResult`` (run_dir, encoder, metrics).
    """
    from selfsup.config import PretrainConfig
    from selfsup.registry import get_modality
    from selfsup.training.run import pretrain as run_pretrain

    cfg = PretrainConfig.from_dict({"modality": modality, "objective": objective, "encoder": encoder,
                                    "out": str(out), "data": str(data) if isinstance(data, (str, Path)) else "<memory>",
                                    **config})
    dataset = _as_dataset(data, labels, subjects, get_modality(modality, **cfg.modality_options))
    return run_pretrain(cfg, dataset, resume=resume)


def load_encoder(run: str | Path):
    """The trained encoder of a run folder (or an ``encoder.pt``), in eval mode, on the CPU."""
    from selfsup.training.build import load_encoder as _load

    encoder, spec = _load(run)
    encoder.selfsup_spec = spec
    return encoder


def embed(encoder, data, batch_size: int = 256) -> np.ndarray:
    """(N, D) embeddings of a path, a dataset, or an array/tensor of samples (N, ...)."""
    from selfsup.evaluation.features import extract_embeddings
    from selfsup.registry import get_modality

    modality = None
    spec = getattr(encoder, "selfsup_spec", None)
    if spec is not None:
        modality = get_modality(spec["modality"], **spec.get("modality_options", {}))
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu()
    return extract_embeddings(encoder, _as_dataset(data, modality=modality), batch_size=batch_size)
