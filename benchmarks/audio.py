"""Audio benchmark: spoken words synthesised with espeak-ng, linear probes on held-out voices.

Data: 20 words (digits + the 10 Speech Commands keywords) x 24 espeak-ng voice variants x
2 speeds x 2 pitches, 1 s at 16 kHz, and the same words by 24 fresh voices. Pretraining uses
the clips of 16 voices (no labels); three probe tasks:

* words: which of 20 words, trained on the 16 pretraining voices, tested on 8 unseen voices;
* voices: which of the 16 pretraining voices (with 4 speed/pitch settings each), trained on
  14 words and tested on the other 6 (harder: identity, not content);
* words on fresh voices: the words probe, tested on 24 more voices that no run probed while
  SimCLR's views were being chosen (docs/audio.md): the check that the choice was not fitted
  to the 8 test voices. Exploratory scripts (audio_variants.py) must not probe them.

Each self-supervised objective trains the default spectrogram CNN; its frozen embedding is
probed (logistic regression) with all labels and with 5 per class (each seed the mean over
``--label-draws`` label subsets, 5 by default), beside the same encoder
randomly initialised, raw log-mel features pooled the same way (mean + max over time), and
the encoder trained supervised from scratch. Also: the log-mel front end's throughput
against librosa on the same batch.

    flock /tmp/selfsup-bench.lock python benchmarks/audio.py          # defaults (~40 min on 2 cores)
    # BENCHMARKS.md's command (6 seeds, 6 pretraining runs, --pretrain-workers 2): about 75 min,
    # 49 of them probing (supervised from scratch trains once per seed and label draw)
    python benchmarks/audio.py --quick                                # a few minutes: checks it runs
    flock /tmp/selfsup-bench.lock python benchmarks/audio.py --throughput-only   # re-time the front end only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import timeit
from pathlib import Path

import numpy as np
import torch

from selfsup.config import PretrainConfig
from selfsup.datasets.base import ArrayDataset
from selfsup.datasets.espeak import COMMANDS, DEFAULT_VARIANTS, DIGITS, generate_spoken_words
from selfsup.evaluation.metrics import paired_difference
from selfsup.evaluation.protocol import evaluate
from selfsup.io import write_json
from selfsup.modalities.audio import AudioModality
from selfsup.training.build import ENCODER_FILE, load_encoder
from selfsup.training.run import pretrain

from common import (apply_standard_arguments, command_line, run_and_publish, saved_results, stacked_inputs,
                    standard_arguments)

TASK_ORDER = ["words", "voices", "words on fresh voices"]
OBJECTIVES = ("audio2vec-cbow", "audio2vec-skipgram", "temporal-gap", "cpc", "simclr", "autoencoder")
#: voices that no exploratory run probed: the confirmatory test set (module docstring)
FRESH_VOICES = DEFAULT_VARIANTS[24:]
#: a confirmatory task judges the objective that was best on the task it confirms, not its own best
CONFIRMS = {"words on fresh voices": "words"}


def benchmark_words(quick: bool) -> tuple[str, ...]:
    return (DIGITS + COMMANDS)[:8] if quick else DIGITS + COMMANDS


def spoken_words(words, variants) -> tuple[ArrayDataset, Path]:
    """In-memory clips (decoded once), with label = word and subject = voice variant."""
    root = generate_spoken_words(words=words, variants=variants, speeds=(130, 180), pitches=(35, 65))
    folder = AudioModality().load(root)
    return ArrayDataset(stacked_inputs(folder), folder.labels, folder.subjects, folder.class_names, folder.info,
                        source=str(root)), root


def load_words(quick: bool):
    """(clips, pretraining/probe-training indices, test indices, folder): the benchmark's 24 voices
    (12 when quick), the last third of them for testing."""
    variants = DEFAULT_VARIANTS[:12 if quick else 24]
    data, root = spoken_words(benchmark_words(quick), variants)
    names = data.info["subject_names"]
    n_test = len(variants) // 3
    test_voices = {names.index(v) for v in variants[-n_test:]}
    is_test = np.isin(data.subjects, sorted(test_voices))
    return data, np.flatnonzero(~is_test), np.flatnonzero(is_test), root


def load_fresh_voices(quick: bool, class_names: list[str]) -> ArrayDataset:
    """The benchmark's words spoken by ``FRESH_VOICES`` (4 when quick), labelled as ``class_names``."""
    fresh, _ = spoken_words(benchmark_words(quick), FRESH_VOICES[:4 if quick else None])
    if list(fresh.class_names) != list(class_names):
        raise RuntimeError(f"fresh voices' classes {fresh.class_names} differ from the benchmark's {class_names}")
    return fresh


