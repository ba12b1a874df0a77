"""Data-loader throughput: decoding files every epoch vs reading a pre-decoded shard store (issue 7).

For each modality's built-in file-backed set, one process measures samples/s of one full pass
through ``selfsup.training.data.make_loader`` (the loader pretraining uses: shuffled, collated,
persistent workers), for

  files   the modality decodes each sample from its file (audio: wav via PyAV/soundfile;
          video: mp4 via PyAV, clip sampling and resizing)
  shards  the same samples read from the HDF5 shard store that ``selfsup cache`` writes

with 0 and N worker processes. The ratio shards/files is what caching buys; it is measured
within one run because the machine is noisy.

    python benchmarks/loader.py [--quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from selfsup.datasets.shards import write_shards
from selfsup.registry import get_modality
from selfsup.training.data import make_loader

from common import write_fragment

CASES = {  # modality -> built-in data decoded from real files
    "audio": "builtin:spoken-words",
    "video": "builtin:moving-digits",
}


def _samples_per_second(dataset, workers: int, batch_size: int) -> float:
    loader = make_loader(dataset, batch_size, train=True, seed=0, num_workers=workers)
    iterator = iter(loader)
    first = next(iterator)                      # worker start-up is not throughput
    n, t = 0, time.perf_counter()
    for batch in iterator:
        n += len(batch["x"])
    seconds = time.perf_counter() - t
    del first
    return n / seconds if seconds > 0 else float("nan")


def run_case(modality_name: str, data: str, workers: list[int], batch_size: int, limit: int | None,
             scratch: Path) -> list[dict]:
    modality = get_modality(modality_name)
    source = modality.open(data)
    if limit is not None and len(source) > limit:
        source = source.subset(list(range(limit)))
    store = write_shards(source, scratch / f"{modality_name}-store", modality_name, shard_size=256, progress=False)
    cached = modality.open(store)
    rows = []
    for w in workers:
        files = _samples_per_second(source, w, batch_size)
        shards = _samples_per_second(cached, w, batch_size)
        rows.append({"modality": modality_name, "data": data, "samples": len(source), "workers": w,
                     "sample_shape": list(source[0]["x"].shape), "files_per_s": files,
                     "shards_per_s": shards, "ratio": shards / files})
        print(f"{modality_name:<6} workers={w}  files {files:8.1f}/s  shards {shards:8.1f}/s  "
              f"x{shards / files:.1f}", flush=True)
    return rows


def write_results(rows: list[dict], args, name: str) -> None:
    command = "python benchmarks/loader.py" + (" --quick" if args.quick else "") + f" --workers {args.workers}"
    lines = [
        "## Data loading: decoding every epoch vs the shard store",
        "",
        f"Command: `{command}`",
        "",
        "Samples/s of one shuffled pass through the pretraining data loader (`make_loader`), "
        f"batch {args.batch_size}, on this machine's CPU ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads). *files*: each sample decoded from its file "
        "(audio: 1 s wav clips; video: mp4 clips decoded with PyAV, sampled and resized); *shards*: the "
        "same samples pre-decoded once by `selfsup cache` into HDF5 shards. The ratio is measured "
        "within one run.",
        "",
        "| modality | samples | sample shape | workers | files /s | shards /s | shards / files |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shape = "x".join(str(s) for s in r["sample_shape"])
        lines.append(f"| {r['modality']} | {r['samples']} | {shape} | {r['workers']} | {r['files_per_s']:.0f} | "
                     f"{r['shards_per_s']:.0f} | {r['ratio']:.1f} |")
    write_fragment(name, {"command": command, "rows": rows}, "\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few samples per case: checks that it runs")
    p.add_argument("--workers", type=int, default=2, help="worker processes for the second measurement")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--modalities", default=",".join(CASES))
    p.add_argument("--name", default="loader", help="results/<name>.md and .json")
    args = p.parse_args()
    torch.set_num_threads(1)
    limit = 96 if args.quick else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="selfsup-loader-") as tmp:
        for name in args.modalities.split(","):
            rows += run_case(name, CASES[name], sorted({0, args.workers}), args.batch_size, limit, Path(tmp))
            shutil.rmtree(Path(tmp) / f"{name}-store", ignore_errors=True)
    if args.quick:                              # a check that it runs: results are not kept
        return
    write_results(rows, args, args.name)


if __name__ == "__main__":
    main()
