"""Video objectives: their mechanics on known inputs, the CLI training each of them, a linear
probe on pooled clip embeddings, and (slow) each one learning its pretext task on generated
video: the training loss falls and its accuracy on held-out clips beats chance."""

import json

import pytest
import torch
from torch import nn

from selfsup.cli import main
from selfsup.datasets.synthetic_video import generate_moving_objects
from selfsup.encoders.temporal_conv import TPNEncoder
from selfsup.errors import ConfigError, DataError
from selfsup.modalities.video import FramePairs
from selfsup.objectives.ambient_sound import AmbientSound
from selfsup.objectives.colorization_tracking import ColorizationTracking
from selfsup.objectives.temporal_order import (TemporalOrder, TimeReverse, arrow_of_time, five_positions, order_tuples,
                                              tuple_features)

from run_logs import assert_cli_learns


@pytest.fixture(scope="module")
def small_videos(tmp_path_factory):
    """3 digit classes x 4 videos of 12 frames, 32 px, with sound: for the fast CLI checks."""
    root = generate_moving_objects(tmp_path_factory.mktemp("small"), classes=3, videos_per_class=4, num_frames=12,
                                   fps=12, size=32)
    return root / "videos"


# -- mechanics --------------------------------------------------------------------------------
def test_order_tuples_are_in_order_or_not():
    torch.manual_seed(0)
    positions = five_positions(500, 9)
    assert bool((positions[:, 1:] > positions[:, :-1]).all()) and int(positions.max()) <= 8
    tuples, in_order = order_tuples(positions)
    a, b, c, d, e = positions.unbind(1)
    assert torch.equal(tuples[:, 0], b) and torch.equal(tuples[:, 2], d)
    middle = tuples[:, 1]
    assert bool((middle[in_order == 1] == c[in_order == 1]).all())
    wrong = in_order == 0
    assert bool(((middle[wrong] == a[wrong]) | (middle[wrong] == e[wrong])).all())
    assert 0.4 < float(in_order.mean()) < 0.6
    with pytest.raises(ConfigError, match="at least 5"):
        five_positions(2, 4)


def test_tuple_features_mark_a_middle_element_that_lies_between():
    """The head's relation term: negative where the middle embedding lies between the others."""
    first, last = torch.tensor([0.0, 5.0]), torch.tensor([4.0, 1.0])
    between, outside = torch.tensor([2.0, 3.0]), torch.tensor([6.0, 6.0])
    z = torch.stack([torch.stack([first, between, last]), torch.stack([first, outside, last])])     # (2, 3, 2)
    feats = tuple_features(z)
    assert feats.shape == (2, 8) and torch.equal(feats[:, :6], z.flatten(1))
    assert bool((feats[0, 6:] < 0).all()) and bool((feats[1, 6:] > 0).all())


class Probe(nn.Module):
    """An encoder stand-in that embeds an element by its mean value (records what it was given)."""

    embed_dim = 1

    def __init__(self):
        super().__init__()
        self.seen = []

    def embed(self, x):
        self.seen.append(x)
        return x.flatten(1).mean(1, keepdim=True)


@pytest.mark.parametrize("layout", ["video", "sensor"])
def test_temporal_order_picks_elements_along_any_time_axis(layout):
    """Elements are frames of (B, T, C, H, W) clips or sub-windows of (B, C, T) signals."""
    if layout == "video":
        x = torch.arange(6.0).view(1, 6, 1, 1, 1).expand(2, 6, 3, 4, 4).clone()
        objective, length = TemporalOrder(Probe(), time_dim=1), 1
    else:
        x = torch.arange(12.0).view(1, 1, 12).expand(2, 3, 12).clone()
        objective, length = TemporalOrder(Probe(), time_dim=-1, element_length=3), 3
    elements = objective.elements(x, torch.tensor([[0, 2, 3], [1, 1, 2]]))
    assert elements.shape[0] == 6 and elements.shape[objective.time_dim] == length
    means = elements.flatten(1).mean(1)
    assert means.tolist() == [s + (length - 1) / 2 for s in (0.0, 2, 3, 1, 1, 2)]
    encoder = Probe()
    out = TemporalOrder(encoder, time_dim=objective.time_dim, element_length=length)({"x": x}, encoder)
    assert torch.isfinite(out.loss) and 0 <= float(out.metrics["pretext_acc"]) <= 1


