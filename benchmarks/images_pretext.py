"""Images II benchmark: the predictive pretext tasks on Fashion-MNIST, linear probes by layer.

    flock /tmp/selfsup-bench.lock python benchmarks/images_pretext.py     # full run (~20 min, 1 thread)
    python benchmarks/images_pretext.py --quick                           # checks that it runs

Protocol, in the form of the pretext-task papers' tables: the small CNN (conv1 ... conv4) is
pretrained by each objective without labels on a fixed random subset of Fashion-MNIST's
training split (28 x 28, grey), then frozen; each layer's features (the stage's map
average-pooled to at most 2,048 values) are probed by logistic regression
(``selfsup.evaluation.layers.evaluate_layers``, the shared protocol) with 100 labels per class
drawn per seed from another fixed subset of the training split, and tested on a fixed subset
of the test split. Reference rows: the same encoder randomly initialised (a new init per
seed), and trained supervised (cross-entropy, all labels of the pretraining images, same
epochs). Also the rotation-count ablation (2, 4, 8), multi-task with and without the lasso
layer combination, and S4L (rotation + labels of 10% of the pretraining images). The colour
tasks cannot run on grey images: their held-out pretext figures come from colour crops of
scikit-learn's two sample photos. Writes benchmarks/results/images_pretext.{json,md} and
rebuilds BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from selfsup.config import PretrainConfig
from selfsup.evaluation.layers import evaluate_layers
from selfsup.evaluation.retrieval import retrieval
from selfsup.modalities.image import ImageModality
from selfsup.modalities.image_pretext import PRETEXT_OBJECTIVES, sample_photo_crops
from selfsup.training.run import pretrain

from common import apply_standard_arguments, run_and_publish, stacked_inputs, standard_arguments

# (row name, objective spec, objective options, group)
METHODS = [
    ("rotation (4 rotations)", "rotation", {}, "self-supervised"),
    ("relative position", "relative-position", {}, "self-supervised"),
    ("jigsaw (100 permutations)", "jigsaw", {}, "self-supervised"),
    ("inpainting (central mask)", "inpainting", {}, "self-supervised"),
    ("counting", "counting", {}, "self-supervised"),
    ("multi-task rotation + jigsaw", "rotation:1,jigsaw:1", {}, "multi-task"),
    ("multi-task rotation + jigsaw, lasso", "rotation:1,jigsaw:1",
     {"rotation": {"lasso": 0.01}, "jigsaw": {"lasso": 0.01}}, "multi-task"),
    ("rotation (2 rotations)", "rotation", {"count": 2}, "rotation ablation"),
    ("rotation (8 rotations)", "rotation", {"count": 8}, "rotation ablation"),
    ("S4L: rotation + 10% of labels", "s4l", {"label_fraction": 0.1}, "uses labels"),
    ("supervised (all labels)", "supervised", {}, "uses labels"),
]
# The held-out pretext figure each objective reports, and its chance or trivial level.
PRETEXT = {"rotation": ("pretext_acc", "1/{count}"), "relative-position": ("pretext_acc", "1/8"),
           "jigsaw": ("pretext_acc", "1/100"), "counting": ("match_acc", "1/batch"),
           "inpainting": ("relative_mse", "1 = mean image"), "supervised": ("train_acc", "0.1"),
           "s4l": ("rotation/pretext_acc", "1/4")}


def fixed_subset(n_total: int, n: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n])


def slug(method: str) -> str:
    """A file name for a row: 'rotation (2 rotations)' -> 'rotation_2_rotations'."""
    return re.sub(r"[^A-Za-z0-9]+", "_", method).strip("_")


def fresh(run_dir: Path) -> Path:
    """An empty run folder: a benchmark re-measures every run (a resumed, finished run would
    train no further epoch and report no held-out figures)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    return run_dir


def pretext_figure(spec: str, metrics: dict, options: dict) -> str:
    if "," in spec:
        parts = [p.split(":")[0] for p in spec.split(",")]
        return "; ".join(f"{p} {metrics.get(f'val/{p}/pretext_acc', float('nan')):.3f}" for p in parts)
    key, level = PRETEXT.get(spec, ("pretext_acc", "?"))
    return f"{metrics.get(f'val/{key}', float('nan')):.3f} ({level.format(count=options.get('count', 4))})"


