"""Audio clips: (C, N) waveforms at one sample rate per sample, batched as (B, C, N).

Data paths the modality reads (``load``):

    FOLDER                         clips under it; class subfolders give labels (any depth);
                                   an optional metadata.csv gives labels and subjects
    FILE                           one recording (cut into windows with hop_seconds)
    builtin:spoken-words           20 words x 16 espeak-ng voices x 2 speeds x 2 pitches
    builtin:asterisk               the recorded Asterisk prompts (one speaker, 8 kHz)
    speech-commands:ROOT?split=test        Speech Commands v2 (train | validation | test)
    librispeech:ROOT?subset=dev-clean&label=speaker
    esc50:ROOT?folds=1,2,3
"""

from __future__ import annotations

import copy
from pathlib import Path
from urllib.parse import parse_qsl

import torch
from torch import nn

from selfsup.datasets.audio_folder import audio_file, audio_folder
from selfsup.datasets.base import SampleDataset
from selfsup.encoders.audio import CPCWaveEncoder, LogMelFeatures, LogMelFrontEnd, SpectrogramCNN
from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError, DataError
from selfsup.modalities import audio_transforms as at
from selfsup.modalities.base import Entry, Modality
from selfsup.objectives.audio2vec import Audio2Vec
from selfsup.objectives.autoencoder import Autoencoder
from selfsup.objectives.contrastive import SimCLR
from selfsup.objectives.cpc import CPC
from selfsup.objectives.hierarchical_contrast import HierarchicalContrast
from selfsup.objectives.temporal_gap import TemporalGap

ASTERISK_PROMPTS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
BUILTIN = {"spoken-words": "espeak-ng: 20 words (digits, commands) x 16 voices x 2 speeds x 2 pitches (subjects = voices)",
           "asterisk": f"Asterisk's recorded prompts, one speaker, 8 kHz ({ASTERISK_PROMPTS})"}
STANDARD_SETS = ("speech-commands", "librispeech", "esc50")
TRAINABLE_ENCODERS = ("spectrogram-cnn", "cpc-wave")


