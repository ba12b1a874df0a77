"""The encoder contract shared by every modality.

An encoder is an ``nn.Module`` whose ``forward`` gives its natural output, declared in
``output_kind``:

    "vector":   (B, D)
    "sequence": (B, T', D)       one vector per time step (T' depends on T and the strides)
    "map":      (B, D, H', W')   a spatial feature map

and whose ``embed`` gives the (B, ``embed_dim``) representation that evaluation uses (the
encoder's own pooling of its output). Objectives that only need a vector per sample call
``embed``; the others check ``output_kind`` (``require_output``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from selfsup.errors import ConfigError

OUTPUT_KINDS = ("vector", "sequence", "map")


class Encoder(nn.Module):
    output_kind: ClassVar[str] = "vector"
    embed_dim: int
    #: channels D of ``forward``'s output (equal to ``embed_dim`` unless pooling changes it)
    feature_dim: int
    #: for sequence inputs: the fewest input time steps that give at least one output step
    min_input_length: int = 1

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ...) input -> (B, embed_dim). Default: the encoder's pooling of ``forward``."""
        return self.pool(self(x))

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """Pool ``forward``'s output to (B, D); sequences and maps: max over time / space."""
        if self.output_kind == "vector":
            return features
        if self.output_kind == "sequence":
            return features.amax(dim=1)
        return features.flatten(2).amax(dim=2)

    def layer_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features from several depths, shallow to deep, for per-layer probes. Default: the output."""
        return {"output": self.embed(x)}


def require_output(encoder: Encoder, kinds: tuple[str, ...] | str, objective: str) -> None:
    """Raise a ConfigError when an objective needs an output the encoder does not give."""
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    if encoder.output_kind not in kinds:
        raise ConfigError(
            f"objective '{objective}' needs an encoder with {' or '.join(kinds)} output; "
            f"{type(encoder).__name__} gives '{encoder.output_kind}'")