def run(args) -> dict:
    modality = ImageModality()
    train_all = modality.load("builtin:fashion-mnist-train")
    test_all = modality.load("builtin:fashion-mnist-test")
    pretrain_idx = fixed_subset(len(train_all), args.pretrain_images, 0)
    probe_idx = fixed_subset(len(train_all), args.probe_images, 1)
    pretrain_set, probe_train = train_all.subset(pretrain_idx), train_all.subset(probe_idx)
    test_set = test_all.subset(fixed_subset(len(test_all), args.test_images, 2))
    kwargs = modality.encoder_kwargs(pretrain_set)
    print(f"Fashion-MNIST: pretraining on {len(pretrain_set)} training images, probes trained on "
          f"{args.labels_per_class} labels per class of {len(probe_train)} others, tested on {len(test_set)} test images")

    rows, retrievals = [], {}

    def probe(method: str, group: str, encoder_for_seed, pretrain_seconds: float = 0.0, pretext: str = "-"):
        started = time.perf_counter()
        layers = evaluate_layers(encoder_for_seed, probe_train, test_set, "linear",
                                 labels_per_class=args.labels_per_class, seeds=args.seeds)
        row = {"method": method, "group": group, "pretext": pretext, "pretrain_seconds": pretrain_seconds,
               "probe_seconds": time.perf_counter() - started,
               "layers": {name: {"accuracy": r.summary["accuracy"], "accuracy_std": r.summary["accuracy_std"],
                                 "features": r.extra["feature_dim"]} for name, r in layers.items()}}
        rows.append(row)
        cells = "  ".join(f"{n} {v['accuracy']:.3f}±{v['accuracy_std']:.3f}" for n, v in row["layers"].items())
        print(f"  {method:<38}{cells}  ({pretrain_seconds + row['probe_seconds']:.0f} s)", flush=True)
        encoder = encoder_for_seed(0)
        found = retrieval(encoder, test_set, k=5, num_queries=6, max_scored=args.test_images,
                          out=Path(args.runs) / "retrieval" / f"{slug(method)}.png",
                          title=f"{method}: nearest test images (conv4 embedding)")
        retrievals[method] = found["precision_at_k"]

    def random_init(seed: int):
        torch.manual_seed(seed)
        return modality.build_encoder(None, **kwargs).eval()

    probe("random init", "reference", random_init)
    for method, spec, options, group in METHODS:
        if method.split(" (")[0] not in args.only and spec not in args.only and "all" not in args.only:
            continue
        started = time.perf_counter()
        out = fresh(Path(args.runs) / slug(method))
        config = PretrainConfig(modality="image", data="builtin:fashion-mnist-train", out=str(out), objective=spec,
                                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, objective_options=options,
                                progress=False, seed=0)
        result = pretrain(config, dataset=pretrain_set)
        seconds = time.perf_counter() - started
        encoder = result.encoder.eval()
        probe(method, group, lambda seed: encoder, seconds, pretext_figure(spec, result.metrics, options))
        if "lasso" in method:
            rows[-1]["alphas"] = {k.removeprefix("val/"): round(v, 3) for k, v in result.metrics.items()
                                  if "/alpha_" in k and k.startswith("val/")}
    colour = colour_tasks(args)
    return {"rows": rows, "retrieval_precision_at_5": retrievals, "colour": colour,
            "n_pretrain": len(pretrain_set), "n_probe": len(probe_train), "n_test": len(test_set),
            "labels_per_class": args.labels_per_class, "epochs": args.epochs, "batch_size": args.batch_size,
            "lr": args.lr, "seeds": args.seeds, "quick": args.quick, "threads": torch.get_num_threads()}


def colour_tasks(args) -> dict:
    """Colourisation and split-brain on colour crops of the two sample photos: held-out figures."""
    train, test = sample_photo_crops(side=16, stride=4 if not args.quick else 8)
    results = {}
    for name in ("colorization", "split-brain"):
        started = time.perf_counter()
        out = fresh(Path(args.runs) / f"photos_{name}")
        config = PretrainConfig(modality="image", data="sample photos", out=str(out), objective=name,
                                epochs=args.colour_epochs, batch_size=32, lr=3e-3, progress=False, seed=0,
                                val_fraction=0.0)
        result = pretrain(config, dataset=train)
        metrics = held_out(name, result.encoder, train, test, out)
        metrics["seconds"] = time.perf_counter() - started
        results[name] = metrics
        print(f"  {name}: held-out {({k: round(v, 3) for k, v in metrics.items()})}", flush=True)
    results["data"] = f"{len(train)} training crops (16 x 16), {len(test)} held-out crops"
    return results


@torch.no_grad()
def held_out(name: str, encoder, train, test, run_dir: Path) -> dict:
    """The trained objective's own metrics on the held-out crops (eval mode, one batch)."""
    from selfsup.training.checkpoint import loadable_checkpoint

    modality = ImageModality()
    objective = PRETEXT_OBJECTIVES[name].factory(encoder, modality, train)
    state = torch.load(loadable_checkpoint(run_dir), map_location="cpu", weights_only=False)["state_dict"]
    objective.load_state_dict({k[len("objective."):]: v for k, v in state.items() if k.startswith("objective.")})
    torch.manual_seed(0)
    batch = {"x": stacked_inputs(test)}
    out = objective.eval()(batch, encoder.eval())
    return {k: float(v) for k, v in out.metrics.items()}


