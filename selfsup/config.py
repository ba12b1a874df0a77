"""The resolved configuration of a pretraining run: defaults < config file < CLI flags < --set.

Written to ``RUN/config.yaml`` so that a run can be resumed or reproduced from its folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from selfsup.errors import ConfigError


@dataclass
class PretrainConfig:
    modality: str = "sensor"
    data: str = "builtin:watch"
    out: str = "runs/pretrain"
    encoder: str | None = None                  # None: the modality's default
    objective: str | None = None                # "name" or "name:weight,name:weight" (multi-task)
    modality_options: dict[str, Any] = field(default_factory=dict)
    encoder_options: dict[str, Any] = field(default_factory=dict)
    objective_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 0
    seed: int = 0
    val_fraction: float = 0.1                   # held out to report pretext metrics on unseen samples
    num_workers: int = 0
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    accumulate_grad_batches: int = 1
    sync_batchnorm: bool = False
    channels_last: bool = False
    on_nonfinite_loss: str = "stop"             # "stop" or "skip" the batch
    bad_samples: str = "stop"                   # "stop" at an unreadable sample, or "skip" and list it
    limit_train_batches: float | int = 1.0
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        from selfsup.io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "PretrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "PretrainConfig":
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: no such config file")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys")
        return cls.from_dict(values)


def apply_overrides(config: PretrainConfig, overrides: list[str]) -> PretrainConfig:
    """Apply ``key=value`` strings; nested option dicts take ``objective_options.temperature=0.2``.

    Values are parsed as YAML scalars (numbers, booleans, lists), so ``--set lr=3e-4`` is a float.
    """
    values = config.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        head, _, rest = key.partition(".")
        if head not in values:
            raise ConfigError(f"unknown config key {head!r} in --set {item}")
        if rest:
            if not isinstance(values[head], dict):
                raise ConfigError(f"{head} is not a group of options; cannot set {key}")
            values[head] = {**values[head], rest: value}
        else:
            values[head] = value
    return PretrainConfig.from_dict(values)
