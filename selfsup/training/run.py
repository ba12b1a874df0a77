"""``pretrain``: one self-supervised run from a config into a run folder.

RUN/
  config.yaml        the resolved configuration (resume and reproduce from it)
  checkpoints/       last.ckpt and the two newest epoch checkpoints, written atomically
  encoder.pt         the trained encoder (architecture spec + weights)
  metrics.json       final pretext metrics, epochs, wall time
  bad_samples.tsv    with bad_samples=skip: every skipped sample (index, file, problem)
  logs/              TensorBoard and CSV logs; curves.png plots the CSV
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from selfsup.config import PretrainConfig
from selfsup.datasets.base import SampleDataset, read_bad_samples
from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError
from selfsup.io import write_json
from selfsup.registry import get_modality
from selfsup.training.build import ENCODER_FILE, build_objective, encoder_spec, save_encoder
from selfsup.training.checkpoint import AtomicCheckpointIO, has_checkpoints, loadable_checkpoint
from selfsup.training.data import make_loader, validation_split
from selfsup.training.module import SelfSupervisedModule


@dataclass
class RunResult:
    run_dir: Path
    encoder: Encoder
    metrics: dict[str, Any]


def _quiet_lightning() -> None:
    import logging

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*", ".*Experiment logs directory.*exists.*",
                    ".*The number of training batches.*", ".*Checkpoint directory.*exists and is not empty.*",
                    ".*You called `self.log\\(.*, \\.\\.\\.\\)` in your `on_train_epoch_start`.*",
                    ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
                    ".*You defined a `validation_step` but have no `val_dataloader`.*",
                    ".*`training_step` returned `None`.*"):
        warnings.filterwarnings("ignore", pattern)


def _bad_sample_log(config: PretrainConfig, run: Path, *datasets) -> Path | None:
    if config.bad_samples not in ("stop", "skip"):
        raise ConfigError(f"bad_samples must be 'stop' or 'skip', got {config.bad_samples!r}")
    if config.bad_samples == "stop":
        return None
    log = run / "bad_samples.tsv"
    run.mkdir(parents=True, exist_ok=True)
    for d in datasets:
        if d is not None:
            d.bad_sample_log = log
    return log


def pretrain(config: PretrainConfig, dataset: SampleDataset | None = None, resume: bool = False,
             callbacks: list[pl.Callback] | None = None) -> RunResult:
    """Train ``config.objective`` on ``config.data`` (or ``dataset``) and fill the run folder.
    ``callbacks``: extra Lightning callbacks (timers, early stopping ...)."""
    _quiet_lightning()
    run = Path(config.out)
    ckpt = None
    if resume:
        ckpt = loadable_checkpoint(run)
        if ckpt is None and has_checkpoints(run):
            raise ConfigError(f"{run}: every checkpoint is unreadable; cannot resume")
    elif has_checkpoints(run):
        raise ConfigError(f"{run} already holds a run; pass --resume to continue it or choose another --out")

    pl.seed_everything(config.seed, workers=True, verbose=False)
    modality = get_modality(config.modality, **config.modality_options)
    if dataset is None:
        dataset = modality.open(config.data)
    encoder_kwargs = {**modality.encoder_kwargs(dataset), **config.encoder_options}
    encoder = modality.build_encoder(config.encoder, **encoder_kwargs)
    modality.check_input(dataset, encoder)
    objective = build_objective(modality, config.objective, encoder, dataset, config.objective_options)
    if config.channels_last:
        encoder = encoder.to(memory_format=torch.channels_last)
    spec = encoder_spec(modality, config.encoder, encoder_kwargs)

    train_set, val_set = validation_split(dataset, config.val_fraction, config.seed)
    bad_log = _bad_sample_log(config, run, train_set, val_set)
    pin = torch.cuda.is_available() and config.accelerator != "cpu"
    train_loader = make_loader(train_set, config.batch_size, True, config.seed, config.num_workers, pin)
    val_loader = None if val_set is None else make_loader(val_set, config.batch_size, False, 0, config.num_workers, pin)

    module = SelfSupervisedModule(encoder, objective, config.lr, config.weight_decay, config.warmup_epochs,
                                  config.seed, config.on_nonfinite_loss, data_source=dataset.source,
                                  extra_checkpoint={"encoder_spec": spec, "config": config.to_dict()})
    checkpoints = pl.callbacks.ModelCheckpoint(
        dirpath=run / "checkpoints", filename="epoch{epoch:03d}", auto_insert_metric_name=False,
        save_last=True, save_top_k=2, monitor="epoch", mode="max", every_n_epochs=1)
    loggers = [pl.loggers.CSVLogger(run / "logs", name="csv"),
               pl.loggers.TensorBoardLogger(run / "logs", name="tensorboard", default_hp_metric=False)]
    steps_per_epoch = max(1, len(train_loader))
    trainer = pl.Trainer(
        max_epochs=config.epochs, accelerator=config.accelerator, devices=config.devices,
        num_nodes=config.num_nodes, strategy=config.strategy, precision=config.precision,
        accumulate_grad_batches=config.accumulate_grad_batches, sync_batchnorm=config.sync_batchnorm,
        callbacks=[checkpoints, *(callbacks or [])], logger=loggers, plugins=[AtomicCheckpointIO()],
        enable_progress_bar=config.progress, enable_model_summary=False,
        log_every_n_steps=min(10, steps_per_epoch), limit_train_batches=config.limit_train_batches,
        num_sanity_val_steps=0, default_root_dir=run)
    if trainer.is_global_zero:
        run.mkdir(parents=True, exist_ok=True)
        config.save(run / "config.yaml")

    started = time.perf_counter()
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(ckpt) if ckpt else None)
    seconds = time.perf_counter() - started

    if bad_log and read_bad_samples(bad_log):
        warnings.warn(f"skipped {len(read_bad_samples(bad_log))} unreadable sample(s); they are listed in {bad_log}",
                      stacklevel=2)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    metrics.update(epochs=trainer.current_epoch, steps=trainer.global_step, train_seconds=round(seconds, 2),
                   skipped_batches=module.skipped_batches, resumed_from=str(ckpt) if ckpt else None,
                   n_train=len(train_set), n_val=0 if val_set is None else len(val_set),
                   bad_samples=len(read_bad_samples(bad_log)) if bad_log else 0)
    encoder = module.encoder.cpu().eval()
    if trainer.is_global_zero:
        save_encoder(run / ENCODER_FILE, encoder, spec)
        write_json(run / "metrics.json", metrics)
        from selfsup.evaluation.plots import plot_training_curves

        plot_training_curves(run / "logs" / "csv", run / "curves.png")
    return RunResult(run, encoder, metrics)