def voice_task(data: ArrayDataset, train_idx: np.ndarray, held_out_words: int):
    """Voice identity among the pretraining voices: train on some words, test on the others."""
    subset = data.subset(train_idx)
    voices = np.unique(subset.subjects)
    labels = np.searchsorted(voices, subset.subjects)
    relabelled = ArrayDataset(subset.x, labels, subset.subjects, [str(v) for v in voices], subset.info,
                              source=subset.source + " (voice labels)")
    test_words = np.unique(subset.labels)[-held_out_words:]
    is_test = np.isin(subset.labels, test_words)
    return relabelled.subset(np.flatnonzero(~is_test)), relabelled.subset(np.flatnonzero(is_test))


def frontend_throughput(repeats: int = 3) -> dict:
    """Seconds per batch of 64 one-second clips: this front end's log-mel vs librosa's, the same
    work (no per-clip normalisation on either side), on one torch thread and on every core
    (librosa's numpy FFT runs on one core either way)."""
    import os

    import librosa

    from selfsup.encoders.audio import LogMelFrontEnd

    torch.manual_seed(0)
    x = torch.randn(64, 1, 16000) * 0.1
    fe = LogMelFrontEnd(normalize="none")                    # log(mel power + 1e-6), as librosa's below
    mel_kwargs = dict(sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=64, fmin=60, fmax=7800,
                      power=2.0, center=True, pad_mode="reflect", htk=True, norm=None)

    def ours():
        with torch.no_grad():
            return fe(x)                                      # (B, M, T): one channel

    def theirs():
        return np.log(librosa.feature.melspectrogram(y=x[:, 0].numpy(), **mel_kwargs) + 1e-6)

    def best(fn):
        fn()  # warm-up
        return min(timeit.repeat(fn, number=1, repeat=repeats))

    threads_before, rows = torch.get_num_threads(), []
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        t_librosa, t_ours = best(theirs), best(ours)
        rows.append({"threads": threads, "selfsup_s": t_ours, "librosa_s": t_librosa, "speedup": t_librosa / t_ours})
    torch.set_num_threads(threads_before)
    agree = float(np.abs(ours().numpy() - theirs()).max())
    return {"batch": "64 clips x 1 s at 16 kHz", "rows": rows, "max_abs_log_mel_difference": agree}


def pretrain_config(args, root: Path, objective: str, pretrain_seed: int) -> PretrainConfig:
    """One objective's pretraining run (seed ``--seed-offset`` + ``pretrain_seed``); seed 0 keeps
    the folder name of single-seed runs."""
    pretrain_seed += args.seed_offset
    suffix = f"_s{pretrain_seed}" if pretrain_seed else ""
    return PretrainConfig(modality="audio", data=str(root), out=str(Path(args.runs) / f"{objective}_e{args.epochs}{suffix}"),
                          objective=objective, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          objective_options={"num_negatives": args.cpc_negatives} if objective == "cpc" else {},
                          progress=False, seed=pretrain_seed)


def pretrained(config: PretrainConfig, dataset) -> tuple:
    """(encoder, metrics) of a pretraining run: read back when its folder holds the finished run
    (so reruns and the parallel pre-pass cost nothing here), else trained or resumed. A folder is
    trusted as it is: delete it after changing an objective's code or defaults."""
    run_dir = Path(config.out)
    if (run_dir / "metrics.json").exists() and (run_dir / ENCODER_FILE).exists():
        metrics = json.loads((run_dir / "metrics.json").read_text())
        if metrics.get("epochs") == config.epochs:
            return load_encoder(run_dir)[0], metrics
    result = pretrain(config, dataset=dataset, resume=(run_dir / "checkpoints").exists())
    return result.encoder, result.metrics


