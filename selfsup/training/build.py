"""Building encoders and objectives from names, and saving/loading a trained encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from selfsup.datasets.base import SampleDataset
from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError, SelfsupError
from selfsup.io import atomic_path
from selfsup.modalities.base import Modality
from selfsup.objectives.base import Objective
from selfsup.objectives.multitask import MultiTask
from selfsup.registry import get_modality

ENCODER_FILE = "encoder.pt"


def encoder_spec(modality: Modality, encoder_name: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to rebuild the encoder's architecture (weights go beside it)."""
    return {"modality": modality.name, "modality_options": dict(modality.options),
            "encoder": encoder_name or modality.default_encoder, "encoder_kwargs": dict(kwargs)}


def build_encoder_from_spec(spec: dict[str, Any]) -> tuple[Modality, Encoder]:
    modality = get_modality(spec["modality"], **spec.get("modality_options", {}))
    return modality, modality.build_encoder(spec["encoder"], **spec["encoder_kwargs"])


def parse_objective(spec: str | None) -> list[tuple[str, float]] | None:
    """'rotation' -> None (single); 'rotation:1,jigsaw:0.5' -> [(rotation, 1.0), (jigsaw, 0.5)]."""
    if spec is None or ("," not in spec and ":" not in spec):
        return None
    parts = []
    for item in spec.split(","):
        name, _, weight = item.strip().partition(":")
        try:
            parts.append((name.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise ConfigError(f"bad weight {weight!r} for objective {name!r} in {spec!r}") from None
    return parts


def build_objective(modality: Modality, spec: str | None, encoder: Encoder, dataset: SampleDataset | None,
                    options: dict[str, Any] | None = None) -> Objective:
    """One objective by name, or a weighted multi-task sum ('a:1,b:0.5'); options of a part of a
    multi-task objective go under its name (``objective_options: {rotation: {...}}``)."""
    options = dict(options or {})
    parts = parse_objective(spec)
    if parts is None:
        return modality.build_objective(spec, encoder, dataset, **options)
    names = [n for n, _ in parts]
    if len(set(names)) != len(names):
        raise ConfigError(f"an objective appears twice in {spec!r}")
    built = {n: modality.build_objective(n, encoder, dataset, **options.get(n, {})) for n in names}
    return MultiTask(built, dict(parts))


def save_encoder(path: str | Path, encoder: Encoder, spec: dict[str, Any]) -> Path:
    from selfsup import __version__

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"spec": spec, "state_dict": encoder.state_dict(), "selfsup_version": __version__}, tmp)
    return path


def load_encoder(run_or_file: str | Path) -> tuple[Encoder, dict[str, Any]]:
    """A trained encoder (in eval mode) and its spec, from a run folder or an encoder file.

    A run whose training was interrupted before ``encoder.pt`` was written still loads from
    its newest readable checkpoint.
    """
    from selfsup.training.checkpoint import loadable_checkpoint

    path = Path(run_or_file)
    if path.is_dir():
        if (path / ENCODER_FILE).exists():
            path = path / ENCODER_FILE
        else:
            ckpt = loadable_checkpoint(path)
            if ckpt is None:
                raise SelfsupError(f"{path}: not a run folder (no {ENCODER_FILE} and no readable checkpoint)")
            return _encoder_from_checkpoint(ckpt)
    if not path.exists():
        raise SelfsupError(f"{path}: no such run folder or encoder file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        spec, state = saved["spec"], saved["state_dict"]
    except Exception as exc:
        raise SelfsupError(f"{path}: not a readable selfsup encoder file ({exc.__class__.__name__})") from None
    _, encoder = build_encoder_from_spec(spec)
    encoder.load_state_dict(state)
    return encoder.eval(), spec


def _encoder_from_checkpoint(path: Path) -> tuple[Encoder, dict[str, Any]]:
    saved = torch.load(path, map_location="cpu", weights_only=False)
    spec = saved.get("selfsup", {}).get("encoder_spec")
    if spec is None:
        raise SelfsupError(f"{path}: checkpoint has no encoder description")
    _, encoder = build_encoder_from_spec(spec)
    prefix = "encoder."
    encoder.load_state_dict({k[len(prefix):]: v for k, v in saved["state_dict"].items() if k.startswith(prefix)})
    return encoder.eval(), spec
