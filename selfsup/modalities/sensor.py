"""Wearable-sensor windows: (C, T) per sample, e.g. a 6-axis IMU at 50 Hz, batched as (B, C, T)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from selfsup.datasets.base import ArrayDataset, SampleDataset
from selfsup.datasets.hdf5 import read_hdf5
from selfsup.datasets.windows import majority_labels, window_starts
from selfsup.encoders.base import Encoder
from selfsup.encoders.dilated_conv import DilatedConvEncoder
from selfsup.encoders.temporal_conv import ResNet1dEncoder, TPNEncoder
from selfsup.errors import ConfigError, DataError
from selfsup.modalities import sequence_transforms as st
from selfsup.modalities.base import Entry, Modality
from selfsup.objectives.contrastive import SimCLR
from selfsup.objectives.cpc import CPC
from selfsup.objectives.hierarchical_contrast import HierarchicalContrast
from selfsup.objectives.transformation import TransformationPrediction

BUILTIN = {"watch": "seglearn smartwatch: 6-axis IMU, 50 Hz, 7 shoulder exercises, 10 subjects (2 s windows)"}


def infer_channel_groups(names: list[str] | None, channels: int) -> list[list[int]] | None:
    """Tri-axial groups from channel names (acc_x/acc_y/acc_z, ax/ay/az ...), else none.

    Only names can say which channels form a 3-D sensor; without them rotation is unavailable
    rather than guessed.
    """
    if not names:
        return None
    groups, by_stem = [], {}
    for i, name in enumerate(names):
        m = re.fullmatch(r"(.*?)[_.\-]?([xyz])", name.strip().lower())
        if m:
            by_stem.setdefault(m.group(1), {})[m.group(2)] = i
    for axes in by_stem.values():
        if set(axes) == {"x", "y", "z"}:
            groups.append([axes["x"], axes["y"], axes["z"]])
    return sorted(groups) or None


class SensorModality(Modality):
    name = "sensor"
    description = "wearable-sensor windows (B, C, T): accelerometer, gyroscope ... from HDF5 or built-in sets"
    # TS2Vec-style contrast on dilated convolutions: on held-out watch subjects it beats a random
    # encoder and supervised training from scratch, where TPN's transformation prediction does not
    # (BENCHMARKS.md, HAR). TPN stays one flag away: --encoder tpn --objective transformation.
    default_encoder = "dilated-conv"
    default_objective = "hierarchical-contrast"

    def __init__(self, window: int | None = None, step: int | None = None):
        super().__init__(window=window, step=step)
        self.window, self.step = window, step

    # -- data ------------------------------------------------------------------------------
    def load(self, path: str | Path) -> SampleDataset:
        path = str(path)
        if path.startswith("builtin:"):
            return self._load_builtin(path.split(":", 1)[1])
        if not path.endswith((".h5", ".hdf5")):
            if not Path(path).exists():
                raise DataError("no such file", path)
            raise DataError("sensor data must be an HDF5 file (.h5); convert CSV with 'selfsup convert-csv' "
                            "or a standard set with 'selfsup prepare'", path)
        data = read_hdf5(path)
        x, y, subject = data["x"], data["y"], data["subject"]
        if self.window:
            x, y, subject = self._cut(x, y, subject, path)
        elif y is not None and y.ndim == 2:
            raise DataError("'y' has a label per time step; pass a window length (--window) to cut windows", path)
        names = data["channel_names"]
        if names is not None and len(names) != x.shape[2]:
            raise DataError(f"{len(names)} channel names for {x.shape[2]} channels", path)
        info = {"sample_rate": data["sample_rate"], "channel_names": names,
                "channel_groups": infer_channel_groups(names, x.shape[2])}
        return ArrayDataset(np.ascontiguousarray(x.transpose(0, 2, 1)), y, subject,
                            data["class_names"], info, source=path)

    def _cut(self, x, y, subject, path):
        """Rows (N, T, C) -> windows (N * W, window, C) with their labels and subjects."""
        step = self.step or self.window
        starts = window_starts(x.shape[1], self.window, step)
        if len(starts) == 0:
            raise DataError(f"rows have {x.shape[1]} time steps, shorter than the window of {self.window}", path)
        per_row = len(starts)
        windows = x[:, starts[:, None] + np.arange(self.window)]         # (N, W, window, C)
        windows = windows.reshape(-1, self.window, x.shape[2])
        if y is not None:
            y = (np.repeat(y, per_row) if y.ndim == 1 else
                 np.concatenate([majority_labels(row, self.window, step) for row in y]))
        return windows, y, None if subject is None else np.repeat(subject, per_row)

    def _load_builtin(self, name: str) -> SampleDataset:
        if name != "watch":
            raise DataError(f"unknown built-in sensor dataset '{name}'; built-in: {', '.join(BUILTIN)}")
        from selfsup.datasets.watch import load_watch_windows

        d = load_watch_windows(self.window or 100, self.step or 50)
        info = {"sample_rate": d["sample_rate"], "channel_names": d["channel_names"],
                "channel_groups": d["channel_groups"]}
        return ArrayDataset(d["x"].transpose(0, 2, 1), d["y"], d["subject"], d["class_names"], info,
                            source="builtin:watch")

    def encoder_kwargs(self, dataset: SampleDataset) -> dict:
        return {"in_channels": int(dataset[0]["x"].shape[0])}

    def check_input(self, dataset: SampleDataset, encoder: Encoder) -> None:
        length = int(dataset[0]["x"].shape[-1])
        if length < encoder.min_input_length:
            raise DataError(f"windows of {length} time steps are shorter than the encoder's receptive field "
                            f"({encoder.min_input_length}); use longer windows or another encoder", dataset.source)

    # -- transformation vocabulary ---------------------------------------------------------
    @staticmethod
    def groups(dataset: SampleDataset | None):
        return None if dataset is None else dataset.info.get("channel_groups")

    def augmentation(self, dataset: SampleDataset | None) -> st.Transformation:
        """The view augmentation for contrastive objectives: random scale, rotation, noise, warp."""
        parts = [st.RandomApply(st.Scale(0.2)), st.RandomApply(st.TimeWarp()), st.AddNoise(0.05)]
        if self.groups(dataset):
            parts.insert(1, st.RandomApply(st.Rotate3d(self.groups(dataset))))
        return st.Compose(parts)


def _transformation(encoder, modality: SensorModality, dataset, form="binary", transformations=None, **kw):
    chosen = st.tpn_transformations(modality.groups(dataset))
    if transformations:
        names = [n.strip() for n in (transformations.split(",") if isinstance(transformations, str) else transformations)]
        unknown = set(names) - {t.name for t in chosen}
        if unknown:
            raise ConfigError(f"unknown or unavailable sensor transformation(s) {sorted(unknown)}; "
                              f"available: {[t.name for t in chosen]}")
        chosen = [t for t in chosen if t.name in names]
    if form == "multiclass":
        chosen = [st.Identity()] + chosen
    return TransformationPrediction(encoder, chosen, form=form, **kw)


def _simclr(encoder, modality: SensorModality, dataset, **kw):
    augment = modality.augmentation(dataset)
    return SimCLR(encoder, lambda batch: (augment(batch["x"]), augment(batch["x"])), **kw)


def _cpc(encoder, modality, dataset, **kw):
    return CPC(encoder, **kw)


def _hierarchical_contrast(encoder, modality, dataset, **kw):
    return HierarchicalContrast(encoder, **kw)


SensorModality.encoders = {
    "tpn": Entry(TPNEncoder, "TPN trunk: Conv1d 32@24, 64@16, 96@8, max-pool -> 96-d (small windows)"),
    "resnet1d": Entry(ResNet1dEncoder, "1-D ResNet, 3 stages of 2 residual blocks -> 256-d (longer windows)"),
    "dilated-conv": Entry(DilatedConvEncoder, "TS2Vec dilated residual convs, 64 channels, dilation 2^i -> 320-d "
                                              "per time step, max-pooled"),
}
SensorModality.objectives = {
    "transformation": Entry(_transformation, "which of 8 transformations was applied (TPN, binary heads; "
                                             "form=multiclass for one K-way head)"),
    "simclr": Entry(_simclr, "NT-Xent between two augmentations (scale, rotation, warp, noise) of a window"),
    "cpc": Entry(_cpc, "contrastive predictive coding of future latent steps (InfoNCE)"),
    "hierarchical-contrast": Entry(_hierarchical_contrast, "TS2Vec: instance + temporal contrast of two overlapping "
                                                           "masked crops at every time scale (use dilated-conv)"),
}