def _pretrain_job(argv: list[str], objective: str, pretrain_seed: int) -> str:
    """One pretraining run in a worker process (one torch thread): data decoded again there."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    data, train_idx, _, root = load_words(args.quick)
    config = pretrain_config(args, root, objective, pretrain_seed)
    metrics = pretrained(config, data.subset(train_idx))[1]
    return f"{objective} (pretraining seed {config.seed}): {metrics['train_seconds']:.0f} s"


def pretrain_in_parallel(args, argv: list[str]) -> None:
    """Run every (objective, pretraining seed) in ``args.pretrain_workers`` processes first; the
    probes then read the finished runs back."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(o, s) for s in range(args.pretrain_seeds) for o in args.objectives]
    with ProcessPoolExecutor(args.pretrain_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for line in pool.map(_pretrain_job, [argv] * len(jobs), *zip(*jobs)):
            print(f"pre-pass: {line}", flush=True)


def run(args) -> dict:
    if args.pretrain_workers > 1:
        pretrain_in_parallel(args, args.argv)
    torch.manual_seed(0)
    data, train_idx, test_idx, root = load_words(args.quick)
    modality = AudioModality()
    kwargs = modality.encoder_kwargs(data)
    tasks = {"words": (data.subset(train_idx), data.subset(test_idx)),
             "voices": voice_task(data, train_idx, held_out_words=3 if args.quick else 6),
             "words on fresh voices": (data.subset(train_idx), load_fresh_voices(args.quick, data.class_names))}
    budgets = {"all labels": None, "5 per class": 5}
    print(f"data: {len(data)} clips from {root}; pretraining on {len(train_idx)} clips of "
          f"{len(np.unique(data.subjects[train_idx]))} voices")
    for name, (tr, te) in tasks.items():
        print(f"task {name}: {tr.num_classes} classes, {len(tr)} train / {len(te)} test clips")

    rows, pretext = [], {}
    # Baseline rows do not depend on pretraining: a rerun with other epochs reuses them.
    cache_file = Path(args.runs) / "baseline_rows.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    settings = (f"{root}|seeds={args.seeds}|finetune={args.finetune_epochs},{args.finetune_steps}"
                + (f"|draws={args.label_draws}" if args.label_draws > 1 else "")
                + (f"|seed_offset={args.seed_offset}" if args.seed_offset else ""))

    def probe(method: str, encoder_for_seed, protocol: str = "linear", seconds: float = 0.0, cached: bool = False,
              **extra):
        for task, (tr, te) in tasks.items():
            for budget, per_class in budgets.items():
                key = f"{settings}|{task}|{budget}|{method}"
                if cached and "accuracy_per_seed" in cache.get(key, {}):   # older entries lack the seeds
                    rows.append(cache[key])
                    print(f"  {task:<22}{budget:<12}{method:<34}(reused from {cache_file})", flush=True)
                    continue
                started = time.perf_counter()
                r = evaluate(encoder_for_seed, tr, te, protocol, labels_per_class=per_class, seeds=args.seeds,
                             label_draws=args.label_draws, **extra)
                rows.append({"task": task, "labels": budget, "method": method, **r.summary,
                             "accuracy_per_seed": [s["accuracy"] for s in r.per_seed],
                             "label_draws": r.label_draws,
                             **({"first_draw_per_seed": [d[0]["accuracy"] for d in r.per_draw]} if r.per_draw else {}),
                             "seconds": seconds + time.perf_counter() - started})
                if cached:
                    cache[key] = rows[-1]
                    write_json(cache_file, cache)
                print(f"  {task:<22}{budget:<12}{method:<34}accuracy {r.summary['accuracy']:.3f} "
                      f"± {r.summary['accuracy_std']:.3f}", flush=True)

    def random_init(seed: int):
        torch.manual_seed(args.seed_offset + seed)
        return modality.build_encoder("spectrogram-cnn", **kwargs)

    probe("raw log-mel (mean+max pooled)", lambda seed: modality.build_encoder("log-mel", **kwargs), cached=True)
    probe("random init", random_init, cached=True)
    if not args.no_supervised:
        probe("supervised from scratch", random_init, "finetune", cached=True,
              finetune_options={"epochs": args.finetune_epochs, "min_steps": args.finetune_steps})

    pretrain_set = data.subset(train_idx)
    for objective in args.objectives:
        encoders, seconds = [], []
        for pretrain_seed in range(args.pretrain_seeds):
            config = pretrain_config(args, root, objective, pretrain_seed)
            encoder, metrics = pretrained(config, pretrain_set)
            seconds.append(metrics["train_seconds"])
            encoders.append(encoder)
            if pretrain_seed == 0:
                pretext[objective] = {k: v for k, v in metrics.items() if k.startswith("val/")}
            shown = {k: round(v, 3) for k, v in metrics.items() if k.split("/")[-1] in
                     ("loss", "pretext_acc", "pos_acc", "relative_mse", "mae", "baseline_mae")}
            print(f"{objective} (pretraining seed {config.seed}): {args.epochs} epochs in {seconds[-1]:.0f} s; "
                  f"held-out {shown}", flush=True)
        pretext[objective]["train_seconds"] = float(np.mean(seconds))
        # probe seed i reads pretrained encoder i (mod the number pretrained): the spread then
        # includes that of pretraining, as random init's includes that of initialisation
        probe(f"{objective} (linear probe)", lambda seed, encoders=encoders: encoders[seed % len(encoders)],
              seconds=float(np.mean(seconds)))

    throughput = frontend_throughput()
    for t in throughput["rows"]:
        print(f"front end, {t['threads']} thread(s): {t['selfsup_s'] * 1000:.1f} ms vs librosa "
              f"{t['librosa_s'] * 1000:.1f} ms per batch ({t['speedup']:.1f}x)")
    return {"rows": rows, "pretext": pretext, "throughput": throughput, "seeds": args.seeds, "epochs": args.epochs,
            "cpc_negatives": args.cpc_negatives, "pretrain_seeds": args.pretrain_seeds, "name": args.name,
            "label_draws": args.label_draws, "seed_offset": args.seed_offset,
            "objectives": args.objectives,
            "finetune": f"max({args.finetune_epochs} epochs, {args.finetune_steps} steps), batch 64, AdamW 1e-3",
            "quick": args.quick, "data": str(root), "n_pretrain": int(len(train_idx)),
            "tasks": {k: {"classes": int(tr.num_classes), "train": len(tr), "test": len(te),
                          "test_voices": len(np.unique(te.subjects))} for k, (tr, te) in tasks.items()}}


