"""Video datasets: folders with class subfolders, clip samplers, the DAVIS layout (reader and
writer), the generated moving-object videos, the modality's loading and sound attachment."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.datasets.davis import (DavisClips, davis_palette, read_sequence, sequence_names, write_image_set,
                                    write_mask, write_sequence)
from selfsup.datasets.synthetic_video import generate_moving_objects
from selfsup.datasets.video_folder import (VideoClips, motion_starts, uniform_starts, video_files, video_folder)
from selfsup.datasets.video_io import read_frames, write_video
from selfsup.errors import ConfigError, DataError
from selfsup.modalities.video import VideoModality
from selfsup.training.data import make_loader, validation_split


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """2 digit classes x 3 videos of 12 frames, 32 px, with sound and DAVIS masks."""
    return generate_moving_objects(tmp_path_factory.mktemp("gen"), classes=[3, 7], videos_per_class=3,
                                   num_frames=12, fps=12, size=32, objects=2)


def test_generated_set_has_videos_masks_sound_and_metadata(generated):
    videos = sorted((generated / "videos").rglob("*.mp4"))
    assert [p.parent.name for p in videos] == ["3"] * 3 + ["7"] * 3
    meta = json.loads((generated / "metadata.json").read_text())
    assert len(meta) == 6 and {m["class"] for m in meta} == {"3", "7"}
    assert all(m["items"][0]["label"] == m["class"] for m in meta)           # the first item names the class
    seq = read_sequence(generated / "davis", meta[0]["name"])
    frames = read_frames(videos[0])
    assert seq.frames.shape == frames.shape == (12, 3, 32, 32)
    assert (seq.frames - frames).abs().mean() < 0.04                         # the same pictures (jpeg vs h264)
    assert set(seq.masks.unique().tolist()) <= {0, 1, 2} and bool((seq.masks[0] == 1).any())
    # object pixels move: the first object's mask is not the same in the first and last frame
    assert not torch.equal(seq.masks[0] == 1, seq.masks[-1] == 1)
    assert sequence_names(generated / "davis", split="val") == [m["name"] for m in meta]
    # a second call with the same request reuses the files
    stamp = videos[0].stat().st_mtime_ns
    generate_moving_objects(generated, classes=[3, 7], videos_per_class=3, num_frames=12, fps=12, size=32, objects=2)
    assert videos[0].stat().st_mtime_ns == stamp


def test_folder_gives_labelled_clips_with_held_out_video_subjects(generated):
    data = video_folder(generated / "videos", num_frames=4, size=32, clips_per_video=2)
    assert len(data) == 12 and data.class_names == ["3", "7"]
    assert data.labels.tolist() == [0] * 6 + [1] * 6
    assert data.subjects.tolist() == [0, 0, 1, 1, 2, 2] * 2                  # the video's number in its class
    sample = data[5]
    assert sample["x"].shape == (4, 3, 32, 32) and int(sample["y"]) == 0 and int(sample["index"]) == 5
    assert data.file(5).name == "3_002.mp4"
    assert data.clip_start(4) == 0.0 and data.clip_start(5) == pytest.approx(1.0 - 4 / 12)


def test_samplers_place_clips(generated):
    files = sorted((generated / "videos").rglob("*.mp4"))[:1]
    tiled = video_files(files, num_frames=4, size=None, clips_per_video=None)  # back-to-back clips
    assert len(tiled) == 3 and [tiled.clip_start(i) for i in range(3)] == pytest.approx([0, 4 / 12, 8 / 12])
    whole = read_frames(files[0])
    assert torch.allclose(torch.cat([tiled[i]["x"] for i in range(3)]), whole)
    random = video_files(files, num_frames=4, sampler="random", clips_per_video=2)
    torch.manual_seed(0)
    starts = [random.clip_start(0) for _ in range(20)]
    assert len(set(starts)) > 10 and 0 <= min(starts) and max(starts) <= 1.0 - 4 / 12
    np.testing.assert_allclose(uniform_starts(10.0, 2.0, 5), [0, 2, 4, 6, 8])


def test_motion_sampler_finds_the_moving_part(tmp_path):
    """A still first half and a moving second half: the high-motion windows are in the second."""
    frames = np.full((24, 32, 32, 3), 90, dtype=np.uint8)
    for t in range(12, 24):
        frames[t, 8:20, (t - 12) * 2: (t - 12) * 2 + 8] = 250
    path = write_video(tmp_path / "still_then_moving.mp4", frames, 12)
    data = video_files([path], num_frames=6, sampler="motion", clips_per_video=2)
    starts = sorted(data.clip_start(i) for i in range(2))
    assert all(s >= 11 / 12 - 1e-6 for s in starts)                         # both windows see the motion
    assert abs(starts[1] - starts[0]) >= 6 / 12 - 1e-6                       # and do not overlap
    assert motion_starts(np.array([0, 0, 5, 5, 0, 0, 0]), 3, 1).tolist() == [2]


def test_folder_errors(tmp_path, generated):
    with pytest.raises(DataError, match="no such folder"):
        video_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="holds only .txt"):
        video_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="too short"):
        video_folder(generated / "videos", num_frames=30)                     # 12-frame videos
    bad = tmp_path / "bad"
    (bad / "a").mkdir(parents=True)
    (bad / "a" / "broken.mp4").write_bytes(b"\x00" * 2000)
    with pytest.raises(DataError, match="broken.mp4: unreadable video"):
        video_folder(bad)


def test_davis_writer_and_reader_round_trip(tmp_path):
    frames = torch.nn.functional.interpolate(torch.rand(3, 3, 6, 10), size=(24, 40), mode="bilinear")  # smooth
    masks = torch.zeros(3, 24, 40, dtype=torch.long)
    masks[:, 4:10, 5:15], masks[:, 12:20, 20:30] = 1, 2
    write_sequence(tmp_path, "seq", frames, masks)
    write_image_set(tmp_path, "val", ["seq"])
    seq = read_sequence(tmp_path, "seq")
    assert torch.equal(seq.masks, masks) and seq.num_objects == 2
    assert (seq.frames - frames).abs().mean() < 0.04                             # JPEG
    png = Image.open(tmp_path / "Annotations" / "480p" / "seq" / "00000.png")
    assert png.mode == "P"
    palette = np.array(png.getpalette()).reshape(-1, 3)
    assert palette[1].tolist() == [128, 0, 0] and palette[2].tolist() == [0, 128, 0]
    assert davis_palette()[3].tolist() == [128, 128, 0]
    resized = read_sequence(tmp_path, "seq", size=(12, 12))
    assert resized.frames.shape == (3, 3, 12, 12) and set(resized.masks.unique().tolist()) <= {0, 1, 2}
    assert sequence_names(tmp_path, split="val") == ["seq"]


def test_davis_errors(tmp_path):
    with pytest.raises(DataError, match="not a DAVIS folder"):
        sequence_names(tmp_path)
    write_sequence(tmp_path, "seq", torch.rand(2, 3, 8, 8))                      # frames, no masks
    (tmp_path / "Annotations" / "480p" / "seq").mkdir(parents=True)
    with pytest.raises(DataError, match="first frame has no annotation"):
        read_sequence(tmp_path, "seq")
    write_mask(tmp_path / "Annotations" / "480p" / "seq" / "00000.png", np.zeros((4, 4), dtype=np.int64))
    with pytest.raises(DataError, match="mask is"):
        read_sequence(tmp_path, "seq")
    with pytest.raises(DataError, match="1080p"):
        sequence_names(tmp_path, resolution="1080p")
    with pytest.raises(DataError, match="ImageSets"):
        sequence_names(tmp_path, split="val")


def test_modality_reads_folders_files_davis_and_builtins(generated):
    modality = VideoModality(num_frames=4, size=32)
    folder = modality.load(generated / "videos")
    assert isinstance(folder, VideoClips) and folder.has_labels
    one = modality.load(sorted((generated / "videos").rglob("*.mp4"))[0])
    assert len(one) == 1 and not one.has_labels
    davis = modality.load(generated / "davis")
    assert isinstance(davis, DavisClips) and len(davis) == 6 and davis[0]["x"].shape == (4, 3, 32, 32)
    kwargs = modality.encoder_kwargs(folder)
    assert kwargs["in_channels"] == 3 and len(kwargs["mean"]) == 3 and min(kwargs["std"]) > 0
    encoder = modality.build_encoder(None, **kwargs)
    modality.check_input(folder, encoder)
    with pytest.raises(DataError, match="no such file or folder"):
        modality.load(generated / "nothing")
    with pytest.raises(DataError, match="unknown built-in"):
        modality.load("builtin:cats")
    with pytest.raises(ConfigError, match="unknown clip sampler"):
        VideoModality(sampler="best")


def test_sound_statistics_follow_clips_through_views_and_loaders(generated, tmp_path):
    modality = VideoModality(num_frames=4, size=32, clips_per_video=2)
    data = modality.load(generated / "videos")
    features = modality.attach_sound(data)
    assert features.shape == (12, data.sound.dim) and torch.isfinite(features).all()
    train, val = validation_split(data, 0.25, seed=0)
    sample = val[1]
    assert int(sample["index"]) == 1 and torch.allclose(sample["sound"], features[val.indices[1]])
    batch = next(iter(make_loader(train, 4, train=True)))
    assert batch["x"].shape == (4, 4, 3, 32, 32) and batch["sound"].shape == (4, data.sound.dim)
    silent = write_video(tmp_path / "mute" / "a" / "clip.mp4", np.zeros((12, 32, 32, 3), np.uint8) + 60, 12)
    with pytest.raises(DataError, match="no audio track"):
        modality.attach_sound(modality.load(silent.parent.parent))


def test_loader_workers_decode_video_after_the_parent_has(generated):
    """The parent decodes first (as pretraining's input checks do); worker processes must still
    decode. Forked workers inherit FFmpeg's thread locks and could hang, so this runs with a
    deadline in a thread instead of trusting the loader to return."""
    import threading

    data = VideoModality(num_frames=4, size=32).load(generated / "videos")
    assert data[0]["x"].shape == (4, 3, 32, 32)                           # FFmpeg used in this process
    shapes = []

    def consume():
        for batch in make_loader(data, 3, train=True, num_workers=2):
            shapes.append(tuple(batch["x"].shape))

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "data loader workers hung decoding video"
    assert shapes == [(3, 4, 3, 32, 32)] * (len(data) // 3)
