"""Helpers for tests that train through the CLI: read a run's per-epoch training losses, and
check that a run learned (exit code 0, training loss falls, held-out metrics pass a check)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

from selfsup.cli import main


def epoch_losses(run: Path) -> list[float]:
    """train/loss_epoch of each epoch, from the newest CSV log of ``run``."""
    newest = sorted((Path(run) / "logs" / "csv").glob("version_*/metrics.csv"))[-1]
    with open(newest, newline="") as f:
        return [float(row["train/loss_epoch"]) for row in csv.DictReader(f) if row.get("train/loss_epoch")]


def assert_cli_learns(argv: list[str], run: Path, epochs: int, learned: Callable[[dict], bool], capsys) -> dict:
    """``selfsup <argv>`` trains ``epochs`` epochs into ``run``; its loss falls and ``learned``
    holds for its final metrics (shown, held-out ones, when it does not). Returns the metrics."""
    code = main(argv)
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((Path(run) / "metrics.json").read_text())
    losses = epoch_losses(run)
    assert len(losses) == epochs and losses[-1] < losses[0], losses
    assert learned(metrics), {k: v for k, v in metrics.items() if k.startswith("val/")}
    return metrics