class AudioModality(Modality):
    name = "audio"
    description = ("audio clips (B, C, N): folders of wav/flac/ogg/mp3 or video audio tracks (class subfolders = "
                   "labels), Speech Commands, LibriSpeech, ESC-50, builtin:spoken-words")
    default_encoder = "spectrogram-cnn"
    default_objective = "simclr"

    def __init__(self, sample_rate: int = 16000, clip_seconds: float = 1.0, mono: bool = True,
                 hop_seconds: float | None = None, crop: str = "center", metadata: str | None = None,
                 label_column: str = "label", subject_column: str = "subject"):
        super().__init__(sample_rate=sample_rate, clip_seconds=clip_seconds, mono=mono, hop_seconds=hop_seconds,
                         crop=crop, metadata=metadata, label_column=label_column, subject_column=subject_column)
        self.sample_rate, self.clip_seconds = int(sample_rate), float(clip_seconds)
        self.clip_options = {"sample_rate": self.sample_rate, "clip_seconds": self.clip_seconds, "mono": mono,
                             "hop_seconds": hop_seconds, "crop": crop}
        self.folder_options = {"metadata": metadata, "label_column": label_column, "subject_column": subject_column}

    # -- data ------------------------------------------------------------------------------
    def load(self, path: str | Path) -> SampleDataset:
        text = str(path)
        scheme, _, rest = text.partition(":")
        if scheme == "builtin":
            return self._load_builtin(rest)
        if scheme in STANDARD_SETS:
            return self._load_standard(scheme, rest)
        p = Path(text)
        if p.is_dir():
            return audio_folder(p, **self.folder_options, **self.clip_options)
        if p.is_file():
            return audio_file(p, **self.clip_options)
        raise DataError("no such file or folder", p)

    def _load_builtin(self, name: str) -> SampleDataset:
        if name == "spoken-words":
            from selfsup.datasets.espeak import generate_spoken_words

            return audio_folder(generate_spoken_words(sample_rate=self.sample_rate), **self.clip_options)
        if name == "asterisk":
            if not ASTERISK_PROMPTS.is_dir():
                raise DataError("not installed (Debian: apt-get install asterisk-core-sounds-en-wav)", ASTERISK_PROMPTS)
            return audio_folder(ASTERISK_PROMPTS, **self.clip_options)
        raise DataError(f"unknown built-in audio dataset '{name}'; built-in: {', '.join(BUILTIN)}")

    def _load_standard(self, scheme: str, rest: str) -> SampleDataset:
        from selfsup.datasets import speech_sets

        root, _, query = rest.partition("?")
        args = dict(parse_qsl(query))
        if "download" in args:
            args["download"] = args["download"].lower() in ("1", "true", "yes")
        if "folds" in args:
            args["folds"] = [int(f) for f in args["folds"].split(",")]
        loader = {"speech-commands": speech_sets.speech_commands, "librispeech": speech_sets.librispeech,
                  "esc50": speech_sets.esc50}[scheme]
        try:
            return loader(root, **args, **self.clip_options)
        except TypeError as exc:
            raise ConfigError(f"bad options for {scheme}: {exc}") from None

    def encoder_kwargs(self, dataset: SampleDataset) -> dict:
        return {"sample_rate": self.sample_rate_of(dataset), "in_channels": self.input_shape(dataset)[0]}

    def check_input(self, dataset: SampleDataset, encoder: Encoder) -> None:
        x = dataset[0]["x"]
        if x.dim() != 2:
            raise DataError(f"audio samples must be (channels, samples), got shape {tuple(x.shape)}", dataset.source)
        if x.shape[-1] < encoder.min_input_length:
            raise DataError(f"clips of {x.shape[-1]} samples are shorter than the encoder's smallest input "
                            f"({encoder.min_input_length}); use longer clips (clip_seconds)", dataset.source)

    # -- what objectives get from the modality ----------------------------------------------
    def sample_rate_of(self, dataset: SampleDataset | None) -> int:
        return int(dataset.info.get("sample_rate", self.sample_rate)) if dataset is not None else self.sample_rate

    def input_shape(self, dataset: SampleDataset | None) -> tuple[int, int]:
        """(channels, samples) of one clip."""
        if dataset is None:
            return 1, int(round(self.clip_seconds * self.sample_rate))
        c, n = dataset[0]["x"].shape
        return int(c), int(n)

    def reconstruction_target(self, dataset: SampleDataset | None) -> LogMelFrontEnd:
        """What Audio2Vec and the autoencoder reconstruct: the un-normalised log-mel of a slice."""
        return LogMelFrontEnd(self.sample_rate_of(dataset), normalize="none")

    def view_maker(self, dataset: SampleDataset | None, segment_seconds: float | None = None, strength: float = 1.0,
                   speed: float = 0.15, warp: float = 0.15):
        """SimCLR's two views: two random segments of each clip (default: 0.8 of its length, so they
        overlap), each augmented independently (``speed``, ``warp``: see ``view_augmentation``)."""
        _, n = self.input_shape(dataset)
        length = int(0.8 * n) if segment_seconds is None else min(n, _samples(self, dataset, segment_seconds))
        augment = at.view_augmentation(strength, speed, warp)

        def make_views(batch):
            x = batch["x"]
            return augment(at.random_segments(x, length)), augment(at.random_segments(x, length))

        return make_views


def _samples(modality: AudioModality, dataset, seconds: float) -> int:
    return int(round(seconds * modality.sample_rate_of(dataset)))


def _needs_training(encoder: Encoder, objective: str) -> None:
    """Every objective here trains the encoder; the weightless log-mel features cannot be trained."""
    if not any(p.requires_grad for p in encoder.parameters()):
        raise ConfigError(f"objective '{objective}' works with the encoders {', '.join(TRAINABLE_ENCODERS)}; "
                          f"{type(encoder).__name__} has no weights to train (it is the raw-feature baseline "
                          f"for probes)")


def _audio2vec(mode: str):
    def factory(encoder, modality: AudioModality, dataset, slice_seconds: float = 0.2, context: int = 2, **kw):
        name = f"audio2vec-{mode}"
        _needs_training(encoder, name)
        channels, n = modality.input_shape(dataset)
        length = _samples(modality, dataset, slice_seconds)
        if (2 * context + 1) * length > n:
            raise ConfigError(f"{name} needs {2 * context + 1} slices of {slice_seconds} s but clips are "
                              f"{n / modality.sample_rate_of(dataset):.2f} s; set objective_options.slice_seconds "
                              f"or context lower, or modality_options.clip_seconds higher")
        return Audio2Vec(encoder, length, (channels,), mode=mode, context=context,
                         target=modality.reconstruction_target(dataset), **kw)

    return factory