def markdown(results: dict, command: str) -> str:
    layers = list(results["rows"][0]["layers"])
    lines = ["## Images II: predictive pretext tasks, linear probes by layer (Fashion-MNIST)", "",
             f"Command: `{command}`", "",
             f"Small CNN (conv1 32, conv2 64 /2, conv3 128 /2, conv4 128; BN + ReLU) on Fashion-MNIST at 28 x 28. "
             f"Pretraining: {results['n_pretrain']} training images without labels, {results['epochs']} epochs, "
             f"batch {results['batch_size']}, AdamW lr {results['lr']} (cosine). Probes: logistic regression on "
             f"each layer's frozen features (maps average-pooled to at most 2,048 values: the feature counts are in "
             f"the header), trained on {results['labels_per_class']} labels per class drawn per seed from "
             f"{results['n_probe']} other training images, tested on {results['n_test']} test images. "
             f"Mean ± std over {results['seeds']} seeds (label subsets; for random init also the initialisation). "
             "Pretext: the objective's own held-out figure on the run's validation images (10% of the "
             "pretraining images), with chance or the trivial predictor's level in brackets. Seconds: "
             f"pretraining + probing, on the 2-core CPU ({results['threads']} torch threads).", ""]
    header = "| group | method | " + " | ".join(
        f"{n} ({results['rows'][0]['layers'][n]['features']})" for n in layers) + " | pretext (held out) | retrieval P@5 | seconds |"
    lines += [header, "|" + "---|" * (len(layers) + 5)]
    for r in results["rows"]:
        best = max(v["accuracy"] for v in r["layers"].values())
        cells = []
        for n in layers:
            v = r["layers"][n]
            text = f"{v['accuracy']:.3f} ± {v['accuracy_std']:.3f}"
            cells.append(f"**{text}**" if v["accuracy"] == best else text)
        lines.append(f"| {r['group']} | {r['method']} | " + " | ".join(cells) + f" | {r['pretext']} | "
                     f"{results['retrieval_precision_at_5'][r['method']]:.3f} | "
                     f"{r['pretrain_seconds'] + r['probe_seconds']:.0f} |")
    lines += ["", "Bold: each row's best layer. Retrieval P@5: the fraction of each test image's 5 nearest other "
                  "test images (cosine, conv4 embedding) of its class.", ""]
    for r in results["rows"]:
        if r.get("alphas"):
            lines.append(f"Lasso layer weights ({r['method']}, end of training): "
                         + ", ".join(f"{k} {v}" for k, v in sorted(r["alphas"].items())) + ".")   # as saved
    c = results["colour"]
    if c:
        lines += ["", f"### Colour tasks (Fashion-MNIST is grey): sample-photo crops, {c['data']}", "",
                  "| objective | pretext accuracy (majority class) | cross-entropy (batch's own colour prior) | "
                  "colour error, ab units (mean-ab predictor) | seconds |", "|---|---|---|---|---|"]
        m = c["colorization"]
        lines.append(f"| colorization (ab from L) | {m['pretext_acc']:.3f} ({m['majority_acc']:.3f}) | "
                     f"{m['nll']:.3f} ({m['prior_nll']:.3f}) | {m['ab_error']:.2f} ({m['mean_ab_error']:.2f}) | "
                     f"{m['seconds']:.0f} |")
        m = c["split-brain"]
        for half, what in (("ab", "split-brain L -> ab"), ("L", "split-brain ab -> L")):
            lines.append(f"| {what} | {m[f'pretext_acc_{half}']:.3f} ({m[f'majority_acc_{half}']:.3f}) | "
                         f"{m[f'nll_{half}']:.3f} ({m[f'prior_nll_{half}']:.3f}) | - | {m['seconds']:.0f} |")
    if results.get("verdict"):
        lines += ["", results["verdict"]]
    return "\n".join(lines) + "\n"


def verdict(results: dict) -> str:
    """Say plainly which objectives beat random init at their best layer (by 2 std) and which do not."""
    def best(row):
        return max(row["layers"].values(), key=lambda v: v["accuracy"])

    rand = best(next(r for r in results["rows"] if r["method"] == "random init"))
    better, not_better = [], []
    for r in results["rows"]:
        if r["group"] in ("reference", "uses labels"):
            continue
        b = best(r)
        margin = b["accuracy"] - rand["accuracy"] - 2 * max(b["accuracy_std"], rand["accuracy_std"])
        (better if margin > 0 else not_better).append(f"{r['method']} ({b['accuracy']:.3f})")
    text = f"Against random init's best layer ({rand['accuracy']:.3f}): "
    text += ("clearly better: " + ", ".join(better) + ". " if better else "no objective is clearly better. ")
    if not_better:
        text += "Not clearly better: " + ", ".join(not_better) + "."
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrain-images", type=int, default=1000)
    p.add_argument("--probe-images", type=int, default=2000)
    p.add_argument("--test-images", type=int, default=1000)
    p.add_argument("--labels-per-class", type=int, default=100)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--colour-epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--only", default="all", help="comma-separated objective names to run (default all)")
    standard_arguments(p, runs="runs/bench_images_pretext", name="images_pretext")
    args = apply_standard_arguments(p.parse_args(argv))
    if args.quick:
        args.pretrain_images, args.probe_images, args.test_images, args.labels_per_class = 600, 400, 300, 20
        args.epochs, args.colour_epochs, args.seeds = 1, 1, 2
    args.only = {o.strip() for o in args.only.split(",")}
    run_and_publish(args, "images_pretext.py", argv, run, verdict, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