def test_arrow_of_time_is_generic_transformation_prediction():
    encoder = TPNEncoder(in_channels=3)
    objective = arrow_of_time(encoder, time_dim=-1)
    x = torch.randn(8, 3, 64)
    assert torch.equal(TimeReverse(-1)(x), x.flip(-1)) and torch.equal(TimeReverse(1)(x[:, :, :4]), x[:, :, :4].flip(1))
    out = objective({"x": x}, encoder)
    assert set(out.metrics) == {"acc_time_reverse", "pretext_acc"} and torch.isfinite(out.loss)


class PositionMaps(nn.Module):
    """A frame-map encoder whose embedding of each cell is the cell's own position (one-hot):
    the pointer then copies the colour at the same place, which is what ``copy_acc`` measures."""

    embed_dim, stride, output_kind = 16, 8, "map"

    def frame_maps(self, frames):
        n = frames.shape[0]
        return torch.eye(16).view(16, 4, 4).expand(n, -1, -1, -1) * 10


def test_colourisation_pointer_copies_reference_colours():
    torch.manual_seed(0)
    x = torch.rand(4, 4, 3, 32, 32)
    x[:, :, :, :16] = torch.tensor([0.9, 0.1, 0.1]).view(1, 1, 3, 1, 1)    # a red top half in every frame
    objective = ColorizationTracking(PositionMaps(), num_refs=3, num_colours=4, temperature=0.01)
    objective.fit_colours(x.flatten(0, 1), (4, 4))
    out = objective({"x": x}, PositionMaps())
    assert float(out.metrics["pretext_acc"]) == pytest.approx(float(out.metrics["copy_acc"]))
    assert float(out.metrics["pretext_acc"]) >= 0.5                          # the red half is always right
    with pytest.raises(ConfigError, match="at least 4 frames"):
        objective({"x": x[:, :3]}, PositionMaps())
    with pytest.raises(ConfigError, match="frame_maps"):
        ColorizationTracking(TPNEncoder(in_channels=3))


def test_ambient_sound_targets_and_missing_sound():
    torch.manual_seed(0)
    encoder = Probe()
    sounds = torch.cat([torch.randn(20, 6) - 3, torch.randn(20, 6) + 3])
    clusters = AmbientSound(encoder, sounds, num_clusters=2, hidden=8)
    batch = {"x": torch.rand(40, 5, 3, 8, 8), "sound": sounds}
    out = clusters(batch, encoder)
    assert encoder.seen[-1].shape == (40, 1, 3, 8, 8)                       # one frame of each clip
    assert float(out.metrics["majority_acc"]) == pytest.approx(0.5)
    codes = AmbientSound(encoder, sounds, target="codes", bits=4, hidden=8)
    assert codes.head[-1].out_features == 4 and torch.isfinite(codes(batch, encoder).loss)
    with pytest.raises(DataError, match="'sound'"):
        clusters({"x": batch["x"]}, encoder)


def test_frame_pairs_are_two_frames_of_one_clip():
    x = torch.arange(4.0).view(1, 4, 1, 1, 1).expand(64, 4, 3, 8, 8).clone()
    v1, v2 = FramePairs(lambda f: f)({"x": x})
    assert v1.shape == v2.shape == (64, 1, 3, 8, 8)
    assert bool((v1.flatten(1)[:, 0] != v2.flatten(1)[:, 0]).all())        # never the same frame twice


# -- the CLI ----------------------------------------------------------------------------------
FAST = ["--epochs", "1", "--batch-size", "4", "--no-progress", "--set", "limit_train_batches=1",
        "--set", "modality_options.size=32", "--set", "val_fraction=0.25"]
