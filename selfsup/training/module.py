"""The LightningModule that trains any (encoder, objective) pair; Lightning does the rest."""

from __future__ import annotations

import math
import random
import warnings

import lightning.pytorch as pl
import numpy as np
import torch

from selfsup.encoders.base import Encoder
from selfsup.errors import SelfsupError
from selfsup.objectives.base import Objective


class NonFiniteLossError(SelfsupError):
    """The training loss became NaN or inf."""


def seed_epoch(seed: int, epoch: int, rank: int = 0, phase: int = 0) -> None:
    """Reseed every generator from (seed, epoch, rank, phase), so that a run resumed from an
    epoch checkpoint draws exactly the augmentations the uninterrupted run drew."""
    s = (seed * 1_000_003 + epoch * 7919 + rank * 31 + phase) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


class SelfSupervisedModule(pl.LightningModule):
    def __init__(self, encoder: Encoder, objective: Objective, lr: float = 1e-3, weight_decay: float = 1e-4,
                 warmup_epochs: int = 0, seed: int = 0, on_nonfinite_loss: str = "stop",
                 data_source: str = "", extra_checkpoint: dict | None = None):
        super().__init__()
        if on_nonfinite_loss not in ("stop", "skip"):
            raise ValueError("on_nonfinite_loss must be 'stop' or 'skip'")
        self.encoder, self.objective = encoder, objective
        self.lr, self.weight_decay, self.warmup_epochs, self.seed = lr, weight_decay, warmup_epochs, seed
        self.on_nonfinite_loss, self.data_source = on_nonfinite_loss, data_source
        self.extra_checkpoint = extra_checkpoint or {}
        self.skipped_batches = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.embed(x)

    # -- steps -----------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        if batch is None:                       # every sample of the batch was skipped as bad
            return None
        out = self.objective(batch, self.encoder)
        if not torch.isfinite(out.loss):
            where = (f"the training loss is {out.loss.item()} at step {self.global_step} (epoch {self.current_epoch}, "
                     f"batch {batch_idx} of {self.data_source}, first sample indices "
                     f"{batch['index'][:8].tolist() if 'index' in batch else '?'})")
            if self.on_nonfinite_loss == "skip":
                self.skipped_batches += 1
                warnings.warn(where + "; batch skipped", stacklevel=1)
                return None
            raise NonFiniteLossError(where + "; lower the learning rate, check the data for extreme values, "
                                     "or set on_nonfinite_loss=skip")
        n = len(batch["x"])
        self.log("train/loss", out.loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=n, sync_dist=True)
        for name, value in out.metrics.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=n, sync_dist=True,
                     prog_bar=name == "pretext_acc")
        return out.loss

    def validation_step(self, batch, batch_idx):
        if batch is None:
            return
        out = self.objective(batch, self.encoder)
        n = len(batch["x"])
        self.log("val/loss", out.loss, on_epoch=True, batch_size=n, sync_dist=True)
        for name, value in out.metrics.items():
            self.log(f"val/{name}", value, on_epoch=True, batch_size=n, sync_dist=True)

    # -- hooks -----------------------------------------------------------------------------
    def on_train_epoch_start(self):
        seed_epoch(self.seed, self.current_epoch, self.global_rank, phase=0)
        logged = self.objective.on_train_epoch_start(self.encoder, self.trainer.train_dataloader, self.current_epoch)
        for name, value in logged.items():
            self.log(f"train/{name}", float(value), on_epoch=True, on_step=False, sync_dist=True)

    def on_train_batch_start(self, batch, batch_idx):
        # Lightning creates the epoch's data iterator (which draws from the global generator)
        # at different moments in fresh and resumed runs; reseeding again here makes the steps
        # themselves independent of that.
        if batch_idx == 0:
            seed_epoch(self.seed, self.current_epoch, self.global_rank, phase=1)

    def optimizer_step(self, *args, **kwargs):
        super().optimizer_step(*args, **kwargs)
        self.objective.on_after_optimizer_step(self.encoder)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["selfsup"] = self.extra_checkpoint

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(total - 1, self.warmup_epochs * max(1, total // max(1, self.trainer.max_epochs)))

        def schedule(step: int) -> float:  # linear warm-up, then cosine decay to 0
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