def markdown(results: dict, command: str) -> str:
    results["tasks"] = {k: results["tasks"][k] for k in sorted(results["tasks"], key=TASK_ORDER.index)}
    # a second fragment (e.g. one more objective, --name other) says which objectives it holds
    second = results.get("name", "audio") not in ("audio", "audio_quick")
    lines = ["## Audio: spoken words (espeak-ng), linear probes on held-out voices"
             + (f": {', '.join(results['objectives'])}" if second else "")
             + (f", replicated with new encoders (seeds {results['seed_offset']}+)" if results.get("seed_offset")
                else ""), "",
             f"Command: `{command}`", "",
             f"Data: {results['data']} (1 s clips at 16 kHz). Pretraining: {results['n_pretrain']} unlabelled clips of "
             f"the training voices (10% held out for the pretext metrics below), {results['epochs']} epochs, batch 64, "
             "spectrogram CNN (the default encoder). Tasks: "
             + "; ".join(f"**{k}** {v['classes']} classes, {v['train']} train / {v['test']} test clips"
                         for k, v in results["tasks"].items())
             + ". Words are tested on voices never heard in pretraining or probe training; voices are tested "
               "on words held out of probe training; words on fresh voices is the words probe tested on "
               f"{results['tasks']['words on fresh voices']['test_voices']} more voices that no exploratory "
               "run probed, the check that choosing SimCLR's views while looking at the 8 test voices did not fit "
               "them. Linear probe = logistic regression on the frozen embedding"
             + ("; supervised = the same CNN trained from scratch with a linear head "
                f"({results['finetune']}; shorter than the shared protocol's 30 epochs / 300 steps to fit 2 CPU "
                "cores)" if any(r["method"] == "supervised from scratch" for r in results["rows"])
                else " (no supervised row in this run)")
             + f". CPC samples {results['cpc_negatives']} negatives per prediction; SimCLR's views are two "
               "random 0.8 s segments with speed perturbation and a formant warp (each ±15%), mixing, gain, shift, "
               "noise and masks (the "
               f"defaults). Mean ± std over "
               f"{results['seeds']} seeds: the seeds vary the label subsets and probe, random init's initialisation, "
               + _pretraining_spread(results.get("pretrain_seeds", 1), results["seeds"])
               + _label_draws_note(results.get("label_draws", 1))
               + (f". A replication with new encoders: pretraining runs and random initialisations use the seeds "
                  f"from {results['seed_offset']} on (the label subsets are those of seeds 0, 1, ...)"
                  if results.get("seed_offset") else "")
               + "; seconds include (mean) pretraining.",
             ""]
    for task in results["tasks"]:
        few = (f"5 per class, mean of {results['label_draws']} draws" if results.get("label_draws", 1) > 1
               else "5 per class")
        lines += [f"### {task}", "", f"| method | all labels: accuracy | {few}: accuracy | seconds |",
                  "|---|---|---|---|"]
        methods = list(dict.fromkeys(r["method"] for r in results["rows"] if r["task"] == task))
        for method in methods:
            cells, seconds = [], 0.0
            for budget in ("all labels", "5 per class"):
                r = next(r for r in results["rows"] if r["task"] == task and r["method"] == method
                         and r["labels"] == budget)
                cells.append(f"{r['accuracy']:.3f} ± {r['accuracy_std']:.3f}")
                seconds = max(seconds, r["seconds"])
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {seconds:.0f} |")
        lines.append("")
    lines += ["### Pretext tasks on held-out clips (validation split of the pretraining clips)", "",
              "| objective | loss | pretext accuracy (chance) | error vs trivial predictor | seconds |", "|---|---|---|---|---|"]
    chance = {"cpc": f"1/{results.get('cpc_negatives', 64) + 1}", "simclr": "1/(2B-1)", "temporal-gap": "0.5"}
    order = list(results.get("objectives", [])) + sorted(results["pretext"])   # run order, also after --render
    for objective, m in sorted(results["pretext"].items(), key=lambda item: order.index(item[0])):
        acc = m.get("val/pretext_acc", m.get("val/pos_acc", float("nan")))
        if "val/relative_mse" in m:
            err = f"MSE {m['val/relative_mse']:.2f} x mean predictor's"
        elif "val/mae" in m:
            err = f"MAE {m['val/mae']:.3f} vs {m['val/baseline_mae']:.3f} (mean gap)"
        else:
            err = "-"
        if "val/instance_chance" in m:  # hierarchical contrast: the mean of its instance and temporal accuracies
            chance[objective] = f"{(m['val/instance_chance'] + m['val/temporal_chance']) / 2:.3f}"
        lines.append(f"| {objective} | {m.get('val/loss', float('nan')):.3f} | {acc:.3f} ({chance.get(objective, '1/B')}) "
                     f"| {err} | {m['train_seconds']:.0f} |")
    t = results["throughput"]
    remeasured = f" (re-measured: `{t['command']}`)" if "command" in t else ""
    lines += ["", f"Log-mel front end throughput on {t['batch']}, the same log-mel work on both sides, best of 3"
                  f"{remeasured}: "
              + "; ".join(f"{r['threads']} torch thread(s): selfsup (torchaudio, batched) {r['selfsup_s'] * 1000:.1f} ms "
                          f"vs librosa {r['librosa_s'] * 1000:.1f} ms, **{r['speedup']:.1f}x**" for r in t["rows"])
              + f". librosa runs on one core either way; the two log-mels differ by at most "
                f"{t['max_abs_log_mel_difference']:.2g}.", ""]
    if results.get("verdict"):
        lines += ["Verdicts. *Clearly* means more than two standard deviations (the larger of the two rows') "
                  "above raw log-mel and above random init: single runs, not only the means, come out in that "
                  "order" + (" (a run: one pretraining run or initialisation, scored over its label draws)"
                             if results.get("label_draws", 1) > 1 else "")
                  + ". Beside it, the paired comparison: seed i gives every row the same labelled subsets; the "
                  "t-test runs on one mean difference per pretraining run, since seeds that probe one "
                  "pretrained encoder are not independent.", "", results["verdict"], ""]
    return "\n".join(lines)


