"""``selfsup demo``: the whole pipeline on real data that ships offline, in a few CPU minutes.

The sensor default -- hierarchical temporal contrast (TS2Vec-style) on the dilated-conv
encoder -- pretrained on the seglearn smartwatch windows of the training subjects, then the
frozen encoder's linear probe on held-out subjects against the same encoder randomly
initialised and trained supervised from scratch, with all labels and with 5 labels per class.
The budgets are those of the HAR benchmark (BENCHMARKS.md), sized for a CPU.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from selfsup.config import PretrainConfig
from selfsup.evaluation.protocol import evaluate
from selfsup.evaluation.splits import split_dataset
from selfsup.io import write_json
from selfsup.modalities.sensor import SensorModality
from selfsup.training.run import pretrain


ENCODER, OBJECTIVE = "dilated-conv", "hierarchical-contrast"
BATCH_SIZE = 16                                          # TS2Vec's small batches: many steps per epoch
SUPERVISED = {"epochs": 3, "min_steps": 100}             # supervised from scratch, as the HAR benchmark


def run_demo(out: str = "runs/demo", epochs: int = 1, seeds: int = 3) -> dict:
    out = Path(out)
    modality = SensorModality()
    data = modality.load("builtin:watch")
    train, test, split = split_dataset(data)
    print(f"data: seglearn watch, {len(data)} windows (6 x 100); split {split}: {len(train)} train, {len(test)} test")

    started = time.perf_counter()
    run = out / OBJECTIVE
    config = PretrainConfig(modality="sensor", data="builtin:watch", out=str(run), encoder=ENCODER,
                            objective=OBJECTIVE, epochs=epochs, batch_size=BATCH_SIZE, progress=True)
    result = pretrain(config, dataset=train, resume=(run / "checkpoints").exists())
    print(f"pretrained {ENCODER} by {OBJECTIVE} for {epochs} epoch(s) in {time.perf_counter() - started:.0f} s; "
          f"held-out pretext accuracy {result.metrics.get('val/pretext_acc', float('nan')):.3f}")

    kwargs = modality.encoder_kwargs(train)

    def random_init(seed: int):
        torch.manual_seed(seed)
        return modality.build_encoder(ENCODER, **kwargs)

    pretrained = result.encoder
    rows = []
    for budget, per_class in (("all labels", None), ("5 per class", 5)):
        for name, factory, protocol in (("pretrained, linear probe", lambda s: pretrained, "linear"),
                                        ("random init, linear probe", random_init, "linear"),
                                        ("supervised from scratch", random_init, "finetune")):
            r = evaluate(factory, train, test, protocol, labels_per_class=per_class, seeds=seeds,
                         finetune_options=SUPERVISED)
            rows.append({"method": name, "labels": budget, **r.summary})
            print(f"  {budget:<12} {name:<30} macro-F1 {r.summary['macro_f1']:.3f} ± {r.summary['macro_f1_std']:.3f}")
    table = _table(rows)
    print("\n" + table)
    write_json(out / "results.json", {"rows": rows, "split": split, "encoder": ENCODER, "objective": OBJECTIVE,
                                      "epochs": epochs, "seeds": seeds, "supervised": SUPERVISED})
    (out / "results.md").write_text(table + "\n")
    return {"rows": rows}


def _table(rows) -> str:
    lines = ["| labels | method | accuracy | macro-F1 | kappa |", "|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r[m]:.3f} ± {r[m + '_std']:.3f}" for m in ("accuracy", "macro_f1", "kappa")]
        lines.append(f"| {r['labels']} | {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["run_demo"]
