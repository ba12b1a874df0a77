"""The ``selfsup`` command: pretrain | probe | embed | list | demo | convert-csv | cache | prepare | track.

Every command prints one clear line and exits 2 on bad input (SelfsupError); tracebacks are
for bugs only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from selfsup.errors import ConfigError, SelfsupError

PRETRAIN_FLAGS = {  # CLI flag dest -> PretrainConfig field
    "modality": "modality", "data": "data", "out": "out", "encoder": "encoder", "objective": "objective",
    "epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "seed": "seed", "num_workers": "num_workers",
    "accelerator": "accelerator", "devices": "devices", "num_nodes": "num_nodes", "strategy": "strategy",
    "precision": "precision", "accumulate_grad_batches": "accumulate_grad_batches",
}


def _add_pretrain(sub):
    p = sub.add_parser("pretrain", help="self-supervised pretraining into a run folder")
    p.add_argument("--modality", help="sensor | audio | image | video (see 'selfsup list')")
    p.add_argument("--objective", help="objective name, or 'a:1,b:0.5' for a weighted multi-task sum")
    p.add_argument("--data", help="data path (an .h5 file for sensors) or builtin:NAME")
    p.add_argument("--out", required=True, help="run folder to create (or resume with --resume)")
    p.add_argument("--encoder", help="encoder name (default: the modality's)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--num-workers", type=int, help="data loader worker processes")
    p.add_argument("--accelerator", help="auto | cpu | gpu")
    p.add_argument("--devices", help="number of devices, or 'auto'")
    p.add_argument("--num-nodes", type=int)
    p.add_argument("--strategy", help="auto | ddp | fsdp ... (Lightning strategies)")
    p.add_argument("--precision", help="32-true | bf16-mixed | 16-mixed")
    p.add_argument("--accumulate-grad-batches", type=int)
    p.add_argument("--config", help="YAML config file (flags override it)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config field, e.g. objective_options.form=multiclass, modality_options.window=128")
    p.add_argument("--resume", action="store_true", help="continue RUN from its newest readable checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("--channels-last", action="store_true",
                   help="channels-last memory format for 2-D conv encoders (faster on GPUs with bf16/fp16)")
    p.add_argument("--skip-bad-samples", action="store_true",
                   help="skip samples that fail to decode and list them in RUN/bad_samples.tsv (default: stop)")


def _add_probe(sub):
    p = sub.add_parser("probe", help="measure an encoder on labelled data (linear, kNN, SVM, fine-tune)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run folder of a pretrained encoder")
    src.add_argument("--random-init", action="store_true", help="a randomly initialised encoder (baseline)")
    p.add_argument("--modality", help="with --random-init: the modality")
    p.add_argument("--encoder", help="with --random-init: the encoder name")
    p.add_argument("--data", required=True, help="labelled training data (split deterministically without --test)")
    p.add_argument("--test", help="labelled test data")
    p.add_argument("--protocol", default="linear", choices=["linear", "knn", "svm", "finetune"])
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--label-fraction", type=float, help="keep this fraction of training labels per class")
    budget.add_argument("--labels-per-class", type=int, help="keep N training labels per class")
    p.add_argument("--seeds", type=int, default=3, help="repetitions with different label subsets / inits")
    p.add_argument("--label-draws", type=int, default=1,
                   help="with a label budget: score each seed as the mean over this many label subsets")
    p.add_argument("--out", help="folder for plots (default: RUN/probe; none for --random-init)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with --random-init: modality_options.* / encoder_options.*")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--layers", action="store_true",
                   help="probe every layer of the encoder (conv1 ... last, maps pooled) instead of its embedding")
    p.add_argument("--retrieval", metavar="PNG",
                   help="also save a nearest-neighbour figure: test queries and their top training matches")


def _add_misc(sub):
    p = sub.add_parser("embed", help="write embeddings (and labels) of data to an HDF5 file")
    p.add_argument("--run", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="output .h5 (datasets z, y, subject)")
    p.add_argument("--batch-size", type=int, default=256)

    sub.add_parser("list", help="modalities, encoders and objectives, a line on each")

    p = sub.add_parser("demo", help="sensor pretraining (hierarchical contrast) on the built-in watch data "
                                    "vs random init vs supervised")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seeds", type=int, default=3)

    p = sub.add_parser("convert-csv", help="long-format sensor CSV -> windows in an HDF5 file")
    p.add_argument("csv")
    p.add_argument("--out", required=True)
    p.add_argument("--channels", required=True, help="comma-separated channel columns")
    p.add_argument("--window", type=int, required=True)
    p.add_argument("--step", type=int, help="default: window // 2")
    p.add_argument("--label-column")
    p.add_argument("--subject-column")
    p.add_argument("--recording-column", help="column separating recordings within a subject")
    p.add_argument("--sample-rate", type=float)

    p = sub.add_parser("cache", help="decode a dataset once into HDF5 shards (pass the store as --data later)")
    p.add_argument("--modality", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="store folder to create")
    p.add_argument("--shard-size", type=int, default=1024, help="samples per shard file")
    p.add_argument("--num-workers", type=int, default=0, help="decoding worker processes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="modality_options.*")

    p = sub.add_parser("prepare", help="convert a standard dataset's published layout to HDF5")
    p.add_argument("name", choices=["uci-har", "motionsense", "watch"])
    p.add_argument("--root", help="folder holding (or to download) the dataset")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--download", action="store_true", help="download the archive into --root first")


def _add_track(sub):
    p = sub.add_parser("track", help="propagate first-frame masks through DAVIS videos by feature affinity (J, F, J&F)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run folder of a pretrained video encoder")
    src.add_argument("--random-init", action="store_true", help="a randomly initialised encoder (baseline)")
    src.add_argument("--pixels", action="store_true", help="raw pixels: Lab colours of small patches (baseline)")
    p.add_argument("--davis", required=True, help="DAVIS-2017 folder, or builtin:moving-digits[?...] (generated)")
    p.add_argument("--resolution", default="480p", help="JPEGImages/<resolution> (default 480p)")
    p.add_argument("--split", help="ImageSets/2017/<split>.txt (default: every sequence)")
    p.add_argument("--size", type=int, help="resize frames (shorter side, centre crop) to SIZE x SIZE")
    p.add_argument("--encoder", help="with --random-init: the video encoder (default spatial-map)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with --random-init: modality_options.* / encoder_options.*")
    p.add_argument("--seed", type=int, default=0, help="with --random-init: the initialisation")
    p.add_argument("--stride", type=int, default=4, help="with --pixels: patch size (default 4)")
    p.add_argument("--topk", type=int, default=10, help="reference positions each position copies from")
    p.add_argument("--context", type=int, default=3, help="previous frames used as references, besides the first")
    p.add_argument("--radius", type=float, default=6.0, help="search radius in feature cells (0: the whole frame)")
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--out", help="write the predicted masks here (DAVIS layout)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfsup", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_pretrain(sub)
    _add_probe(sub)
    _add_misc(sub)
    _add_track(sub)
    return parser


# -- commands ---------------------------------------------------------------------------------
def cmd_pretrain(args) -> int:
    from selfsup.config import PretrainConfig, apply_overrides
    from selfsup.training.run import pretrain

    saved = Path(args.out) / "config.yaml"
    if args.resume and saved.exists():
        config = PretrainConfig.load(saved)
    elif args.config:
        config = PretrainConfig.load(args.config)
    else:
        config = PretrainConfig()
    values = config.to_dict()
    for flag, key in PRETRAIN_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            values[key] = int(value) if key == "devices" and str(value).isdigit() else value
    if args.no_progress:
        values["progress"] = False
    if args.skip_bad_samples:
        values["bad_samples"] = "skip"
    if args.channels_last:
        values["channels_last"] = True
    config = apply_overrides(PretrainConfig.from_dict(values), args.set)
    result = pretrain(config, resume=args.resume)
    shown = {k: v for k, v in result.metrics.items() if k.startswith(("train/", "val/"))}
    print(f"run: {result.run_dir}  ({result.metrics['epochs']} epochs, {result.metrics['train_seconds']:.0f} s)")
    for key in sorted(shown):
        print(f"  {key:<28} {shown[key]:.4f}")
    return 0


def _options(sets: list[str]) -> tuple[dict, dict]:
    from selfsup.config import PretrainConfig, apply_overrides

    allowed = [s for s in sets if s.startswith(("modality_options.", "encoder_options."))]
    if len(allowed) != len(sets):
        raise ConfigError("--set here takes only modality_options.* and encoder_options.*")
    cfg = apply_overrides(PretrainConfig(), allowed)
    return cfg.modality_options, cfg.encoder_options


def cmd_probe(args) -> int:
    from selfsup.evaluation.probe import EncoderSource, format_evaluation, run_probe

    if args.random_init and not args.modality:
        raise ConfigError("--random-init needs --modality")
    if args.label_draws < 1:
        raise ConfigError(f"--label-draws must be 1 or more, got {args.label_draws}")
    if args.label_draws > 1 and args.labels_per_class is None and args.label_fraction is None:
        raise ConfigError("--label-draws averages label subsets: it needs --labels-per-class or --label-fraction")
    if args.run and (args.modality or args.encoder or args.set):
        raise ConfigError("--modality/--encoder/--set go with --random-init; a run knows its own")
    modality_options, encoder_options = _options(args.set)
    source = EncoderSource(run=args.run, modality=args.modality, encoder=args.encoder,
                           modality_options=modality_options, encoder_options=encoder_options)
    if args.layers or args.retrieval:
        return _probe_layers(args, source)
    out = None if args.no_plots else (args.out or (Path(args.run) / "probe" if args.run else None))
    result, info = run_probe(source, args.data, args.test, args.protocol, args.label_fraction,
                             args.labels_per_class, args.seeds, out, progress=not args.json,
                             label_draws=args.label_draws)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(format_evaluation(result, info))
    return 0


def _probe_layers(args, source) -> int:
    from selfsup.evaluation.layers import evaluate_layers, format_layers
    from selfsup.evaluation.probe import probe_inputs
    from selfsup.evaluation.retrieval import retrieval

    _, _, encoder_for_seed, train_set, test_set, _ = probe_inputs(source, args.data, args.test)
    report = {}
    if args.layers:
        layers = evaluate_layers(encoder_for_seed, train_set, test_set, args.protocol, args.label_fraction,
                                 args.labels_per_class, args.seeds, progress=not args.json,
                                 label_draws=args.label_draws)
        report["layers"] = {name: r.to_dict() for name, r in layers.items()}
        if not args.json:
            print(format_layers(layers))
    if args.retrieval:
        found = retrieval(encoder_for_seed(0), test_set, gallery=train_set, out=args.retrieval)
        report["retrieval"] = {"precision_at_k": found["precision_at_k"], "k": found["k"], "path": found["path"]}
        if not args.json:
            print(f"retrieval: precision@{found['k']} {found['precision_at_k']:.3f}; figure {found['path']}")
    if args.json:
        print(json.dumps(report))
    return 0


def cmd_embed(args) -> int:
    import h5py
    import numpy as np

    from selfsup.api import embed, load_encoder
    from selfsup.io import atomic_path
    from selfsup.registry import get_modality

    encoder = load_encoder(args.run)
    spec = encoder.selfsup_spec
    dataset = get_modality(spec["modality"], **spec.get("modality_options", {})).open(args.data)
    z = embed(encoder, dataset, batch_size=args.batch_size)
    with atomic_path(args.out) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("z", data=z)
        if dataset.labels is not None:
            f.create_dataset("y", data=dataset.labels)
        if dataset.subjects is not None:
            f.create_dataset("subject", data=dataset.subjects)
        f.attrs["run"] = str(args.run)
        f.attrs["source"] = dataset.source
        if dataset.class_names:
            f.attrs["class_names"] = np.array(dataset.class_names, dtype=h5py.string_dtype())
    print(f"wrote {len(z)} embeddings of dimension {z.shape[1]} to {args.out}")
    return 0


def cmd_list(args) -> int:
    from selfsup.registry import MODALITIES, modality_class

    for name in MODALITIES:
        m = modality_class(name)
        print(f"modality {name}: {m.description}")
        print("  encoders:")
        for enc, entry in m.encoders.items():
            mark = " (default)" if enc == m.default_encoder else ""
            print(f"    {enc:<24}{entry.description}{mark}")
        print("  objectives:")
        for obj, entry in m.objectives.items():
            mark = " (default)" if obj == m.default_objective else ""
            print(f"    {obj:<24}{entry.description}{mark}")
    return 0


def cmd_demo(args) -> int:
    from selfsup.demo import run_demo

    run_demo(out=args.out, epochs=args.epochs, seeds=args.seeds)
    return 0


def cmd_convert_csv(args) -> int:
    from selfsup.datasets.har import csv_to_windows
    from selfsup.datasets.hdf5 import write_hdf5

    d = csv_to_windows(args.csv, [c.strip() for c in args.channels.split(",")], args.window,
                       args.step or max(1, args.window // 2), args.label_column, args.subject_column,
                       args.recording_column, args.sample_rate)
    write_hdf5(args.out, d["x"], d["y"], d["subject"], d["sample_rate"], d["channel_names"], d["class_names"])
    print(f"wrote {len(d['x'])} windows of shape {d['x'].shape[1:]} (T, C) to {args.out}")
    return 0


def cmd_cache(args) -> int:
    from selfsup.datasets.shards import write_shards
    from selfsup.registry import get_modality

    modality_options, _ = _options(args.set)
    dataset = get_modality(args.modality, **modality_options).load(args.data)
    out = write_shards(dataset, args.out, args.modality, args.shard_size, num_workers=args.num_workers)
    print(f"wrote {len(dataset)} samples of shape {tuple(dataset[0]['x'].shape)} to {out}")
    return 0


def cmd_prepare(args) -> int:
    from selfsup.datasets import har
    from selfsup.datasets.hdf5 import write_hdf5

    out = Path(args.out)
    if args.name == "watch":
        from selfsup.datasets.watch import load_watch_windows

        parts = {"watch": load_watch_windows()}
    else:
        if not args.root:
            raise ConfigError(f"prepare {args.name} needs --root (the dataset folder, or where to download it)")
        if args.name == "uci-har":
            parts = {s: har.load_uci_har(args.root, s, download=args.download and s == "train")
                     for s in ("train", "test")}
        else:
            parts = {"motionsense": har.load_motionsense(args.root, download=args.download)}
    for name, d in parts.items():
        path = write_hdf5(out / f"{name}.h5", d["x"], d["y"], d["subject"], d["sample_rate"], d["channel_names"],
                          d["class_names"])
        print(f"wrote {path}: {len(d['x'])} windows of shape {d['x'].shape[1:]} (T, C)")
    return 0


def cmd_track(args) -> int:
    from selfsup.evaluation.tracking import Propagation, TrackingSource, run_tracking

    if not args.random_init and (args.encoder or args.set):
        raise ConfigError("--encoder/--set go with --random-init; a run knows its own encoder")
    modality_options, encoder_options = _options(args.set)
    source = TrackingSource(run=args.run, random_init=args.random_init, pixels=args.pixels, encoder=args.encoder,
                            modality_options=modality_options, encoder_options=encoder_options, seed=args.seed,
                            stride=args.stride)
    how = Propagation(args.topk, args.context, args.radius if args.radius > 0 else None, args.temperature)
    result = run_tracking(source, args.davis, how, args.resolution, args.split, args.size, args.out)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"track: {result['source']} on {result['davis']} ({result['sequences']} sequences, "
              f"{result['objects']} objects, {result['seconds']:.1f} s)")
        for key in ("J", "F", "J&F"):
            print(f"  {key:<4} {result[key]:.3f}")
    return 0


COMMANDS = {"pretrain": cmd_pretrain, "probe": cmd_probe, "embed": cmd_embed, "list": cmd_list,
            "demo": cmd_demo, "convert-csv": cmd_convert_csv, "cache": cmd_cache, "prepare": cmd_prepare,
            "track": cmd_track}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SelfsupError as exc:
        print(f"selfsup {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"selfsup {args.command}: interrupted; finished epochs are kept (resume with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
