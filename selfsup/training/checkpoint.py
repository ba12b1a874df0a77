"""Checkpoints that a crash cannot corrupt, and finding the newest one that still loads."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from selfsup.io import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into a temporary file beside the target, fsync, then rename over it."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def checkpoint_candidates(run_dir: str | Path) -> list[Path]:
    """last.ckpt first, then the per-epoch checkpoints, newest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    epochs = sorted(folder.glob("epoch*.ckpt"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    last = folder / "last.ckpt"
    return ([last] if last.exists() else []) + epochs


def loadable_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint that torch can read; corrupt ones are skipped with a warning."""
    for path in checkpoint_candidates(run_dir):
        try:
            torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # any unreadable file: truncated zip, garbage, empty ...
            warnings.warn(f"{path}: checkpoint is unreadable ({exc.__class__.__name__}); "
                          f"falling back to an older one", stacklevel=2)
            continue
        return path
    return None


def has_checkpoints(run_dir: str | Path) -> bool:
    return bool(checkpoint_candidates(run_dir))


__all__ = ["AtomicCheckpointIO", "checkpoint_candidates", "loadable_checkpoint", "has_checkpoints"]
