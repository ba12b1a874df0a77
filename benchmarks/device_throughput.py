"""Training throughput of one objective per modality at bf16 on a GPU (fp32 on a CPU) (issue 7).

Each case trains through the real pipeline (`selfsup.training.run.pretrain`: DataLoader with
worker processes and pinned memory, Lightning, bf16 autocast) for two short epochs and times
the second one; samples/s counts samples that went through a full training step. On a GPU,
utilisation is sampled from nvidia-smi during the timed epoch.

    python benchmarks/device_throughput.py [--quick] [--precision bf16-mixed]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch

from selfsup.config import PretrainConfig
from selfsup.datasets.base import ArrayDataset
from selfsup.training.run import pretrain

from common import write_fragment


class EpochTimer(pl.Callback):
    def __init__(self):
        self.seconds, self.samples, self.utilisation = [], [], []
        self._sampler = None

    def on_train_epoch_start(self, trainer, module):
        self._n = 0
        if torch.cuda.is_available() and trainer.current_epoch == trainer.max_epochs - 1:
            self._sampler = GpuSampler()
            self._sampler.start()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self._n += 0 if batch is None else len(batch["x"])

    def on_train_epoch_end(self, trainer, module):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self._t)
        self.samples.append(self._n)
        if self._sampler is not None:
            self.utilisation = self._sampler.stop()


class GpuSampler(threading.Thread):
    """GPU utilisation (%) from nvidia-smi every 0.2 s until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.values, self._stop = [], threading.Event()

    def run(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout.split()
                self.values.append(float(out[0]))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return
            self._stop.wait(0.2)

    def stop(self):
        self._stop.set()
        self.join(timeout=5)
        return self.values


def _images(n, size):
    from selfsup.datasets.images import load_fashion_mnist

    data = load_fashion_mnist("train", size=size)
    return data.subset(np.arange(min(n, len(data))))


def _audio(n, seconds=1.0, rate=16000):
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    freqs = rng.uniform(100, 2000, size=(n, 1))                  # tones + noise: decoding is not timed here
    x = 0.3 * np.sin(2 * np.pi * freqs * t) + 0.05 * rng.normal(size=(n, t.size))
    return ArrayDataset(x[:, None].astype(np.float32), info={"sample_rate": rate}, source="tones")


def _video(n, frames=8, size=64):
    rng = np.random.default_rng(0)                               # decoding is not timed here (see loader.py)
    x = rng.random((n, frames, 3, size, size), dtype=np.float32)
    return ArrayDataset(x, source="random clips")


def _sensor(n):
    from selfsup.modalities.sensor import SensorModality

    data = SensorModality().load("builtin:watch")
    reps = int(np.ceil(n / len(data)))
    idx = np.tile(np.arange(len(data)), reps)[:n]
    return data.subset(idx)


def cases(gpu: bool):
    big = 20000 if gpu else 1500
    return [
        {"modality": "image", "objective": "simclr", "encoder": "resnet18" if gpu else "small-cnn", "unit": "images/s",
         "data": lambda: _images(big, 32), "batch": 512 if gpu else 128},
        {"modality": "audio", "objective": "simclr", "encoder": "spectrogram-cnn", "unit": "clips/s",
         "data": lambda: _audio(big // 4), "batch": 256 if gpu else 32},
        {"modality": "video", "objective": "simclr", "encoder": "frame-cnn", "unit": "clips/s",
         "data": lambda: _video(big // 8 if gpu else 160), "batch": 128 if gpu else 16},
        {"modality": "sensor", "objective": "hierarchical-contrast", "encoder": "dilated-conv", "unit": "windows/s",
         "data": lambda: _sensor(big * 2), "batch": 256 if gpu else 16},
    ]


def run_case(case, precision: str, workers: int, steps: int) -> dict:
    data = case["data"]()
    timer = EpochTimer()
    folder = Path(tempfile.mkdtemp())
    try:
        cfg = PretrainConfig(modality=case["modality"], objective=case["objective"], encoder=case["encoder"],
                             out=str(folder / "run"), epochs=2, batch_size=case["batch"], precision=precision,
                             num_workers=workers, val_fraction=0.0, progress=False, limit_train_batches=steps)
        pretrain(cfg, dataset=data, callbacks=[timer])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds, samples = timer.seconds[-1], timer.samples[-1]
    util = timer.utilisation
    return {"modality": case["modality"], "objective": case["objective"], "encoder": case["encoder"],
            "batch": case["batch"], "steps": steps, "samples_per_second": samples / seconds, "unit": case["unit"],
            "gpu_utilisation_mean": float(np.mean(util)) if util else None, "precision": precision}


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    import os

    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads), no GPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--precision", default=None,
                        help="default: bf16-mixed on a GPU; 32-true on a CPU (bf16 is emulated, and slow, on CPUs "
                             "without native bf16)")
    parser.add_argument("--workers", type=int, default=None, help="data loader workers (default: 8 on GPU, 0 on CPU)")
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    workers = args.workers if args.workers is not None else (8 if gpu else 0)
    args.precision = args.precision or ("bf16-mixed" if gpu else "32-true")
    steps = 3 if args.quick else (50 if gpu else 10)
    rows = [run_case(c, args.precision, workers, steps) for c in cases(gpu)]
    device = device_name()
    print(f"device: {device}; precision {args.precision}; {workers} loader workers")
    for r in rows:
        util = "" if r["gpu_utilisation_mean"] is None else f"  GPU busy {r['gpu_utilisation_mean']:.0f}%"
        print(f"  {r['modality']:<7} {r['objective']:<22} {r['encoder']:<16} batch {r['batch']:>5}: "
              f"{r['samples_per_second']:9.1f} {r['unit']}{util}")
    if args.quick:
        return
    stem = "throughput_gpu" if gpu else "throughput_device_cpu"
    md = [f"## Training throughput per modality, {args.precision} ({'GPU' if gpu else 'CPU'}; issue 7)", "",
          f"Command: `python benchmarks/device_throughput.py`. Measured on: **{device}**, {workers} loader workers. "
          "Each case trains through `selfsup.training.run.pretrain` (Lightning, DataLoader, autocast) for two "
          "short epochs; the second is timed.", "",
          "| modality | objective | encoder | batch | throughput | GPU utilisation |", "|---|---|---|---|---|---|"]
    for r in rows:
        util = "n/a (no GPU)" if r["gpu_utilisation_mean"] is None else f"{r['gpu_utilisation_mean']:.0f}%"
        md.append(f"| {r['modality']} | {r['objective']} | {r['encoder']} | {r['batch']} | "
                  f"{r['samples_per_second']:.1f} {r['unit']} | {util} |")
    write_fragment(stem, {"device": device, "rows": rows}, "\n".join(md))


if __name__ == "__main__":
    main()