def _pretraining_spread(pretrain_seeds: int, seeds: int) -> str:
    if pretrain_seeds == 1:
        return ("and each objective is pretrained once only, so its ± leaves out the spread between pretraining "
                "runs")
    return (f"and each objective's pretraining (seed i probes the encoder pretrained with seed i"
            + (f" mod {pretrain_seeds}" if pretrain_seeds < seeds else "") + ")")


def _label_draws_note(draws: int) -> str:
    if draws == 1:
        return ""
    return (f". With 5 per class, each seed's score is the mean over {draws} label subsets (draw 0 is the seed's "
            "own subset, as with one draw), so the spread between seeds is mostly that of the encoders rather "
            "than of which 100 clips were labelled (`evaluate(..., label_draws)`)")


def first_draw(row: dict) -> tuple[float, float] | None:
    """(mean, std) over seeds of draw 0 alone: the figure one label subset per seed gives."""
    values = row.get("first_draw_per_seed")
    return (float(np.mean(values)), float(np.std(values, ddof=1))) if values and len(values) > 1 else None


def paired_comparison(best: dict, other: dict, pretrain_seeds: int = 1) -> str:
    """The best objective against another row, seed by seed (``paired_difference``): seeds that
    probe one pretraining run (i mod ``pretrain_seeds``) count once in the t-test."""
    a, b = best.get("accuracy_per_seed", []), other.get("accuracy_per_seed", [])
    if len(a) < 2 or len(a) != len(b):
        return ""
    d = paired_difference(a, b, groups=pretrain_seeds)
    over = f"{d['tested']} {'pretraining runs' if pretrain_seeds > 1 else 'seeds'}"
    test = (f"one-sided t-test over {over}: p = {d['p']:.2g}" if d["p"] is not None else
            "no t-test: the same difference every time")
    return f"higher in {d['higher']} of {d['seeds']} seeds, by {d['mean']:+.3f} ± {d['std']:.3f} ({test})"


