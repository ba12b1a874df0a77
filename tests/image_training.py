"""Helpers for the image objective tests: pretrain through the real pipeline on real digits,
then rebuild the trained objective from the run's checkpoint to measure it on held-out data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from selfsup.config import PretrainConfig
from selfsup.datasets.base import SampleDataset
from selfsup.encoders.base import Encoder
from selfsup.modalities.image import ImageModality
from selfsup.objectives.base import Objective
from selfsup.training.checkpoint import loadable_checkpoint
from selfsup.training.run import pretrain

from run_logs import epoch_losses


@dataclass
class Trained:
    encoder: Encoder
    objective: Objective
    epoch_losses: list[float]
    metrics: dict


def digits_split(size: int | None = None, n_test: int = 297, seed: int = 0):
    """(train, test): real digits, a fixed random held-out part the training never sees."""
    data = ImageModality(size=size).load("builtin:digits")
    order = np.random.default_rng(seed).permutation(len(data))
    return data.subset(np.sort(order[n_test:])), data.subset(np.sort(order[:n_test]))


def train(objective: str, data: SampleDataset, out, epochs: int, batch_size: int = 128, lr: float = 1e-3,
          **objective_options) -> Trained:
    config = PretrainConfig(modality="image", data="<digits>", out=str(out), objective=objective, epochs=epochs,
                            batch_size=batch_size, lr=lr, objective_options=objective_options, progress=False)
    result = pretrain(config, dataset=data)
    modality = ImageModality()
    kwargs = modality.encoder_kwargs(data)
    built = modality.build_objective(objective, modality.build_encoder(None, **kwargs), data, **objective_options)
    state = torch.load(loadable_checkpoint(out), map_location="cpu", weights_only=False)["state_dict"]
    built.load_state_dict({k[len("objective."):]: v for k, v in state.items() if k.startswith("objective.")})
    return Trained(result.encoder.eval(), built.eval(), epoch_losses(out), result.metrics)


def untrained(objective: str, data: SampleDataset, **objective_options) -> Trained:
    """The encoder and objective as a run starts them (same seed), before any step."""
    torch.manual_seed(0)
    modality = ImageModality()
    encoder = modality.build_encoder(None, **modality.encoder_kwargs(data))
    built = modality.build_objective(objective, encoder, data, **objective_options)
    return Trained(encoder.eval(), built.eval(), [], {})


def whole(data: SampleDataset) -> dict[str, torch.Tensor]:
    """The dataset as one batch."""
    return {key: torch.stack([data[i][key] for i in range(len(data))]) for key in ("x", "y", "index")}


@torch.no_grad()
def held_out_metrics(trained: Trained, data: SampleDataset, train_mode: bool = False) -> dict[str, float]:
    """The objective's own metrics on unseen samples, as one batch (eval mode: BatchNorm's
    running statistics; ``train_mode``: the batch's own, as in training)."""
    torch.manual_seed(123)
    trained.objective.train(train_mode)
    trained.encoder.train(train_mode)
    try:
        out = trained.objective(whole(data), trained.encoder)
    finally:
        trained.objective.eval()
        trained.encoder.eval()
    return {"loss": float(out.loss), **{k: float(v) for k, v in out.metrics.items()}}
