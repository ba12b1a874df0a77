"""What every modality provides: how to read its data, which encoders and objectives fit it.

A modality turns a path into a ``SampleDataset``, derives encoder arguments from the data
(channels, lengths ...), and offers named encoders and objectives to the CLI: a dict from
names to entries, nothing more. Objectives get from the modality what is modality-specific
(its transformation vocabulary, its way of making two views) and stay generic themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from selfsup.datasets.base import SampleDataset
from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError


class Transformation(nn.Module):
    """A batched transformation of samples: parameters in ``__init__``, tensors in ``forward``.

    ``forward(x)`` takes a batch (B, ...) and returns a batch of the same shape, drawing its
    random parameters per sample from torch's generator (so a seeded run repeats).
    """

    name: str = "transformation"

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in vars(self).items() if not k.startswith("_") and k != "training")


@dataclass(frozen=True)
class Entry:
    """A named choice offered to the CLI: a factory and the line ``selfsup list`` prints."""

    factory: Callable[..., Any]
    description: str


class Modality:
    name: ClassVar[str]
    description: ClassVar[str]
    default_encoder: ClassVar[str]
    default_objective: ClassVar[str]
    encoders: ClassVar[dict[str, Entry]]
    objectives: ClassVar[dict[str, Entry]]

    def __init__(self, **options: Any):
        self.options = options

    # -- data ------------------------------------------------------------------------------
    def open(self, path: str | Path) -> SampleDataset:
        """Any data this modality can use: a pre-decoded shard store, or what ``load`` reads."""
        from selfsup.datasets.shards import ShardDataset, is_shard_store

        if is_shard_store(path):
            return ShardDataset(path, expect_modality=self.name)
        return self.load(path)

    def load(self, path: str | Path) -> SampleDataset:  # pragma: no cover - abstract
        """The modality's own formats (files, folders, builtin:NAME)."""
        raise NotImplementedError

    def encoder_kwargs(self, dataset: SampleDataset) -> dict[str, Any]:
        """Arguments that the data fixes for every encoder of this modality (e.g. in_channels)."""
        return {}

    def check_input(self, dataset: SampleDataset, encoder: Encoder) -> None:
        """Raise a DataError when the data cannot go through the encoder (too short ...)."""

    # -- building --------------------------------------------------------------------------
    def build_encoder(self, name: str | None, **kwargs: Any) -> Encoder:
        name = name or self.default_encoder
        return _pick(self.encoders, name, "encoder", self.name).factory(**kwargs)

    def build_objective(self, name: str | None, encoder: Encoder, dataset: SampleDataset | None = None,
                        **options: Any):
        name = name or self.default_objective
        entry = _pick(self.objectives, name, "objective", self.name)
        try:
            objective = entry.factory(encoder, self, dataset, **options)
        except TypeError as exc:
            if "unexpected keyword argument" not in str(exc):
                raise
            raise ConfigError(f"objective '{name}': {exc} (see objective_options in the docs)") from None
        from selfsup.encoders.base import require_output

        require_output(encoder, objective.requires, name)
        return objective

    def batch_to(self, batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _pick(table: dict[str, Entry], name: str, what: str, modality: str) -> Entry:
    if name not in table:
        raise ConfigError(f"unknown {what} '{name}' for modality '{modality}'; choose from: {', '.join(table)}")
    return table[name]