def best_objective(results: dict, task: str, budget: str) -> str | None:
    """The method name of the objective whose probe scored highest on ``task`` with ``budget``."""
    ssl = [r for r in results["rows"] if r["task"] == task and r["labels"] == budget
           and r["method"].endswith("(linear probe)")]
    return max(ssl, key=lambda r: r["accuracy"])["method"] if ssl else None


def verdict(results: dict) -> str:
    """Say plainly, per task and label budget, whether the best objective beats raw log-mel and
    random init by more than two standard deviations (the larger of the two rows'): the bar is
    that a single run of each, not only their means, would come out in that order. The paired
    comparison over seeds is given beside it. On a confirmatory task the objective judged is the
    one that was best on the task it confirms."""
    lines, pretrain_runs = [], results.get("pretrain_seeds", 1)
    for task in sorted(results["tasks"], key=TASK_ORDER.index):
        for budget in ("all labels", "5 per class"):
            rows = [r for r in results["rows"] if r["task"] == task and r["labels"] == budget]
            get = lambda method: next(r for r in rows if r["method"] == method)
            method = best_objective(results, CONFIRMS.get(task, task), budget)
            if method is None:
                continue
            best = get(method)
            logmel, rand = get("raw log-mel (mean+max pooled)"), get("random init")
            score = lambda r: (r["accuracy"], r["accuracy_std"])
            clear = clears_bar(score(best), [score(logmel), score(rand)])
            which = f"the best objective on {CONFIRMS[task]}" if task in CONFIRMS else "the best objective"
            lines.append(f"**{task}, {budget}**: {which}, {best['method'].split(' (')[0]}, scores "
                         f"{best['accuracy']:.3f} ± {best['accuracy_std']:.3f} vs raw log-mel {logmel['accuracy']:.3f}"
                         f" and random init {rand['accuracy']:.3f} ± {rand['accuracy_std']:.3f}: "
                         + ("it clearly beats both." if clear else "it does NOT clearly beat both.")
                         + "".join(f" Paired with {name}: {text}." for name, text in
                                   (("raw log-mel", paired_comparison(best, logmel, pretrain_runs)),
                                    ("random init", paired_comparison(best, rand, pretrain_runs))) if text)
                         + _one_draw_verdict(best, logmel, rand))
    return "\n\n".join(lines)


