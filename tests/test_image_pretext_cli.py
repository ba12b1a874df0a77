"""``selfsup pretrain`` trains every pretext task by name, multi-task lists with weights (and a
lasso per head), S4L, and says in one line what is wrong when a task does not fit the data."""

from __future__ import annotations

import json

import pytest

from selfsup.cli import main
from selfsup.modalities.image_pretext import sample_photo_crops

QUICK = ["--epochs", "1", "--batch-size", "32", "--no-progress", "--set", "limit_train_batches=2"]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """A flat folder of 60 colour PNG crops of scikit-learn's sample photos (unlabelled)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    crops, _ = sample_photo_crops(side=16, stride=8)
    for i in range(60):
        pixels = (crops[i * 3]["x"].permute(1, 2, 0) * 255).round().byte().numpy()
        Image.fromarray(pixels).save(folder / f"crop{i:03d}.png")
    return folder


def _pretrain(out, objective: str, data: str = "builtin:digits", *extra: str) -> dict:
    assert main(["pretrain", "--modality", "image", "--objective", objective, "--data", data, "--out", str(out),
                 *QUICK, *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize("objective,extra", [
    ("rotation", []),
    ("inpainting", ["--set", "objective_options.mask=region"]),
    ("counting", []),
    ("relative-position", ["--set", "modality_options.size=24"]),
    ("jigsaw", ["--set", "modality_options.size=24"]),
    ("s4l", ["--set", "objective_options.label_fraction=0.2"]),
])
def test_each_task_trains_from_the_command_line(tmp_path, objective, extra):
    metrics = _pretrain(tmp_path / "run", objective, "builtin:digits", *extra)
    assert (tmp_path / "run" / "encoder.pt").exists() and metrics["epochs"] == 1
    loss = metrics["val/loss"]
    assert loss == loss and loss > 0                                     # finite, measured on held-out digits


def test_rotation_count_option(tmp_path):
    metrics = _pretrain(tmp_path / "run", "rotation", "builtin:digits", "--set", "objective_options.count=8")
    assert "val/acc_rot45" in metrics and "val/acc_rot315" in metrics


def test_multitask_list_with_weights_and_a_lasso_on_one_head(tmp_path):
    metrics = _pretrain(tmp_path / "run", "rotation:1,jigsaw:0.5", "builtin:digits", "--set", "modality_options.size=24",
                        "--set", "objective_options={rotation: {lasso: 0.01}}")
    for key in ("val/rotation/pretext_acc", "val/jigsaw/pretext_acc", "val/rotation/alpha_conv1"):
        assert key in metrics
    assert "val/jigsaw/alpha_conv1" not in metrics
    total = metrics["val/rotation/loss"] + 0.5 * metrics["val/jigsaw/loss"]
    assert metrics["val/loss"] == pytest.approx(total, rel=0.05)          # the lasso term adds a little


@pytest.mark.parametrize("objective", ["colorization", "split-brain"])
def test_colour_tasks_train_on_a_folder_of_photos(tmp_path, photo_folder, objective):
    metrics = _pretrain(tmp_path / "run", objective, str(photo_folder))
    assert "val/pretext_acc" in metrics


def test_a_task_that_does_not_fit_the_data_is_one_clear_line(tmp_path, capsys):
    assert main(["pretrain", "--modality", "image", "--objective", "colorization", "--data", "builtin:digits",
                 "--out", str(tmp_path / "a"), *QUICK]) == 2
    err = capsys.readouterr().err.strip()
    assert "colour" in err and "1 channel" in err and len(err.splitlines()) == 1
    assert main(["pretrain", "--modality", "image", "--objective", "jigsaw", "--data", "builtin:digits",
                 "--out", str(tmp_path / "b"), *QUICK]) == 2
    assert "modality_options.size" in capsys.readouterr().err
    assert main(["pretrain", "--modality", "image", "--objective", "rotation", "--data", "builtin:digits",
                 "--out", str(tmp_path / "c"), *QUICK, "--set", "objective_options.count=5"]) == 2
    assert "rotation count" in capsys.readouterr().err
    assert main(["pretrain", "--modality", "image", "--objective", "counting", "--data", "builtin:digits",
                 "--out", str(tmp_path / "d"), *QUICK, "--set", "objective_options.margni=5"]) == 2
    assert "['margni']" in (err := capsys.readouterr().err) and "margin" in err


def test_list_shows_the_pretext_tasks(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name in ("rotation", "relative-position", "jigsaw", "inpainting", "colorization", "split-brain",
                 "counting", "s4l"):
        assert f"    {name} " in text


def test_probe_by_layer_and_retrieval_figure(tmp_path, capsys):
    png = tmp_path / "retrieval.png"
    assert main(["probe", "--random-init", "--modality", "image", "--data", "builtin:digits", "--layers",
                 "--retrieval", str(png), "--seeds", "1", "--labels-per-class", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    layers = report["layers"]
    assert len(layers) >= 3                                   # conv1 ... the last conv layer
    for name, result in layers.items():
        assert 0.1 < result["accuracy"] <= 1.0, name          # 10 digit classes: chance 0.1
    assert png.stat().st_size > 0 and 0 <= report["retrieval"]["precision_at_k"] <= 1
