"""The command line as people and scripts use it."""

import json

import h5py
import numpy as np
import pytest

from selfsup.cli import main
from tests.sensor_files import small_watch_h5


@pytest.fixture(scope="module")
def h5(tmp_path_factory, watch):
    return small_watch_h5(watch, tmp_path_factory.mktemp("data") / "watch.h5", n=400)


@pytest.fixture(scope="module")
def run(tmp_path_factory, h5):
    out = tmp_path_factory.mktemp("runs") / "tpn"                 # small and fast; defaults: see below
    assert main(["pretrain", "--modality", "sensor", "--data", str(h5), "--out", str(out), "--epochs", "1",
                 "--batch-size", "64", "--no-progress", "--encoder", "tpn", "--objective", "transformation"]) == 0
    return out


def test_sensor_defaults_are_hierarchical_contrast_on_dilated_convs(tmp_path, h5):
    out = tmp_path / "default"
    assert main(["pretrain", "--modality", "sensor", "--data", str(h5), "--out", str(out), "--epochs", "1",
                 "--batch-size", "16", "--no-progress", "--set", "limit_train_batches=3"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "train/instance_acc" in metrics and "train/temporal_acc" in metrics  # hierarchical contrast's own
    assert main(["embed", "--run", str(out), "--data", str(h5), "--out", str(tmp_path / "z.h5")]) == 0
    with h5py.File(tmp_path / "z.h5") as f:
        assert f["z"].shape == (400, 320)                            # 320-d, max-pooled over time


def test_list_names_every_modality_encoder_and_objective(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for word in ("modality sensor", "tpn", "resnet1d", "transformation", "simclr", "cpc", "(default)"):
        assert word in text


def test_pretrain_writes_the_run(run, capsys):
    for name in ("config.yaml", "encoder.pt", "metrics.json", "checkpoints/last.ckpt"):
        assert (run / name).exists()
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1


def test_resume_extends_a_run(run, capsys):
    assert main(["pretrain", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"]) == 0
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    assert "2 epochs" in capsys.readouterr().out


def test_probe_json_has_the_metrics_and_saves_plots(run, h5, capsys):
    assert main(["probe", "--run", str(run), "--data", str(h5), "--seeds", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "macro_f1", "kappa", "accuracy_std"):
        assert 0 <= result[key] <= 1
    assert result["seeds"] == 2 and "by subject" in result["split"]
    assert (run / "probe" / "confusion_linear.png").stat().st_size > 1000
    assert (run / "probe" / "embedding_map.png").stat().st_size > 1000


@pytest.mark.parametrize("protocol", ["knn", "svm", "finetune"])
def test_probe_protocols_with_few_labels(run, h5, capsys, protocol):
    assert main(["probe", "--run", str(run), "--data", str(h5), "--protocol", protocol,
                 "--labels-per-class", "5", "--seeds", "1", "--no-plots", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["protocol"] == protocol and result["n_labelled"] == [35]
    assert result["accuracy"] > 1 / 7                       # 7 exercises: better than chance


def test_probe_averages_label_draws_and_says_so(run, h5, capsys):
    assert main(["probe", "--run", str(run), "--data", str(h5), "--labels-per-class", "5", "--seeds", "1",
                 "--label-draws", "3", "--no-plots", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["label_draws"] == 3 and len(result["per_draw"][0]) == 3
    assert result["labels"] == "5 per class, the mean of 3 draws per seed"
    for bad, message in ((["--labels-per-class", "5", "--label-draws", "0"], "1 or more"),
                         (["--label-draws", "3"], "needs --labels-per-class")):
        assert main(["probe", "--run", str(run), "--data", str(h5), "--no-plots", *bad]) == 2
        assert message in capsys.readouterr().err


def test_probe_random_init_and_given_test_set(tmp_path, h5, watch, capsys):
    test = small_watch_h5(watch, tmp_path / "test.h5", n=100, seed=1)
    assert main(["probe", "--random-init", "--modality", "sensor", "--data", str(h5), "--test", str(test),
                 "--label-fraction", "0.5", "--seeds", "2", "--out", str(tmp_path / "plots")]) == 0
    text = capsys.readouterr().out
    assert "random init" in text and "macro_f1" in text and "± " in text
    assert (tmp_path / "plots" / "confusion_linear.png").exists()


def test_embed_writes_embeddings_and_labels(run, h5, tmp_path):
    out = tmp_path / "emb.h5"
    assert main(["embed", "--run", str(run), "--data", str(h5), "--out", str(out)]) == 0
    with h5py.File(out) as f:
        assert f["z"].shape == (400, 96) and f["y"].shape == (400,)
        assert np.isfinite(f["z"][()]).all()


def test_convert_csv_then_pretrain(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lines = ["ax,ay,az,label,subject"]
    for s in range(3):
        for i in range(400):
            lines.append(",".join(f"{v:.4f}" for v in rng.normal(size=3)) + f",{'ab'[i // 200]},{s}")
    (tmp_path / "rec.csv").write_text("\n".join(lines))
    assert main(["convert-csv", str(tmp_path / "rec.csv"), "--out", str(tmp_path / "rec.h5"), "--channels",
                 "ax,ay,az", "--window", "64", "--label-column", "label", "--subject-column", "subject"]) == 0
    assert "windows" in capsys.readouterr().out
    assert main(["pretrain", "--modality", "sensor", "--data", str(tmp_path / "rec.h5"), "--out",
                 str(tmp_path / "run"), "--epochs", "1", "--no-progress", "--encoder", "tpn",
                 "--objective", "transformation", "--set", "objective_options.form=multiclass"]) == 0
    assert "multiclass" in (tmp_path / "run" / "config.yaml").read_text()


def test_prepare_watch(tmp_path, capsys):
    assert main(["prepare", "watch", "--out", str(tmp_path)]) == 0
    with h5py.File(tmp_path / "watch.h5") as f:
        assert f["x"].shape[1:] == (100, 6) and f["subject"].shape == f["y"].shape


def test_unknown_names_are_one_line_errors(tmp_path, h5, capsys):
    assert main(["pretrain", "--modality", "smell", "--data", str(h5), "--out", str(tmp_path / "r")]) == 2
    assert "unknown modality 'smell'" in capsys.readouterr().err
    assert main(["pretrain", "--modality", "sensor", "--objective", "telepathy", "--data", str(h5),
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown objective 'telepathy'" in err and "transformation" in err
    assert main(["pretrain", "--modality", "sensor", "--data", str(h5), "--out", str(tmp_path / "r"),
                 "--set", "nonsense=1"]) == 2
    assert "nonsense" in capsys.readouterr().err
