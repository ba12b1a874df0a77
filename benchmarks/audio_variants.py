"""Exploratory audio runs: one SimCLR (or other objective) variant, pretrained once, probed on
the audio benchmark's data and tasks (benchmarks/audio.py).

This is the script behind the "what we tried" table of docs/audio.md, not a benchmark: each
call pretrains one variant with one seed (4-10 minutes on 2 CPU cores) and appends one line to
runs/bench_audio_variants/results.jsonl; the table of every line so far is printed at the end.
Differences under about 0.02 are within the noise of a single pretraining run. Nothing here
writes BENCHMARKS.md.

    python benchmarks/audio_variants.py --name default                  # the default views
    python benchmarks/audio_variants.py --name no-speed --speed 0
    python benchmarks/audio_variants.py --name more-voices --more-voices 52 --epochs 8
    python benchmarks/audio_variants.py --name random-wide --random --widths 32,64,128 --seed 1

    python benchmarks/audio_variants.py --name eq6-s1 --eq 6 --seed 1

Variants that the objective's options cannot express (how often speed perturbation is applied,
a tempo-only time stretch, a random EQ) replace the audio modality's view augmentation for the
run. Nothing here probes or pretrains on the benchmark's fresh voices (audio.FRESH_VOICES): they
stay the confirmatory test of whatever these runs lead to.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from unittest import mock

import torch

from selfsup.config import PretrainConfig
from selfsup.datasets.base import ArrayDataset
from selfsup.datasets.espeak import AUXILIARY, COMMANDS, DEFAULT_VARIANTS, DIGITS, generate_spoken_words, voice_variants
from selfsup.evaluation.protocol import evaluate
from selfsup.modalities import audio_transforms as at
from selfsup.modalities.audio import AudioModality
from selfsup.modalities.sequence_transforms import Compose, RandomApply, interpolate_time
from selfsup.training.run import pretrain

import audio as benchmark
from common import stacked_inputs

RUNS = Path("runs/bench_audio_variants")
#: words that are in neither probe task: unlabelled extra speech of the training voices
OTHER_WORDS = AUXILIARY + ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
                           "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra",
                           "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "backward", "forward",
                           "follow", "learn", "visual")


class TimeStretch(torch.nn.Module):
    """Tempo change with the pitch kept (phase vocoder), (B, C, N) -> (B, C, N); each clip gets
    one of ``levels`` rates in 1 ± ``amount`` (one vocoder call per rate), centred and cropped or
    zero-padded back to N samples."""

    name = "time_stretch"

    def __init__(self, amount: float, levels: int = 4, n_fft: int = 512, hop: int = 128):
        super().__init__()
        self.rates = torch.linspace(1 - amount, 1 + amount, levels).tolist()
        self.n_fft, self.hop = n_fft, hop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torchaudio.functional as AF

        b, c, n = x.shape
        window = torch.hann_window(self.n_fft, device=x.device)
        advance = torch.linspace(0, torch.pi * self.hop, self.n_fft // 2 + 1, device=x.device)[:, None]
        pick = torch.randint(0, len(self.rates), (b,))
        out = x.clone()
        for i, rate in enumerate(self.rates):
            idx = (pick == i).nonzero().flatten()
            if len(idx) == 0:
                continue
            spec = torch.stft(x[idx].reshape(-1, n), self.n_fft, self.hop, window=window, return_complex=True)
            y = torch.istft(AF.phase_vocoder(spec, rate, advance), self.n_fft, self.hop, window=window)
            m = y.shape[-1]
            y = y[:, (m - n) // 2:(m - n) // 2 + n] if m >= n else torch.nn.functional.pad(
                y, ((n - m) // 2, n - m - (n - m) // 2))
            out[idx] = y.reshape(len(idx), c, n)
        return out


class RandomEQ(torch.nn.Module):
    """A random smooth gain curve over frequency, (B, C, N) -> (B, C, N): ``points`` gains
    ~ U(-max_db, max_db) per clip, evenly spread from 0 Hz to Nyquist and linearly interpolated
    across the Fourier bins (another microphone, room or timbre)."""

    name = "random_eq"

    def __init__(self, max_db: float, points: int = 8):
        super().__init__()
        self.max_db, self.points = max_db, points

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, bins = x.shape[0], x.shape[-1] // 2 + 1                                    # Fourier bins F
        gains_db = (2 * torch.rand(b, self.points, device=x.device) - 1) * self.max_db    # (B, P)
        where = torch.linspace(0, self.points - 1, bins, device=x.device).expand(b, bins)  # (B, F)
        return at.filter_waveform(x, 10 ** (interpolate_time(gains_db, where) / 20))


#: the modality's own augmentation, kept before a run replaces it with a variant's
DEFAULT_VIEW_AUGMENTATION = at.view_augmentation


def view_augmentation_for(args):
    """The modality's view augmentation with this variant's speed probability and time stretch
    (speed, warp and strength reach it as the objective's options)."""
    def make(strength: float = 1.0, speed: float = 0.15, warp: float = 0.15) -> at.Transformation:
        s = strength
        first = [RandomApply(TimeStretch(args.stretch), p=0.8)] if args.stretch > 0 else []
        if speed > 0:
            first.append(RandomApply(at.SpeedPerturb(1 - speed * s, 1 + speed * s), p=args.speed_p))
        if args.eq > 0:
            first.append(RandomApply(RandomEQ(args.eq * s), p=0.8))
        rest = DEFAULT_VIEW_AUGMENTATION(strength, speed=0, warp=warp)    # formant warp, mixing, gain, ... masks
        return Compose(first + [rest])
    return make


def extra_clips(args, modality: AudioModality) -> torch.Tensor | None:
    """(N, 1, samples) unlabelled clips added to pretraining: other words of the training voices
    and/or the benchmark's words spoken by voices that neither probe task uses."""
    roots = []
    if args.more_words:
        roots.append(generate_spoken_words(words=OTHER_WORDS, variants=DEFAULT_VARIANTS[:16], speeds=(130, 180),
                                           pitches=(35, 65)))
    if args.more_voices:
        used = set(DEFAULT_VARIANTS)     # the benchmark's training, test and fresh voices
        others = [v for v in voice_variants() if v not in used and " " not in v]
        if args.more_voices > len(others):
            raise SystemExit(f"--more-voices: only {len(others)} voices are outside the benchmark's")
        others = others[:args.more_voices]
        roots.append(generate_spoken_words(words=DIGITS + COMMANDS, variants=others, speeds=(130, 180),
                                           pitches=(35, 65)))
    if not roots:
        return None
    folders = [modality.load(root) for root in roots]
    return torch.cat([stacked_inputs(f) for f in folders])


def encoder_for(args, data, train_idx, modality: AudioModality):
    encoder_options = {"widths": [int(w) for w in args.widths.split(",")]} if args.widths else {}
    if args.random:
        torch.manual_seed(args.seed)
        return modality.build_encoder("spectrogram-cnn", **modality.encoder_kwargs(data), **encoder_options), {}
    options = ({"temperature": args.temperature, "speed": args.speed, "warp": args.warp, "strength": args.strength}
               if args.objective == "simclr" else {})
    config = PretrainConfig(modality="audio", data=str(data.source), out=str(RUNS / args.name), objective=args.objective,
                            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, progress=False, seed=args.seed,
                            objective_options=options, encoder_options=encoder_options)
    pretrain_set = data.subset(train_idx)
    more = extra_clips(args, modality)
    if more is not None:
        pretrain_set = ArrayDataset(torch.cat([pretrain_set.x, more]), None, None, None, pretrain_set.info,
                                    source=f"{pretrain_set.source} + {len(more)} unlabelled clips")
    with mock.patch.object(at, "view_augmentation", view_augmentation_for(args)):
        result = pretrain(config, dataset=pretrain_set, resume=(RUNS / args.name / "checkpoints").exists())
    return result.encoder, {k: round(v, 3) for k, v in result.metrics.items() if k.startswith("val/")}


def table(lines: list[dict]) -> str:
    rows = ["| variant | words, all | words, 5/class | voices, all | voices, 5/class | seconds |", "|---|---|---|---|---|---|"]
    for r in lines:
        rows.append(f"| {r['name']} | {r['words/all']:.3f} | {r['words/5']:.3f} | {r['voices/all']:.3f} | "
                    f"{r['voices/5']:.3f} | {r['seconds']:.0f} |")
    return "\n".join(rows)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="the variant's name: its run folder and table row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--objective", default="simclr")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--speed", type=float, default=0.15, help="speed perturbation range (0 = none)")
    p.add_argument("--speed-p", type=float, default=0.8, help="share of clips that get it")
    p.add_argument("--strength", type=float, default=1.0)
    p.add_argument("--stretch", type=float, default=0.0, help="tempo-only time stretch range (0 = none)")
    p.add_argument("--warp", type=float, default=0.15, help="formant warp range (FormantWarp; 0 = none)")
    p.add_argument("--eq", type=float, default=0.0, help="random EQ range in dB (RandomEQ, on 80%% of clips; 0 = none)")
    p.add_argument("--more-words", action="store_true", help="add 41 other words of the training voices")
    p.add_argument("--more-voices", type=int, default=0, help="add the 20 words spoken by this many voices that no probe uses (at most 52)")
    p.add_argument("--widths", default="", help="the CNN's block widths, e.g. 32,64,128")
    p.add_argument("--random", action="store_true", help="probe the randomly initialised encoder instead")
    p.add_argument("--probe-seeds", type=int, default=3, help="label draws for the 5-per-class probes")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    data, train_idx, test_idx, _ = benchmark.load_words(quick=False)
    modality = AudioModality()
    tasks = {"words": (data.subset(train_idx), data.subset(test_idx)),
             "voices": benchmark.voice_task(data, train_idx, held_out_words=6)}
    started = time.perf_counter()
    encoder, pretext = encoder_for(args, data, train_idx, modality)
    line = {"name": args.name, "argv": sys.argv[1:] if argv is None else list(argv), "pretext": pretext,
            "seconds": time.perf_counter() - started}
    for task, (train, test) in tasks.items():
        for per_class in (None, 5):
            r = evaluate(lambda seed: encoder, train, test, "linear", labels_per_class=per_class,
                         seeds=args.probe_seeds if per_class else 1)
            line[f"{task}/{per_class or 'all'}"] = round(r.summary["accuracy"], 4)
    RUNS.mkdir(parents=True, exist_ok=True)
    with open(RUNS / "results.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line))
    print(table([json.loads(s) for s in (RUNS / "results.jsonl").read_text().splitlines() if s.strip()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