def clears_bar(best: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    """*Clearly* above: the (mean, std) ``best`` more than two standard deviations (the larger of
    the pair's) above the mean of each of ``others``."""
    return all(best[0] - mean - 2 * max(best[1], std) > 0 for mean, std in others)


def _one_draw_verdict(best: dict, logmel: dict, rand: dict) -> str:
    """The same bar with one label subset per seed (draw 0), the measurement before label draws."""
    a, l, r = first_draw(best), first_draw(logmel), first_draw(rand)
    if a is None or l is None or r is None:
        return ""
    clear = clears_bar(a, [l, r])
    return (f" With one label subset per seed (draw 0 only): {a[0]:.3f} ± {a[1]:.3f} vs raw log-mel {l[0]:.3f} and "
            f"random init {r[0]:.3f} ± {r[1]:.3f}, {'clear' if clear else 'not clear'} by the same bar.")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--pretrain-seeds", type=int, default=1,
                   help="pretrain each objective this many times; probe seed i uses pretrained encoder i")
    p.add_argument("--pretrain-workers", type=int, default=1,
                   help="pretrain in this many processes first (one torch thread each), then probe")
    p.add_argument("--label-draws", type=int, default=5,
                   help="score each seed of a few-label budget as the mean over this many label subsets")
    p.add_argument("--seed-offset", type=int, default=0,
                   help="pretraining runs and random initialisations use seeds from this one on (a replication "
                        "with new encoders; the label subsets stay those of seeds 0, 1, ...)")
    p.add_argument("--no-supervised", action="store_true",
                   help="leave out the supervised-from-scratch row (the slowest; the verdicts do not use it)")
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--finetune-steps", type=int, default=60)
    p.add_argument("--objectives", default=",".join(OBJECTIVES))
    p.add_argument("--cpc-negatives", type=int, default=16, help="CPC's sampled negatives (its cost on a CPU)")
    p.add_argument("--throughput-only", action="store_true",
                   help="re-measure only the front end's throughput (on an idle machine); keep the saved probe rows")
    standard_arguments(p, runs="runs/bench_audio", name="audio")
    args = apply_standard_arguments(p.parse_args(argv))
    if args.quick:
        args.epochs, args.seeds, args.finetune_epochs, args.finetune_steps, args.label_draws = 1, 2, 1, 10, 2
    args.objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    unknown = [o for o in args.objectives if o not in AudioModality.objectives]
    if unknown:    # said now, not after the runs before it
        p.error(f"unknown objective(s) {unknown}; audio has {', '.join(AudioModality.objectives)}")
    args.argv = sys.argv[1:] if argv is None else list(argv)   # what the pre-pass workers parse again
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.throughput_only:     # the saved run, with the throughput measured again, then rendered
        saved, results = saved_results(args)
        results["throughput"] = {**frontend_throughput(), "command": command_line("audio.py", argv, args.quick)}
        write_json(saved, results)
        args.render = True
    run_and_publish(args, "audio.py", argv, run, verdict, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
