"""Embeddings of a frozen encoder, computed one fixed way for every method compared.

Protocol (stated in BENCHMARKS.md): the encoder is put in eval mode (BatchNorm uses its
running statistics, dropout is off), gradients are off, and each sample's representation is
the encoder's ``embed`` (its own pooling of its output, e.g. max over time for TPN).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from selfsup.datasets.base import SampleDataset
from selfsup.encoders.base import Encoder


def _device(encoder: Encoder, device):
    if device is not None:
        return torch.device(device)
    p = next(encoder.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def extract_embeddings(encoder: Encoder, dataset: SampleDataset, batch_size: int = 256, device=None,
                       progress: bool = False, layers: bool = False) -> np.ndarray | dict[str, np.ndarray]:
    """(N, D) float32 embeddings of every sample, in dataset order.

    With ``layers=True``: {layer name: (N, D_layer)} from ``encoder.layer_features``.
    """
    device = _device(encoder, device)
    was_training = encoder.training
    encoder.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    parts: list = []
    try:
        for batch in tqdm(loader, desc="embedding", disable=not progress, leave=False):
            x = batch["x"].to(device)
            parts.append({k: v.float().cpu() for k, v in encoder.layer_features(x).items()} if layers
                         else encoder.embed(x).float().cpu())
    finally:
        encoder.train(was_training)
    if layers:
        return {k: torch.cat([p[k] for p in parts]).numpy() for k in parts[0]}
    return torch.cat(parts).numpy()
