"""Mask propagation and the DAVIS measures: J and F on known masks, propagation that copies
labels exactly when features name them, and ``selfsup track`` for a run, a random-init
encoder and raw pixels, run the same way."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfsup.cli import main
from selfsup.datasets.davis import read_mask
from selfsup.datasets.synthetic_video import generate_moving_objects
from selfsup.evaluation.tracking import (Propagation, contour_accuracy, load_sequences, pixel_features,
                                         region_similarity, score_sequence, track_davis)


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    """6 generated sequences of 12 frames, 64 px, two objects each."""
    root = generate_moving_objects(tmp_path_factory.mktemp("track"), classes=[1, 4], videos_per_class=3,
                                   num_frames=12, fps=12, size=64, objects=2, audio=False)
    return root


def square(side=40, top=10, left=10, size=10):
    m = torch.zeros(side, side, dtype=torch.bool)
    m[top: top + size, left: left + size] = True
    return m


def test_region_similarity_and_contour_accuracy():
    a = square()
    assert region_similarity(a, a) == 1.0 and contour_accuracy(a, a) == 1.0
    far = square(top=28, left=28)
    assert region_similarity(a, far) == 0.0 and contour_accuracy(a, far) == 0.0
    shifted = square(left=15)                       # half the square overlaps: IoU 50 / 150
    assert region_similarity(a, shifted) == pytest.approx(50 / 150)
    one_px = square(left=11)                        # within the boundary tolerance (1 px here)
    assert contour_accuracy(a, one_px) == 1.0 and region_similarity(a, one_px) < 1.0
    empty = torch.zeros(40, 40, dtype=torch.bool)
    assert region_similarity(empty, empty) == 1.0 and contour_accuracy(empty, empty) == 1.0
    assert contour_accuracy(a, empty) == 0.0


def test_propagation_copies_labels_when_features_name_them(davis):
    """Features that are the true labels (one-hot, 2 x 2 cells) carry every mask nearly exactly."""
    seq = load_sequences(davis / "davis")[0]
    oracle = lambda frames: F.avg_pool2d(F.one_hot(seq.masks, 3).permute(0, 3, 1, 2).float(), 2)  # noqa: E731
    result = track_davis(oracle, [seq], Propagation(topk=5, radius=None))
    assert result.J > 0.9 and result.F > 0.9


def test_pixels_track_better_than_standing_still(davis):
    sequences = load_sequences(davis / "davis")
    tracked = track_davis(pixel_features(4), sequences)
    still = np.mean([np.mean([j for j, _ in score_sequence(s.masks[:1].expand_as(s.masks), s.masks).values()])
                     for s in sequences])
    assert tracked.J > still + 0.1 and 0 < tracked.JF <= 1


def track_json(args, capsys) -> dict:
    code = main(["track", *args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_cli_tracks_a_run_a_random_init_and_pixels_the_same_way(davis, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["pretrain", "--modality", "video", "--objective", "colorization-tracking", "--encoder", "spatial-map",
                 "--data", str(davis / "videos"), "--out", str(run), "--epochs", "1", "--batch-size", "4",
                 "--set", "modality_options.num_frames=4", "--set", "limit_train_batches=1", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    results = {name: track_json(args + ["--davis", str(davis / "davis")], capsys) for name, args in
               {"run": ["--run", str(run)], "random": ["--random-init"], "pixels": ["--pixels"]}.items()}
    for name, r in results.items():
        assert {"J", "F", "J&F"} <= set(r) and 0 <= r["J&F"] <= 1 and r["objects"] == 12, name
        assert r["J&F"] == pytest.approx((r["J"] + r["F"]) / 2)
    assert "run" in results["run"]["source"] and "random init" in results["random"]["source"]
    out = tmp_path / "masks"
    track_json(["--pixels", "--davis", str(davis / "davis"), "--out", str(out), "--radius", "0"], capsys)
    written = sorted((out / "Annotations" / "480p").glob("*/*.png"))
    assert len(written) == 6 * 12 and set(np.unique(read_mask(written[5]))) <= {0, 1, 2}


def test_cli_track_errors_are_one_line(tmp_path, capsys):
    assert main(["track", "--pixels", "--davis", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a DAVIS folder" in err and len(err.strip().splitlines()) == 1
    assert main(["track", "--pixels", "--encoder", "spatial-map", "--davis", str(tmp_path)]) == 2
    assert "--random-init" in capsys.readouterr().err
