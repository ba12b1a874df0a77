"""Small heads that objectives put on top of an encoder."""

from __future__ import annotations

from torch import nn


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2, batch_norm: bool = False) -> nn.Sequential:
    """A ``layers``-deep MLP: (Linear [BN] ReLU) x (layers - 1), then Linear. ``layers=1`` is linear."""
    mods, d = [], in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden)] + ([nn.BatchNorm1d(hidden)] if batch_norm else []) + [nn.ReLU(inplace=True)]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)
