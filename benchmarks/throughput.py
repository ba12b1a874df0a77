"""Training-step throughput of an objective relative to its bare encoder (issue 2).

For each case, in one process and one run (so machine noise cancels in the ratio):
  bare      the encoder's forward + backward + AdamW step on exactly the inputs the
            objective feeds it (for TPN: the original batch and its 8 transformed copies)
  objective the objective's full step: making its views/pseudo-labels, encoder, heads,
            loss, backward, AdamW step
  lightning the same objective trained through our LightningModule and Lightning's loop
The ratio bare_time / step_time is the fraction of the bare encoder's throughput that the
training step keeps (1.0 = no overhead; target >= 0.85).

    python benchmarks/throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import torch

from selfsup.config import PretrainConfig
from selfsup.modalities.sensor import SensorModality

from common import write_fragment


def _time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]                       # median: robust to a noisy neighbour


def sensor_tpn_case(batch_size: int, repeats: int) -> dict:
    modality = SensorModality()
    data = modality.load("builtin:watch")
    torch.manual_seed(0)
    encoder = modality.build_encoder("tpn", in_channels=6)
    objective = modality.build_objective("transformation", encoder, data)
    batch = {"x": data.x[:batch_size].clone()}
    views = torch.cat([batch["x"]] + [t(batch["x"]) for t in objective.transformations])  # what the encoder sees

    bare_opt = torch.optim.AdamW(encoder.parameters(), lr=1e-3)

    def bare():
        bare_opt.zero_grad(set_to_none=True)
        encoder.embed(views).sum().backward()
        bare_opt.step()

    params = list(encoder.parameters()) + list(objective.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        objective(batch, encoder).loss.backward()
        opt.step()

    # Interleave the two measurements so that slow phases of the machine hit both alike.
    bare_t, step_t = [], []
    for _ in range(3):
        bare_t.append(_time(bare, repeats))
        step_t.append(_time(step, repeats))
    bare_s, step_s = sorted(bare_t)[1], sorted(step_t)[1]
    lightning_s = _lightning_step_seconds(data, batch_size, steps=repeats * 3)
    n_views = views.shape[0]
    return {"case": "sensor / tpn / transformation (binary, 8 heads)", "batch": batch_size,
            "encoder_inputs_per_step": n_views, "bare_seconds": bare_s, "objective_seconds": step_s,
            "lightning_seconds": lightning_s, "ratio_objective": bare_s / step_s,
            "ratio_lightning": bare_s / lightning_s, "windows_per_second_objective": batch_size / step_s,
            "threads": torch.get_num_threads()}


def _lightning_step_seconds(data, batch_size: int, steps: int) -> float:
    """Seconds per step of a real `pretrain` epoch (Lightning loop, logging, no checkpoint cost)."""
    import tempfile

    from selfsup.training.run import pretrain

    subset = data.subset(range(batch_size * steps))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = PretrainConfig(modality="sensor", out=f"{tmp}/run", epochs=2, batch_size=batch_size,
                             val_fraction=0.0, progress=False)
        started = time.perf_counter()
        result = pretrain(cfg, dataset=subset)
        total = time.perf_counter() - started
    # Time of the second epoch alone is not exposed; use the total training time over all steps,
    # which includes Lightning's start-up and per-epoch work -- a conservative figure.
    return result.metrics["train_seconds"] / max(1, result.metrics["steps"]) if total else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    repeats = 3 if args.quick else 10
    row = sensor_tpn_case(args.batch_size, repeats)
    print(f"{row['case']}: batch {row['batch']} -> {row['encoder_inputs_per_step']} encoder inputs per step")
    print(f"  bare encoder fwd+bwd+step  {row['bare_seconds'] * 1000:8.1f} ms")
    print(f"  objective step             {row['objective_seconds'] * 1000:8.1f} ms   ratio {row['ratio_objective']:.3f}")
    print(f"  through Lightning          {row['lightning_seconds'] * 1000:8.1f} ms   ratio {row['ratio_lightning']:.3f}")
    if args.quick:
        return
    md = ["## Training-step throughput (issue 2)", "",
          "Command: `python benchmarks/throughput.py` (CPU, "
          f"{row['threads']} threads). Ratio = bare encoder time / step time on the same encoder inputs; "
          "1.0 means no overhead, target >= 0.85.", "",
          "| case | batch | encoder inputs / step | bare fwd+bwd+step | objective step | ratio | via Lightning | ratio |",
          "|---|---|---|---|---|---|---|---|",
          f"| {row['case']} | {row['batch']} | {row['encoder_inputs_per_step']} | {row['bare_seconds'] * 1e3:.1f} ms "
          f"| {row['objective_seconds'] * 1e3:.1f} ms | {row['ratio_objective']:.2f} | {row['lightning_seconds'] * 1e3:.1f} ms "
          f"| {row['ratio_lightning']:.2f} |", "",
          "The objective's own overhead (8 batched transformations, 8 heads, the loss) is the first ratio; the "
          "second adds Lightning's loop, logging and start-up, averaged over a 2-epoch run."]
    write_fragment("throughput", [row], "\n".join(md))


if __name__ == "__main__":
    main()