OBJECTIVES = {"temporal-order": ["--set", "modality_options.num_frames=6"],
              "arrow-of-time": ["--set", "modality_options.num_frames=4", "--set", "encoder_options.temporal=conv"],
              "colorization-tracking": ["--encoder", "spatial-map", "--set", "modality_options.num_frames=4"],
              "ambient-sound": ["--set", "modality_options.num_frames=2", "--set", "objective_options.num_clusters=3"],
              "simclr": ["--set", "modality_options.num_frames=2"]}


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_cli_trains_every_objective(objective, small_videos, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["pretrain", "--modality", "video", "--objective", objective, "--data", str(small_videos),
                 "--out", str(run), *FAST, *OBJECTIVES[objective]])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 1 and torch.isfinite(torch.tensor(metrics["val/loss"]))


def test_cli_probes_pooled_clip_embeddings(small_videos, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", "--modality", "video", "--objective", "simclr", "--data", str(small_videos),
                 "--out", str(run), *FAST, "--set", "modality_options.num_frames=3"]) == 0
    capsys.readouterr()
    assert main(["probe", "--run", str(run), "--data", str(small_videos), "--json", "--seeds", "1",
                 "--no-plots"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_test"] == 3 and result["n_train"] == 9 and 0 <= result["accuracy"] <= 1
    assert "by subject" in result["split"]                                   # whole videos held out


def test_cli_refuses_what_cannot_work(small_videos, tmp_path, capsys):
    args = ["pretrain", "--modality", "video", "--data", str(small_videos), *FAST]
    assert main([*args, "--objective", "arrow-of-time", "--out", str(tmp_path / "a")]) == 2
    assert "temporal=conv" in capsys.readouterr().err
    assert main([*args, "--objective", "temporal-order", "--out", str(tmp_path / "b"),
                 "--set", "modality_options.num_frames=4"]) == 2
    assert "at least 5 frames" in capsys.readouterr().err


# -- learning (slow) --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def learning_videos(tmp_path_factory):
    """4 digit classes x 16 videos of 16 frames, 32 px, with sound; one clip per video, so the
    held-out (validation) clips are 16 videos the training never saw."""
    root = generate_moving_objects(tmp_path_factory.mktemp("learn"), classes=4, videos_per_class=16, num_frames=16,
                                   fps=12, size=32, seed=3)
    return root / "videos"


LEARN = ["--batch-size", "8", "--no-progress", "--set", "modality_options.size=32", "--set", "val_fraction=0.25",
         "--lr", "2e-3"]
# objective -> (epochs, options, held-out check (chance in the comment))
LEARNS = {
    "temporal-order": (25, ["--set", "modality_options.num_frames=8", "--set", "encoder_options.grid=2"],
                       lambda m: m["val/pretext_acc"] > 0.6),                                   # chance 0.5
    # (clips drawn anywhere in the videos at every epoch: with fixed clips it memorises them)
    "arrow-of-time": (16, ["--set", "modality_options.num_frames=8", "--set", "modality_options.sampler=random",
                           "--set", "encoder_options.temporal=conv", "--set", "encoder_options.grid=2"],
                      lambda m: m["val/pretext_acc"] > 0.65),                                   # chance 0.5
    "colorization-tracking": (6, ["--encoder", "spatial-map", "--set", "modality_options.num_frames=4"],
                              lambda m: m["val/pretext_acc"] > m["val/majority_acc"] + 0.3),    # most frequent colour
    "ambient-sound": (8, ["--set", "modality_options.num_frames=2", "--set", "objective_options.num_clusters=3"],
                      lambda m: m["val/pretext_acc"] > m["val/majority_acc"] + 0.15),           # most frequent cluster
    "simclr": (12, ["--set", "modality_options.num_frames=4"],
               lambda m: m["val/pos_acc"] > 3 / 15),                                            # 1/(2B - 1) = 1/15
}


@pytest.mark.slow
@pytest.mark.parametrize("objective", list(LEARNS))
def test_each_objective_learns_its_pretext_task_on_held_out_videos(objective, learning_videos, tmp_path, capsys):
    epochs, extra, learned = LEARNS[objective]
    run = tmp_path / "run"
    torch.manual_seed(0)
    assert_cli_learns(["pretrain", "--modality", "video", "--objective", objective, "--data", str(learning_videos),
                       "--out", str(run), "--epochs", str(epochs), *LEARN, *extra], run, epochs, learned, capsys)
