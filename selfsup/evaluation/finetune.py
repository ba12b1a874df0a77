"""Fine-tuning: the encoder and a linear head trained together on the labelled subset.

From a random initialisation this is the supervised-from-scratch baseline, so both use the
same code, optimiser and budget: ``epochs`` passes over the labelled subset but never fewer
than ``min_steps`` optimiser steps (few labels would otherwise give a handful of steps).
"""

from __future__ import annotations

import copy

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from selfsup.datasets.base import SampleDataset
from selfsup.encoders.base import Encoder
from selfsup.objectives.supervised import Supervised
from selfsup.training.data import make_loader
from selfsup.training.module import SelfSupervisedModule


def finetune_predict(encoder: Encoder, train_set: SampleDataset, test_set: SampleDataset, num_classes: int,
                     seed: int = 0, epochs: int = 30, min_steps: int = 300, lr: float = 1e-3,
                     batch_size: int = 64, accelerator: str = "auto") -> np.ndarray:
    """Train a copy of ``encoder`` with a linear head; return its predictions on ``test_set``."""
    from selfsup.training.run import _quiet_lightning

    _quiet_lightning()
    pl.seed_everything(seed, verbose=False)
    encoder = copy.deepcopy(encoder).train()
    head = Supervised(encoder, num_classes, dropout=0.1)
    module = SelfSupervisedModule(encoder, head, lr=lr, weight_decay=1e-4, seed=seed, data_source=train_set.source)
    batch_size = min(batch_size, len(train_set))
    steps = max(min_steps, epochs * (len(train_set) // batch_size))
    # One long epoch of `steps` batches, reshuffled whenever the labelled set is exhausted.
    loader = make_loader(train_set, batch_size, train=True, seed=seed, samples_per_epoch=steps * batch_size)
    trainer = pl.Trainer(max_epochs=1, max_steps=steps, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         accelerator=accelerator, devices=1)
    trainer.fit(module, loader)
    encoder.eval()
    device = next(encoder.parameters()).device
    preds = []
    with torch.no_grad():
        for batch in DataLoader(test_set, batch_size=256):
            preds.append(head.head(encoder.embed(batch["x"].to(device))).argmax(-1).cpu())
    return torch.cat(preds).numpy()