def _temporal_gap(encoder, modality: AudioModality, dataset, slice_seconds: float = 0.2, **kw):
    _needs_training(encoder, "temporal-gap")
    _, n = modality.input_shape(dataset)
    return TemporalGap(encoder, _samples(modality, dataset, slice_seconds), n, **kw)


def _autoencoder(encoder, modality: AudioModality, dataset, slice_seconds: float | None = 0.2, **kw):
    _needs_training(encoder, "autoencoder")
    channels, n = modality.input_shape(dataset)
    length = n if slice_seconds is None else min(n, _samples(modality, dataset, slice_seconds))
    return Autoencoder(encoder, length, (channels,), target=modality.reconstruction_target(dataset), **kw)


def _cpc(encoder, modality: AudioModality, dataset, **kw):
    _needs_training(encoder, "cpc")
    return CPC(encoder, **kw)


def _simclr(encoder, modality: AudioModality, dataset, segment_seconds: float | None = None, strength: float = 1.0,
            speed: float = 0.15, warp: float = 0.15, **kw):
    _needs_training(encoder, "simclr")
    for option, value in (("speed", speed), ("warp", warp)):
        if not 0 <= value * strength < 1:
            raise ConfigError(f"simclr's {option} must keep its factors between 0 and 2: {option} x strength = "
                              f"{value * strength} (use 0 to switch it off, 0.15 by default)")
    return SimCLR(encoder, modality.view_maker(dataset, segment_seconds, strength, speed, warp), **kw)


def _hierarchical_contrast(encoder, modality: AudioModality, dataset, **kw):
    """Crops and masks whole log-mel frames: the objective computes the clip's log-mel once with a
    copy of the encoder's front end and feeds the crops to the CNN as (B, C, mels, frames)."""
    if not isinstance(encoder, SpectrogramCNN):
        raise ConfigError("objective 'hierarchical-contrast' on audio crops log-mel frame sequences: "
                          "use --encoder spectrogram-cnn")
    frontend = copy.deepcopy(encoder.frontend)
    frames = nn.Sequential(frontend, nn.Unflatten(1, (encoder.in_channels, frontend.n_mels)))
    return HierarchicalContrast(encoder, frontend=frames, **kw)


ENCODERS_NOTE = " [encoders: " + ", ".join(TRAINABLE_ENCODERS) + "]"

AudioModality.encoders = {
    "spectrogram-cnn": Entry(SpectrogramCNN, "log-mel (64 x 10 ms) -> 3 conv blocks -> 256-d per 40 ms, "
                                             "mean+max pooled"),
    "cpc-wave": Entry(CPCWaveEncoder, "CPC raw-waveform convs (one latent per 10 ms at 16 kHz) + GRU context, "
                                      "mean+max pooled context"),
    "log-mel": Entry(LogMelFeatures, "no weights: log-mel frames mean+max pooled (raw-feature baseline for probes)"),
}
AudioModality.objectives = {
    "simclr": Entry(_simclr, "NT-Xent between two augmented random segments of a clip" + ENCODERS_NOTE),
    "audio2vec-cbow": Entry(_audio2vec("cbow"), "reconstruct a slice's log-mel from 2+2 neighbouring slices"
                            + ENCODERS_NOTE),
    "audio2vec-skipgram": Entry(_audio2vec("skipgram"), "reconstruct 2+2 neighbouring slices' log-mel from the "
                                "middle slice" + ENCODERS_NOTE),
    "temporal-gap": Entry(_temporal_gap, "predict the normalised time gap between two slices of a clip"
                          + ENCODERS_NOTE),
    "cpc": Entry(_cpc, "contrastive predictive coding of future latent steps (InfoNCE)" + ENCODERS_NOTE),
    "autoencoder": Entry(_autoencoder, "reconstruct a slice's log-mel from its own embedding (baseline)"
                         + ENCODERS_NOTE),
    "hierarchical-contrast": Entry(_hierarchical_contrast, "TS2Vec: instance + temporal contrast of two overlapping "
                                   "masked crops of the log-mel frames at every time scale [encoder: spectrogram-cnn]"),
}

__all__ = ["AudioModality"]
