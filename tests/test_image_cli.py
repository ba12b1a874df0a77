"""The command line trains every image objective on real digits and probes image folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from selfsup.cli import main
from selfsup.modalities.image import ImageModality

OBJECTIVES = list(ImageModality.objectives)
#: the colour tasks need RGB images (they train on photos in test_image_pretext_cli.py)
COLOUR_ONLY = ("colorization", "split-brain")
#: what an objective needs beyond the 8x8 digits: tile grids need room for their tiles
NEEDS = {"relative-position": ["--set", "modality_options.size=24"], "jigsaw": ["--set", "modality_options.size=24"]}


def pretrain(out, objective, *extra):
    return main(["pretrain", "--modality", "image", "--objective", objective, "--data", "builtin:digits",
                 "--out", str(out), "--epochs", "1", "--batch-size", "64", "--no-progress",
                 "--set", "limit_train_batches=3", *extra])


def digits_folder(root, size: int = 8, colour: bool = False, per_class: int = 15):
    """Real digits written as PNG files in class subfolders."""
    data = ImageModality().load("builtin:digits")
    for c in range(10):
        for i in np.flatnonzero(data.labels == c)[:per_class]:
            img = Image.fromarray(data.images[i, 0].numpy(), mode="L").resize((size, size))
            (root / f"digit{c}").mkdir(parents=True, exist_ok=True)
            (img.convert("RGB") if colour else img).save(root / f"digit{c}" / f"{i}.png")
    return root


def test_pretrain_then_probe_an_image_folder(tmp_path, capsys):
    assert pretrain(tmp_path / "run", "simclr") == 0
    assert (tmp_path / "run" / "encoder.pt").exists()
    capsys.readouterr()
    folder = digits_folder(tmp_path / "folder")
    assert main(["probe", "--run", str(tmp_path / "run"), "--data", str(folder), "--protocol", "knn",
                 "--seeds", "1", "--no-plots", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_train"] + result["n_test"] == 150 and result["accuracy"] > 0.3   # 10 classes: chance 0.1


def test_probe_converts_other_sizes_and_colours_to_the_runs(tmp_path, capsys):
    assert pretrain(tmp_path / "run", "dim") == 0
    capsys.readouterr()
    train = digits_folder(tmp_path / "train", size=20, colour=True)
    test = digits_folder(tmp_path / "test", size=12, colour=True, per_class=5)
    assert main(["probe", "--run", str(tmp_path / "run"), "--data", str(train), "--test", str(test),
                 "--seeds", "1", "--no-plots", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_test"] == 50 and result["accuracy"] > 0.3


def test_random_init_probe_on_builtin_and_bad_data_is_one_line(tmp_path, capsys):
    assert main(["probe", "--random-init", "--modality", "image", "--data", "builtin:digits",
                 "--protocol", "knn", "--seeds", "1", "--no-plots", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.8
    assert pretrain(tmp_path / "bad", "simclr", "--data", str(tmp_path / "missing")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing: no such folder" in err[0]
    assert pretrain(tmp_path / "sup", "supcon", "--data", str(digits_folder(tmp_path / "ok"))) == 0


def test_list_says_which_image_encoder_is_for_what(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ["small-cnn", "alexnet", "resnet18", "resnet50", *OBJECTIVES]:
        assert f"    {name} " in out
    assert "CPU" in out and "GPU" in out


@pytest.mark.slow
@pytest.mark.parametrize("objective", [o for o in OBJECTIVES if o not in COLOUR_ONLY])
def test_cli_trains_each_objective(objective, tmp_path):
    assert pretrain(tmp_path / objective, objective, *NEEDS.get(objective, [])) == 0
    assert (tmp_path / objective / "encoder.pt").exists()
